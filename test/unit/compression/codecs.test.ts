import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import * as crypto from 'node:crypto';
import * as zlib from 'node:zlib';
import { CompressStream } from 'zstd-napi';
import {
  AutoDecompressStream, codecVersion, compressBufferSync, compressStream, decompressStream, detectCompression, effectiveLevel, zstdParams,
} from '../../../src/compression/codecs';
import { textBytes, randomBytes } from '../../../src/builder';

function data(size: number): Buffer {
  // half compressible text, half random: exercises match finding and literals
  return Buffer.concat([...textBytes(size / 2, 7), ...randomBytes(size / 2, 8)]);
}

async function run(t: NodeJS.ReadWriteStream, input: Buffer, chunk: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let i = 0; i < input.length; i += chunk) parts.push(input.subarray(i, i + chunk));
  const out: Buffer[] = [];
  await pipeline(Readable.from(parts), t, new Writable({ write(c, _e, cb) { out.push(c); cb(); } }));
  return Buffer.concat(out);
}

const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

describe('codecs', () => {
  const input = data(3 * 1024 * 1024);

  it('detects compression by magic bytes', () => {
    expect(detectCompression(zlib.gzipSync(Buffer.from('x')))).toBe('gzip');
    expect(detectCompression(compressBufferSync('zstd', Buffer.from('x')))).toBe('zstd');
    expect(detectCompression(Buffer.from('ustar\0'))).toBe('none');
    expect(detectCompression(Buffer.from([0x28, 0xb5]))).toBe('none'); // too short to be zstd
  });

  it('writes a fixed gzip header: no name, mtime 0, OS byte 3', async () => {
    const out = await run(compressStream('gzip'), input, 65536);
    expect(out.subarray(0, 4).toString('hex')).toBe('1f8b0800'); // magic, deflate, no flags (no FNAME)
    expect(out.readUInt32LE(4)).toBe(0); // mtime
    expect(out[9]).toBe(3);
    expect(zlib.gunzipSync(out).equals(input)).toBe(true);
  });

  it('zstd frames carry no checksum and no content size', async () => {
    const out = await run(compressStream('zstd'), input, 65536);
    expect(detectCompression(out)).toBe('zstd');
    const fhd = out[4];
    expect(fhd & 0x04).toBe(0); // Content_Checksum_flag
    expect(fhd & 0x20).toBe(0); // Single_Segment_flag (would imply a content size)
    expect(fhd >> 6).toBe(0); // Frame_Content_Size_flag
    expect(fhd & 0x03).toBe(0); // no dictionary ID
  });

  it.each(['gzip', 'zstd'] as const)('%s: same bytes whatever the input chunking, and equal to the buffer API', async (c) => {
    const a = await run(compressStream(c), input, 1000);
    const b = await run(compressStream(c), input, 65536);
    const d = await run(compressStream(c), input, input.length);
    expect(sha(a)).toBe(sha(b));
    expect(sha(a)).toBe(sha(d));
    expect(sha(compressBufferSync(c, input))).toBe(sha(a));
    const back = await run(decompressStream(c), a, 4096);
    expect(back.equals(input)).toBe(true);
  });

  it.each(['gzip', 'zstd'] as const)('%s: the buffer API equals the stream for small inputs too', async (c) => {
    for (const n of [0, 1, 1000, 300000]) {
      const small = input.subarray(0, n);
      expect(sha(compressBufferSync(c, small))).toBe(sha(await run(compressStream(c), small, 4096)));
    }
  });

  it('zstd is single-threaded: no multithreaded context (its job buffers were the RSS of convert), bytes independent of the machine', async () => {
    expect(zstdParams(3).nbWorkers).toBe(0);
    // Multithreaded mode would give other bytes (the digests of variants made before issue 16).
    const mt = sha(await run(new CompressStream({ ...zstdParams(3), nbWorkers: 2 }), input, 131072));
    const st = sha(await run(compressStream('zstd'), input, 131072));
    expect(st).not.toBe(mt);
    expect(sha(await run(compressStream('zstd'), input, 7777))).toBe(st);
  });

  it('levels change the bytes; levels are validated', async () => {
    expect(sha(compressBufferSync('gzip', input, 1))).not.toBe(sha(compressBufferSync('gzip', input, 9)));
    expect(sha(compressBufferSync('zstd', input, 1))).not.toBe(sha(compressBufferSync('zstd', input, 9)));
    expect(effectiveLevel('gzip')).toBe(6);
    expect(effectiveLevel('zstd')).toBe(3);
    expect(effectiveLevel('none', 5)).toBeUndefined();
    expect(() => effectiveLevel('gzip', 10)).toThrow(/gzip level/);
    expect(() => effectiveLevel('zstd', 0)).toThrow(/zstd level/);
    expect(() => effectiveLevel('zstd', 2.5)).toThrow(/zstd level/);
    expect(() => compressStream('gzip', -1)).toThrow();
  });

  it('codecVersion names the library and fingerprints its output', () => {
    expect(codecVersion('gzip')).toMatch(new RegExp(`^zlib-${process.versions.zlib.replace(/[.+]/g, '\\$&')}\\+[0-9a-f]{12}$`));
    expect(codecVersion('zstd')).toMatch(/^zstd-\d+\.\d+\.\d+\+[0-9a-f]{12}$/);
    expect(codecVersion('none')).toBeUndefined();
    expect(codecVersion('gzip')).toBe(codecVersion('gzip'));
  });

  it.each(['gzip', 'zstd', 'none'] as const)('AutoDecompressStream decodes %s', async (c) => {
    const small = input.subarray(0, 30000);
    const enc = compressBufferSync(c, small);
    const ad = new AutoDecompressStream();
    const out = await run(ad, enc, 3); // tiny first chunks: magic split across writes
    expect(ad.detected).toBe(c);
    expect(out.equals(small)).toBe(true);
  });
});
