/**
 * Hostile layers against unpack: every limit fails with one clear line naming the image,
 * the layer (index and digest) and what was exceeded; a failed unpack leaves no snapshot
 * and nothing in snapshots/tmp.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CompressStream } from 'zstd-napi';
import { Store } from '../../../src/store';
import { rawTar, RawEntry } from '../../../src/builder/raw';
import { unpackImage } from '../../../src/snapshots/ops';
import { exportRootfs } from '../../../src/snapshots/export';
import { ImgtoolError } from '../../../src/errors';
import { Limits } from '../../../src/limits';
import { encodeHeader, END_OF_ARCHIVE, removeTree } from '../../../src/tar';
import { MediaType } from '../../../src/images/mediatypes';
import { hostPlatform } from '../../../src/platform';
import { tmpDir, rmrf } from '../../helpers/cli';
import { putImage, viewOf, sha } from './helpers';

const file = (name: string, data: string, extra: Partial<RawEntry> = {}): RawEntry => ({ name, data, mode: 0o644, ...extra });

let base: string;
let root: string;
let store: Store;
let n = 0;

beforeEach(() => {
  base = tmpDir('imgtool-limits-');
  root = path.join(base, 'store');
  store = Store.open(root);
});
afterEach(() => {
  store.close();
  rmrf(base);
});

function tmpLeft(): string[] {
  const t = path.join(root, 'snapshots', 'tmp');
  return fs.existsSync(t) ? fs.readdirSync(t) : [];
}

async function expectRefused(tars: Buffer[], re: RegExp, limits?: Partial<Limits>, compression: 'gzip' | 'zstd' | 'none' = 'gzip') {
  const name = `example.com/lim${n++}:latest`;
  const img = await putImage(store, name, tars, { compression });
  let err: unknown;
  try {
    await unpackImage(store, name, { limits });
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ImgtoolError);
  const msg = (err as Error).message;
  expect(msg).toMatch(re);
  const i = tars.length; // the failing layer is the last one in these tests
  expect(msg).toContain(`image ${name} layer ${i}/${tars.length} (${img.digests[i - 1]})`);
  expect(msg).not.toMatch(/\n|undefined|snapshots\/tmp|Maximum call stack/);
  expect(store.snapshots.list()).toHaveLength(i - 1);
  expect(tmpLeft()).toEqual([]);
  return msg;
}

/** A zstd layer holding one file of `size` zero bytes, compressed while streaming. */
async function zstdZeroLayer(size: number): Promise<{ blob: Buffer; diffId: string }> {
  const head = encodeHeader({ name: 'zeros', type: 'file', size, mode: 0o644, uid: 0, gid: 0, mtime: 0 });
  const pad = Buffer.alloc((512 - (size % 512)) % 512);
  const zero = Buffer.alloc(1 << 20);
  function* tarBytes() {
    yield head;
    for (let left = size; left > 0; left -= zero.length) yield left >= zero.length ? zero : zero.subarray(0, left);
    yield pad;
    yield END_OF_ARCHIVE;
  }
  const { createHash } = await import('node:crypto');
  const h = createHash('sha256');
  for (const b of tarBytes()) h.update(b);
  const out: Buffer[] = [];
  await pipeline(Readable.from(tarBytes()), new CompressStream({ compressionLevel: 3 }), new Writable({ write(c, _e, cb) { out.push(c); cb(); } }));
  return { blob: Buffer.concat(out), diffId: 'sha256:' + h.digest('hex') };
}

describe('decompressed size', () => {
  it('a layer over --max-layer-size stops at the bound', async () => {
    const big = rawTar([file('a', 'x'.repeat(3 * 1024 * 1024))]);
    await expectRefused([rawTar([file('ok', 'ok')]), big], /decompresses to more than 2 MiB \(limit --max-layer-size\)/, { layerSize: 2 * 1024 * 1024 });
  });

  it('a small zstd layer that decompresses to 320 MiB is a bomb at --max-ratio 2000, and unpacks at the default', async () => {
    const { blob, diffId } = await zstdZeroLayer(320 * 1024 * 1024);
    expect(blob.length).toBeLessThan(64 * 1024);
    const name = `example.com/bomb:latest`;
    await store.content.ingestBuffer(blob);
    const p = hostPlatform();
    const config = Buffer.from(JSON.stringify({ architecture: p.architecture, os: p.os, rootfs: { type: 'layers', diff_ids: [diffId] } }));
    await store.content.ingestBuffer(config);
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OCI_MANIFEST, config: { mediaType: MediaType.OCI_CONFIG, digest: sha(config), size: config.length }, layers: [{ mediaType: MediaType.OCI_LAYER_ZSTD, digest: sha(blob), size: blob.length }] }));
    await store.content.ingestBuffer(manifest);
    store.images.put(name, { mediaType: MediaType.OCI_MANIFEST, digest: sha(manifest), size: manifest.length });
    await expect(unpackImage(store, name, { limits: { ratio: 2000 } })).rejects.toThrow(new RegExp(`image ${name} layer 1/1 \\(${sha(blob)}\\): ${blob.length} compressed bytes decompress to more than 2000 times that .*--max-ratio`));
    expect(tmpLeft()).toEqual([]);
    // the default lets it through (a zero-filled file in a zstd layer is real: empty VM disk images)
    const r = await unpackImage(store, name);
    expect(r.layers[0].applied).toBe(true);
  });
});

describe('entries and names', () => {
  it('more entries than --max-entries', async () => {
    const entries = Array.from({ length: 20 }, (_, i) => file(`f${i}`, ''));
    await expectRefused([rawTar(entries)], /more than 10 entries \(limit --max-entries\)/, { entries: 10 });
  });

  it('a PAX path with a NUL byte is a header error naming the entry', async () => {
    await expectRefused([rawTar([file('x', 'x', { pax: { path: 'etc/pa\0sswd' } })])], /entry "etc\/pa\\u0000sswd".*NUL byte/);
  });

  it('a 300-byte name component', async () => {
    const long = 'n'.repeat(300);
    await expectRefused([rawTar([file(`d/${long}`, 'x', { longNames: 'pax' })])], /entry "d\/n+…n+" \(302 bytes\): name component of 300 bytes, over 255/);
  });

  it('a 5,000-byte path', async () => {
    const p = Array.from({ length: 50 }, () => 'p'.repeat(99)).join('/');
    await expectRefused([rawTar([file(p, 'x', { longNames: 'pax' })])], /path of 4999 bytes, over 4000/);
  });

  it('a path 2,500 directories deep is refused clearly (no stack overflow), nothing left in tmp', async () => {
    const p = Array.from({ length: 2500 }, () => 'a').join('/');
    await expectRefused([rawTar([file(p, 'x', { longNames: 'pax' })])], /path of 4999 bytes, over 4000/);
  });
});

describe('deep and long paths that are accepted', () => {
  it('a path 1,990 directories deep unpacks and exports, under a store root of 450 bytes (SQLite caps the root at 512)', async () => {
    store.close();
    let deepRoot = base;
    while (deepRoot.length < 450) deepRoot = path.join(deepRoot, 'r'.repeat(50));
    fs.mkdirSync(deepRoot, { recursive: true });
    root = deepRoot;
    store = Store.open(root);
    const p = Array.from({ length: 1990 }, () => 'a').join('/') + '/f';
    const name = 'example.com/deep:latest';
    await putImage(store, name, [rawTar([file(p, 'deep', { longNames: 'pax' })]), rawTar([file(p, 'deeper', { longNames: 'pax' })])]);
    const r = await unpackImage(store, name);
    const view = await viewOf(store, r.chainId!);
    expect(view.get(p)!.meta.size).toBe(6);
    const out = path.join(base, 'rootfs.tar');
    await exportRootfs(store, name, { output: out });
    expect(fs.statSync(out).size).toBeGreaterThan(4000);
    expect(tmpLeft()).toEqual([]);
    // (fs.rmSync recurses and overflows the stack on this tree)
    removeTree(path.join(root, 'snapshots'));
  });
});

describe('raw system errors get context', () => {
  it('gzip trailing garbage names the layer', async () => {
    const name = `example.com/garbage:latest`;
    const tarb = rawTar([file('a', 'a')]);
    const zlib = await import('node:zlib');
    const blob = Buffer.concat([zlib.gzipSync(tarb), Buffer.from('GARBAGE GARBAGE GARBAGE')]);
    await store.content.ingestBuffer(blob);
    const p = hostPlatform();
    const config = Buffer.from(JSON.stringify({ architecture: p.architecture, os: p.os, rootfs: { type: 'layers', diff_ids: [sha(tarb)] } }));
    await store.content.ingestBuffer(config);
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OCI_MANIFEST, config: { mediaType: MediaType.OCI_CONFIG, digest: sha(config), size: config.length }, layers: [{ mediaType: MediaType.OCI_LAYER_GZIP, digest: sha(blob), size: blob.length }] }));
    await store.content.ingestBuffer(manifest);
    store.images.put(name, { mediaType: MediaType.OCI_MANIFEST, digest: sha(manifest), size: manifest.length });
    const e = await unpackImage(store, name).catch((x) => x);
    expect(e).toBeInstanceOf(ImgtoolError);
    expect(e.message).toMatch(new RegExp(`^image ${name} layer 1/1 \\(${sha(blob)}\\): .*gzip`));
    expect(tmpLeft()).toEqual([]);
  });
});
