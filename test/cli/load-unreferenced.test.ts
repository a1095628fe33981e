/**
 * Files of an archive that no image references are not kept: a 2 MB gzip archive with a
 * 256 MiB file nothing names must not grow the store by 256 MiB. Blobs that were in the store
 * before the load stay whatever references them (here: the image's, shared by both loads).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { runCli, tmpDir, rmrf } from '../helpers/cli';
import { makeImage, makeLayer, ociArchive, imageBlobs, blobEntry, tar, OCI_LAYOUT, indexDoc } from '../unit/archive/import-fixtures';
import { sha256 } from '../../src';

let dir: string;
beforeAll(() => (dir = tmpDir('imgtool-unref-')));
afterAll(() => rmrf(dir));

function storeBytes(root: string): number {
  let n = 0;
  const visit = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) visit(p);
      else if (e.isFile()) n += fs.statSync(p).size;
    }
  };
  visit(path.join(root, 'content'));
  return n;
}

it('load drops the archive files no image references (and keeps what was there before)', async () => {
  const root = path.join(dir, 'store');
  const img = makeImage({ layers: [makeLayer({ a: 'a' }, 'gzip')] });
  const junk = Buffer.alloc(256 * 1024 * 1024);
  const stray = Buffer.from('a stray blob already in the store');
  // an archive whose stray blob nothing references: dropped at the end of the load
  const first = path.join(dir, 'first.tar');
  fs.writeFileSync(first, ociArchive([{ ...img.manifest.desc, annotations: { 'io.containerd.image.name': 'x.io/keep:1' } }], [...imageBlobs(img), blobEntry(stray)]));
  const r1 = await runCli(['load', '-i', first, '--no-unpack', '--json'], { root });
  expect(r1.code).toBe(0);
  expect(JSON.parse(r1.stdout).dropped).toEqual({ count: 1, bytes: stray.length });
  const index = indexDoc([{ ...img.manifest.desc, annotations: { 'io.containerd.image.name': 'x.io/u:1' } }]);
  const archive = path.join(dir, 'junk.tar.gz');
  fs.writeFileSync(archive, zlib.gzipSync(tar([OCI_LAYOUT, ...imageBlobs(img), { name: 'junk.bin', data: junk }, { name: 'index.json', data: index.bytes }]), { level: 1 }));
  expect(fs.statSync(archive).size).toBeLessThan(3 * 1024 * 1024);
  const before = storeBytes(root);
  const r = await runCli(['load', '-i', archive, '--json'], { root });
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(JSON.parse(r.stdout).dropped).toEqual({ count: 1, bytes: junk.length });
  expect(storeBytes(root) - before).toBeLessThan(1024 * 1024);
  expect(fs.existsSync(path.join(root, 'content', 'blobs', 'sha256', sha256(junk).slice(7)))).toBe(false);
  const fsck = await runCli(['fsck'], { root });
  expect(fsck.code).toBe(0);
  const images = JSON.parse((await runCli(['images', '--json'], { root })).stdout).map((i: { name: string }) => i.name);
  expect(images).toEqual(['x.io/keep:1', 'x.io/u:1']);
});
