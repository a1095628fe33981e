/**
 * Decoders keep memory flat whatever the input decompresses to: a zstd frame of zeros
 * written in one chunk must not be decoded into one huge burst of buffered output
 * (zstd-napi's DecompressStream pushes everything a chunk decodes to, ignoring
 * backpressure), and frames needing a window over the limit are refused clearly.
 */
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CompressStream } from 'zstd-napi';
import * as zstdBinding from 'zstd-napi/binding';
import { decompressStream } from '../../../src/compression/codecs';

async function zstdZeros(bytes: number): Promise<Buffer> {
  const out: Buffer[] = [];
  const zero = Buffer.alloc(1 << 20);
  await pipeline(
    Readable.from((function* () { for (let n = 0; n < bytes; n += zero.length) yield zero; })()),
    new CompressStream({ compressionLevel: 3 }),
    new Writable({ write(c, _e, cb) { out.push(c); cb(); } }),
  );
  return Buffer.concat(out);
}

/** Feed `input` in one chunk, read slowly, and report the most output ever buffered. */
async function maxBuffered(dec: NodeJS.ReadWriteStream & { readableLength: number; writableLength: number }, input: Buffer): Promise<{ max: number; total: number }> {
  let max = 0;
  let total = 0;
  const sink = new Writable({
    highWaterMark: 64 * 1024,
    write(c: Buffer, _e, cb) {
      total += c.length;
      max = Math.max(max, dec.readableLength);
      setImmediate(cb);
    },
  });
  await pipeline(Readable.from([input]), dec as unknown as NodeJS.ReadWriteStream, sink);
  return { max, total };
}

describe('zstd decoding is bounded', () => {
  const SIZE = 128 * 1024 * 1024;
  let bomb: Buffer;
  beforeAll(async () => {
    bomb = await zstdZeros(SIZE);
  });

  it('buffers a bounded amount of output for a small frame that decodes to 128 MiB', async () => {
    expect(bomb.length).toBeLessThan(64 * 1024);
    const r = await maxBuffered(decompressStream('zstd') as never, bomb);
    expect(r.total).toBe(SIZE);
    expect(r.max).toBeLessThan(4 * 1024 * 1024);
  });

  it('refuses a frame whose window is over 128 MiB with a clear error', async () => {
    const cctx = new zstdBinding.CCtx();
    cctx.setParameter(zstdBinding.CParameter.windowLog, 30);
    cctx.setParameter(zstdBinding.CParameter.enableLongDistanceMatching, 1);
    const src = Buffer.alloc(1024, 1);
    const dst = Buffer.alloc(4096);
    // size unknown up front (continue, then end): the frame keeps its 1 GiB window
    const [, p1] = cctx.compressStream2(dst, src, zstdBinding.EndDirective.continue);
    const [, p2] = cctx.compressStream2(dst.subarray(p1), Buffer.alloc(0), zstdBinding.EndDirective.end);
    const frame = dst.subarray(0, p1 + p2);
    await expect(pipeline(Readable.from([frame]), decompressStream('zstd'), new Writable({ write(_c, _e, cb) { cb(); } }))).rejects.toThrow(/zstd.*window/i);
  });
});
