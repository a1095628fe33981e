/**
 * Hostile and broken archives: each gives one clear error, and registers nothing.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { Readable } from 'node:stream';
import { Store } from '../../../src/store';
import { importArchive } from '../../../src/archive/import';
import { MAX_JSON_SIZE } from '../../../src/content';
import { sha256 } from '../../../src/digest';
import { tmpDir, rmrf } from '../../helpers/cli';
import { makeImage, ociImageArchive, ociArchive, dockerArchive, imageBlobs, blobEntry, tar, tarHeader, OCI_LAYOUT, makeLayer, doc } from './import-fixtures';
import { MediaType } from '../../../src/images/mediatypes';

let dir: string;
let store: Store;
beforeEach(() => {
  dir = tmpDir('imgtool-hostile-');
  store = Store.open(path.join(dir, 'root'));
});
afterEach(() => {
  store.close();
  rmrf(dir);
});

async function expectRefused(input: Buffer | Readable, re: RegExp): Promise<Error> {
  const src = Buffer.isBuffer(input) ? Readable.from([input]) : input;
  let err: Error | undefined;
  try {
    await importArchive(store, src);
  } catch (e) {
    err = e as Error;
  }
  expect(err).toBeDefined();
  expect(err!.message).toMatch(re);
  expect(err!.message).not.toMatch(/\n/);
  expect(store.images.list()).toEqual([]);
  expect(store.variants.list()).toEqual([]);
  // No temp files left behind.
  const ingest = path.join(store.root, 'content', 'ingest');
  expect(fs.existsSync(ingest) ? fs.readdirSync(ingest) : []).toEqual([]);
  return err!;
}

const img = makeImage({ layers: [makeLayer({ big: 'x'.repeat(5000) }, 'none')] });
const good = ociImageArchive(img, 'x.io/a:1');

describe('hostile input', () => {
  it('truncated tar at several offsets', async () => {
    const offsets = [0, 1, 100, 511, 512, 700, 1024, 1536, 3000, good.length - 1024 - 512, good.length - 1024, good.length - 600];
    for (const off of offsets) {
      const cut = good.subarray(0, off);
      const re = off === 0 ? /empty/ : /truncated|not a tar archive/;
      await expectRefused(cut, re);
    }
    // Ends right after an entry, without the end-of-archive marker.
    await expectRefused(good.subarray(0, good.length - 1024), /truncated: it ends after entry "index.json" without the end-of-archive marker/);
  });

  it('names the entry and sizes when truncated inside an entry', async () => {
    const layerEntryStart = good.indexOf(Buffer.from(`blobs/sha256/${img.layers[0].digest.slice(7)}`));
    await expectRefused(good.subarray(0, layerEntryStart + 512 + 100), new RegExp(`entry "blobs/sha256/${img.layers[0].digest.slice(7)}" declares \\d+ bytes but the input ends after 100`));
  });

  it('gzip- and zstd-wrapped truncated input', async () => {
    const gz = zlib.gzipSync(good);
    await expectRefused(gz.subarray(0, gz.length - 10), /gzip stream is truncated|truncated/);
    await expectRefused(gz.subarray(0, 30), /gzip stream is truncated|truncated/);
    const { compress } = await import('./import-fixtures');
    const zs = compress(good, 'zstd');
    await expectRefused(zs.subarray(0, zs.length - 5), /zstd stream is truncated|truncated/);
  });

  it('a blob whose bytes do not match its name', async () => {
    const wrong = sha256('not this');
    const archive = tar([OCI_LAYOUT, blobEntry(img.config.bytes, wrong)]);
    const e = await expectRefused(archive, new RegExp(`archive entry "blobs/sha256/${wrong.slice(7)}": digest mismatch: expected ${wrong}, got ${img.config.digest}`));
    expect(e.name).toBe('DigestMismatchError');
    expect(store.content.has(wrong)).toBe(false);
  });

  it('a manifest referencing a missing blob', async () => {
    const archive = ociArchive([{ ...img.manifest.desc, annotations: { 'io.containerd.image.name': 'x.io/a:1' } }], [blobEntry(img.manifest.bytes), blobEntry(img.config.bytes)]);
    await expectRefused(archive, new RegExp(`x.io/a:1: layer 1 ${img.layers[0].digest} of manifest sha256:[0-9a-f]{12} is not in the archive`));
  });

  it('an index entry whose manifest is absent', async () => {
    const archive = ociArchive([{ ...img.manifest.desc, annotations: { 'io.containerd.image.name': 'x.io/a:1' } }], []);
    await expectRefused(archive, new RegExp(`manifest ${img.manifest.digest} listed in the index is not in the archive`));
  });

  it('a descriptor declaring the wrong size', async () => {
    const archive = ociArchive([{ ...img.manifest.desc, size: img.manifest.desc.size + 1, annotations: { 'io.containerd.image.name': 'x.io/a:1' } }], imageBlobs(img));
    await expectRefused(archive, /is \d+ bytes, but a descriptor declares \d+/);
  });

  it('manifest.json naming an absent file, or a dangling symlink', async () => {
    const dimg = makeImage({ oci: false, layers: [makeLayer({ q: 'q' }, 'none', false)] });
    const archive = tar([
      { name: `${dimg.config.digest.slice(7)}.json`, data: dimg.config.bytes },
      { name: 'manifest.json', data: JSON.stringify([{ Config: `${dimg.config.digest.slice(7)}.json`, RepoTags: ['a:1'], Layers: ['nope/layer.tar'] }]) },
    ]);
    await expectRefused(archive, /a:1: layer 1\/1 "nope\/layer.tar" named in manifest.json is not in the archive/);
    const dangling = tar([
      { name: `${dimg.config.digest.slice(7)}.json`, data: dimg.config.bytes },
      { name: 'abc/layer.tar', type: '2', linkname: '../missing.tar' },
      { name: 'manifest.json', data: JSON.stringify([{ Config: `${dimg.config.digest.slice(7)}.json`, RepoTags: ['a:1'], Layers: ['abc/layer.tar'] }]) },
    ]);
    await expectRefused(dangling, /"abc\/layer.tar" named in manifest.json is a link to "missing.tar", which is not in the archive/);
    const noConfig = tar([{ name: 'manifest.json', data: JSON.stringify([{ Config: 'cfg.json', RepoTags: ['a:1'], Layers: [] }]) }]);
    await expectRefused(noConfig, /config "cfg.json" named in manifest.json is not in the archive/);
  });

  it('../ and absolute paths, escaping symlinks, device files', async () => {
    await expectRefused(tar([{ name: '../evil', data: 'x' }]), /archive entry "..\/evil" escapes the archive with "..".*hostile/);
    await expectRefused(tar([{ name: 'blobs/../../evil', data: 'x' }]), /escapes the archive/);
    await expectRefused(tar([{ name: '/etc/passwd', data: 'x' }]), /archive entry "\/etc\/passwd" has an absolute path/);
    await expectRefused(tar([{ name: 'a/layer.tar', type: '2', linkname: '../../etc/shadow' }]), /symlink "a\/layer.tar" -> "..\/..\/etc\/shadow" points outside the archive/);
    await expectRefused(tar([{ name: 'a/layer.tar', type: '2', linkname: '/etc/shadow' }]), /points outside the archive \(absolute target/);
    await expectRefused(tar([{ name: 'a/x', type: '1', linkname: '../x' }]), /hard link .* points outside the archive/);
    await expectRefused(tar([{ name: 'dev/null', type: '3' }]), /archive entry "dev\/null" is a character-device: not allowed/);
  });

  it('an entry declaring a huge size is streamed, not allocated', async () => {
    const huge = 8 * 1024 * 1024 * 1024 - 1; // largest 11-digit octal size
    const before = process.memoryUsage().rss;
    const archive = Buffer.concat([tarHeader({ name: 'blobs/sha256/' + 'a'.repeat(64) }, huge), Buffer.alloc(4096, 1)]);
    await expectRefused(archive, new RegExp(`declares ${huge} bytes but the input ends after 4096`));
    const docHuge = Buffer.concat([tarHeader({ name: 'manifest.json' }, huge), Buffer.alloc(512)]);
    await expectRefused(docHuge, new RegExp(`"manifest.json" is ${huge} bytes, over the ${MAX_JSON_SIZE}-byte limit`));
    expect(process.memoryUsage().rss - before).toBeLessThan(200 * 1024 * 1024);
  });

  it('invalid JSON: index.json, manifest.json, oci-layout, a manifest blob, a config', async () => {
    await expectRefused(tar([OCI_LAYOUT, { name: 'index.json', data: '{"manifests": [' }]), /index.json is not valid JSON/);
    await expectRefused(tar([{ name: 'manifest.json', data: 'nope' }]), /manifest.json is not valid JSON/);
    await expectRefused(tar([{ name: 'oci-layout', data: '{' }, { name: 'index.json', data: '{}' }]), /oci-layout is not valid JSON/);
    await expectRefused(tar([{ name: 'oci-layout', data: '{"imageLayoutVersion":"2.0.0"}' }, { name: 'index.json', data: '{}' }]), /unsupported OCI layout version "2.0.0"/);
    const badManifest = Buffer.from('{"schemaVersion": 2, "config": ');
    const bm = doc(MediaType.OCI_MANIFEST, badManifest);
    await expectRefused(ociArchive([{ ...bm.desc, annotations: { 'io.containerd.image.name': 'x.io/a:1' } }], [blobEntry(badManifest)]), new RegExp(`x.io/a:1: manifest ${bm.digest} is not valid JSON`));
    const dimg = makeImage({ oci: false });
    await expectRefused(tar([
      { name: 'c.json', data: '{"os": ' },
      { name: 'manifest.json', data: JSON.stringify([{ Config: 'c.json', RepoTags: ['a:1'], Layers: [] }]) },
    ]), /a:1: config "c.json" is not valid JSON/);
    void dimg;
  });

  it('JSON documents over the cap', async () => {
    const big = Buffer.alloc(MAX_JSON_SIZE + 1, 0x20);
    big.write('[]', 0);
    await expectRefused(tar([{ name: 'manifest.json', data: big }]), /"manifest.json" is 20971521 bytes, over the 20971520-byte limit/);
  });

  it('not a tar file, and zero-length input', async () => {
    await expectRefused(Buffer.from('hello, world\n'), /input is not a tar archive/);
    await expectRefused(Buffer.alloc(4096, 0x41), /input is not a tar archive/);
    await expectRefused(Buffer.alloc(0), /input is empty/);
    await expectRefused(tar([]), /not an image archive: it has neither index.json \(OCI\) nor manifest.json \(Docker\)/);
    await expectRefused(zlib.gzipSync(Buffer.from('just text, gzipped')), /not a tar archive/);
  });

  it('a corrupt header in the middle', async () => {
    const a = Buffer.from(good);
    const second = 512 + 512; // oci-layout entry: header + 1 block of data
    a[second + 10] ^= 0xff;
    await expectRefused(a, /corrupt: invalid tar header at offset 1024 after entry "oci-layout"/);
  });
});
