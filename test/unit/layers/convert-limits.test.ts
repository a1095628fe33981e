/**
 * A conversion decodes a stored blob that may never have been decoded before (`load
 * --no-unpack` only checks digests), so it is bounded as unpack is (src/limits): a zstd bomb
 * stops at the first byte past the per-layer cap or the ratio, in-process (small blobs) and in
 * the transcoding worker (big ones) alike, with one line naming the layer and the flag, and
 * nothing is left in the t.store.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CompressStream } from 'zstd-napi';
import { ensureLayer } from '../../../src/layers';
import { LimitExceededError } from '../../../src/errors';
import { WORKER_MIN_BYTES } from '../../../src/compression/transcode';
import { encodeHeader, END_OF_ARCHIVE } from '../../../src/tar';
import { useTempStore } from '../../helpers/store';

jest.setTimeout(120_000);

const ZSTD_LAYER = 'application/vnd.oci.image.layer.v1.tar+zstd';
const t = useTempStore('imgtool-convert-limits-');

/** A zstd layer: `random` incompressible bytes then `zeros` zero bytes; returns its file and diffID. */
async function zstdLayer(random: number, zeros: number): Promise<{ file: string; diffId: string }> {
  const file = path.join(t.dir, `layer-${random}-${zeros}.tar.zst`);
  function* tar() {
    yield encodeHeader({ name: 'noise', type: 'file', size: random, mode: 0o644, uid: 0, gid: 0, mtime: 0 });
    if (random) yield randomBytes(random);
    yield Buffer.alloc((512 - (random % 512)) % 512);
    yield encodeHeader({ name: 'zeros', type: 'file', size: zeros, mode: 0o644, uid: 0, gid: 0, mtime: 0 });
    const z = Buffer.alloc(1 << 20);
    for (let left = zeros; left > 0; left -= z.length) yield left >= z.length ? z : z.subarray(0, left);
    yield Buffer.alloc((512 - (zeros % 512)) % 512);
    yield END_OF_ARCHIVE;
  }
  const h = createHash('sha256');
  const tap = new Transform({ transform(c, _e, cb) { h.update(c); cb(null, c); } });
  await pipeline(Readable.from(tar()), tap, new CompressStream({ compressionLevel: 3 }), fs.createWriteStream(file));
  return { file, diffId: 'sha256:' + h.digest('hex') };
}

async function stored(random: number, zeros: number): Promise<{ digest: string; size: number; diffId: string }> {
  const { file, diffId } = await zstdLayer(random, zeros);
  const info = await t.store.content.ingestBuffer(fs.readFileSync(file));
  return { digest: info.digest, size: info.size, diffId };
}

const blobsNow = () => t.store.content.list().map((b) => b.digest).sort();

describe('converting a stored blob is bounded by the limits', () => {
  it('in-process (a small zstd bomb): the per-layer cap', async () => {
    const b = await stored(0, 96 << 20);
    expect(b.size).toBeLessThan(WORKER_MIN_BYTES);
    const before = blobsNow();
    const p = ensureLayer(t.store, b.diffId as never, { compression: 'gzip', prefer: b.digest as never, preferMediaType: ZSTD_LAYER, limits: { layerSize: 32 << 20 } });
    await expect(p).rejects.toThrow(LimitExceededError);
    await expect(p).rejects.toThrow(/decompresses to more than 32 MiB \(limit --max-layer-size\)/);
    expect(blobsNow()).toEqual(before);
  });

  it('in-process: the ratio, past the first 256 MiB', async () => {
    const b = await stored(0, 300 << 20);
    const p = ensureLayer(t.store, b.diffId as never, { compression: 'gzip', prefer: b.digest as never, preferMediaType: ZSTD_LAYER, limits: { ratio: 1000 } });
    await expect(p).rejects.toThrow(/compressed bytes decompress to more than 1000 times that .*--max-ratio/);
  });

  it('in the transcoding worker (a blob past WORKER_MIN_BYTES): the per-layer cap, naming the layer', async () => {
    const b = await stored(WORKER_MIN_BYTES + (256 << 10), 96 << 20);
    expect(b.size).toBeGreaterThanOrEqual(WORKER_MIN_BYTES);
    const before = blobsNow();
    const p = ensureLayer(t.store, b.diffId as never, { compression: 'gzip', prefer: b.digest as never, preferMediaType: ZSTD_LAYER, limits: { layerSize: 32 << 20 }, what: 'image x layer 1/1' } as never);
    await expect(p).rejects.toThrow(LimitExceededError);
    await expect(p).rejects.toThrow(/converting .*decompresses to more than 32 MiB \(limit --max-layer-size\)/);
    expect(blobsNow()).toEqual(before);
    expect(fs.readdirSync(t.store.content.ingestDir)).toEqual([]);
  });

  it('within the limits the same blobs convert (the bound is not a blanket refusal)', async () => {
    const b = await stored(WORKER_MIN_BYTES + (256 << 10), 8 << 20);
    const r = await ensureLayer(t.store, b.diffId as never, { compression: 'gzip', prefer: b.digest as never, preferMediaType: ZSTD_LAYER, limits: { layerSize: 32 << 20 } });
    expect(r).toMatchObject({ source: 'converted', compression: 'gzip', diffId: b.diffId });
  });
});
