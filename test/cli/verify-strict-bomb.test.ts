/**
 * `verify --strict` decodes every gzip/zstd file of the archive to check diffIDs: bounded as
 * unpack is (src/limits: per-layer decompressed cap + ratio), so with --max-ratio 2000 a plain
 * tar archive holding a small zstd layer that decompresses to 300 MiB is one problem naming the image, the layer and
 * --max-ratio (the archive-level bound does not apply: the archive is not wrapped); at the
 * default ratio (above zstd's ceiling) the check runs; --max-layer-size bounds any layer.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { runCli, tmpDir, rmrf } from '../helpers/cli';
import { makeImage, makeLayer, ociImageArchive, tar } from '../unit/archive/import-fixtures';
import { zstdZeroLayer } from '../unit/archive/bomb-fixtures';
import { MediaType } from '../../src/images/mediatypes';
import { sha256 } from '../../src';

jest.setTimeout(120_000);

let dir: string;
beforeAll(() => (dir = tmpDir('imgtool-verify-bomb-')));
afterAll(() => rmrf(dir));

it('verify --strict --max-ratio refuses a zstd layer bomb with one problem naming image, layer and --max-ratio', async () => {
  const { blob, diffId } = await zstdZeroLayer(300 * 1024 * 1024);
  const digest = sha256(blob);
  const layer = { tar: Buffer.alloc(0), blob, digest, diffId, compression: 'zstd' as const, desc: { mediaType: MediaType.OCI_LAYER_ZSTD, digest, size: blob.length } };
  const archive = path.join(dir, 'bomb.tar');
  fs.writeFileSync(archive, ociImageArchive(makeImage({ layers: [makeLayer({ a: 'a' }), layer] }), 'x.io/bomb:1'));
  expect(fs.statSync(archive).size).toBeLessThan(128 * 1024);

  const r = await runCli(['verify', archive, '--strict', '--max-ratio', '2000', '--json']);
  expect(r.code).not.toBe(0);
  const rep = JSON.parse(r.stdout);
  expect(rep.ok).toBe(false);
  expect(rep.problems).toHaveLength(1);
  expect(rep.problems[0]).toMatch(new RegExp(`x\\.io/bomb:1.*layer 2 ${digest}: .*${blob.length} compressed bytes decompress to more than 2000 times that .*--max-ratio`));
  expect(rep.problems[0]).not.toMatch(/\n|undefined/);
  // without --strict nothing is decoded: the archive is fine
  expect((await runCli(['verify', archive])).code).toBe(0);
  // at the default ratio (zero-filled zstd is real): decoded to the end and the diffID checked
  const raised = await runCli(['verify', archive, '--strict']);
  expect(raised.stderr).toBe('');
  expect(raised.code).toBe(0);
});

it('verify --strict --max-layer-size bounds a gzip layer', async () => {
  const t = tar([{ name: 'big', data: Buffer.alloc(3 * 1024 * 1024, 7) }]);
  const blob = zlib.gzipSync(t);
  const digest = sha256(blob);
  const layer = { tar: t, blob, digest, diffId: sha256(t), compression: 'gzip' as const, desc: { mediaType: MediaType.OCI_LAYER_GZIP, digest, size: blob.length } };
  const archive = path.join(dir, 'big.tar');
  fs.writeFileSync(archive, ociImageArchive(makeImage({ layers: [layer] }), 'x.io/big:1'));
  const r = await runCli(['verify', archive, '--strict', '--max-layer-size', '1M', '--json']);
  expect(r.code).not.toBe(0);
  const rep = JSON.parse(r.stdout);
  expect(rep.problems).toHaveLength(1);
  expect(rep.problems[0]).toMatch(new RegExp(`x\\.io/big:1.*layer 1 ${digest}: .*decompresses to more than 1 MiB \\(limit --max-layer-size\\)`));
  expect((await runCli(['verify', archive, '--strict', '--max-layer-size', '4M'])).code).toBe(0);
});
