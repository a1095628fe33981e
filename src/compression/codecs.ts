import * as zlib from 'node:zlib';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { Transform, PassThrough } from 'node:stream';
import type * as ZstdNapi from 'zstd-napi';
import type * as ZstdBinding from 'zstd-napi/binding';
import { Compression } from '../images/mediatypes';
import { InvalidArchiveError, InvalidArgumentError } from '../errors';
import { defineZstdDecoder, ZstdDecoderClass } from './zstd-decoder';

// zstd-napi (a native addon, ~8 ms) is loaded on first use: commands that reuse variants or
// only list never need it.
let zstdNapiMod: typeof ZstdNapi | undefined;
let zstdBindingMod: typeof ZstdBinding | undefined;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const zstdNapi = (): typeof ZstdNapi => (zstdNapiMod ??= require('zstd-napi') as typeof ZstdNapi);
// eslint-disable-next-line @typescript-eslint/no-require-imports
const zstdBinding = (): typeof ZstdBinding => (zstdBindingMod ??= require('zstd-napi/binding') as typeof ZstdBinding);

export type { Compression };

export const COMPRESSIONS: readonly Compression[] = ['none', 'gzip', 'zstd'];

export function isCompression(s: unknown): s is Compression {
  return s === 'none' || s === 'gzip' || s === 'zstd';
}

/** Magic bytes: gzip 1f 8b; zstd 28 b5 2f fd. Needs at least 4 bytes to be sure. */
export function detectCompression(head: Buffer): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  return 'none';
}

/** Compression of a file, by its first bytes. */
export async function detectFileCompression(file: string): Promise<Compression> {
  const fh = await fs.promises.open(file, 'r');
  try {
    const buf = Buffer.alloc(4);
    const { bytesRead } = await fh.read(buf, 0, 4, 0);
    return detectCompression(buf.subarray(0, bytesRead));
  } finally {
    await fh.close();
  }
}

export const DEFAULT_LEVEL: Record<Compression, number | undefined> = { none: undefined, gzip: 6, zstd: 3 };

const LEVEL_RANGE: Record<'gzip' | 'zstd', [number, number]> = { gzip: [0, 9], zstd: [1, 19] };

/**
 * The level a compression actually uses: `level` validated, or the default.
 * Always undefined for `none`.
 */
export function effectiveLevel(c: Compression, level?: number): number | undefined {
  if (c === 'none') return undefined;
  const lv = level ?? DEFAULT_LEVEL[c]!;
  const [lo, hi] = LEVEL_RANGE[c];
  if (!Number.isInteger(lv) || lv < lo || lv > hi) throw new InvalidArgumentError(`${c} level must be an integer ${lo}..${hi}, got ${level}`);
  return lv;
}

/**
 * Fixed zstd parameters: single-threaded (nbWorkers = 0), no checksum, no content size (it
 * would depend on whether the size was known up front), no dictionary. Single-threaded
 * streaming output depends only on the level, the input and the codec build (`codecVersion`),
 * not on how the input is chunked nor on the machine's core count.
 *
 * Why not zstd's multithreaded mode (imgtool used it until issue 16; its bytes differ from
 * single-threaded ones, so zstd variants made since then have other digests): on the
 * machines that matter, a layer's conversion runs its stages on their own threads anyway
 * (`transcode.ts`: decode on one, encode on another) and several layers convert at once, so
 * zstd's own workers only competed for the same cores. Measured on a 200 MiB layer at level
 * 3: one MT context costs 40-60 MB more than a single-threaded one (its job buffers) and
 * ~30% more CPU for the same ratio, and each layer converting in parallel held one.
 */
export function zstdParams(level: number) {
  return {
    compressionLevel: level,
    checksumFlag: false,
    contentSizeFlag: false,
    dictIDFlag: false,
    nbWorkers: 0,
  };
}

/** gzip header OS byte imgtool writes everywhere (3 = Unix, what zlib writes on Linux). */
export const GZIP_OS_BYTE = 3;

/**
 * Deterministic compressor. gzip: zlib writes a fixed header (no name, no comment,
 * mtime 0, XFL from the level); the OS byte, which zlib sets per build platform, is
 * overwritten with 3 so the bytes do not depend on the OS. zstd: see `zstdParams`.
 * The output also depends on the codec build and CPU path: see `codecVersion`.
 */
export function compressStream(c: Compression, level?: number): Transform {
  const lv = effectiveLevel(c, level);
  switch (c) {
    case 'gzip': {
      const gz = zlib.createGzip({ level: lv, chunkSize: 256 * 1024 });
      fixGzipOsByte(gz);
      return gz;
    }
    case 'zstd':
      return new (zstdNapi().CompressStream)(zstdParams(lv!));
    case 'none':
      return new PassThrough({ highWaterMark: 1024 * 1024 });
  }
}

/** Overwrite byte 9 (OS) of the gzip member header as it is pushed out. */
function fixGzipOsByte(gz: Transform): void {
  let seen = 0;
  const push = gz.push.bind(gz);
  gz.push = (chunk: unknown, enc?: BufferEncoding): boolean => {
    if (seen <= 9 && Buffer.isBuffer(chunk)) {
      if (seen + chunk.length > 9 && chunk[9 - seen] !== GZIP_OS_BYTE) chunk[9 - seen] = GZIP_OS_BYTE;
      seen += chunk.length;
    }
    return push(chunk, enc);
  };
}

export function decompressStream(c: Compression): Transform {
  switch (c) {
    case 'gzip':
      return zlib.createGunzip({ chunkSize: 256 * 1024 });
    case 'zstd':
      return new (zstdDecoder())();
    case 'none':
      return new PassThrough({ highWaterMark: 1024 * 1024 });
  }
}

/**
 * Largest zstd window a frame may ask for: 2^27 = 128 MiB, zstd's own default limit
 * (ZSTD_WINDOWLOG_LIMIT_DEFAULT; `zstd --long=27`). The decoder's memory is the window
 * plus one output buffer, whatever the frame decompresses to.
 */
export const ZSTD_WINDOW_LOG_MAX = 27;

/**
 * Streaming zstd decoder that honours backpressure and caps the window (see zstd-decoder.ts,
 * whose factory the transcoding worker evaluates too).
 */
let zstdDecoderCls: ZstdDecoderClass | undefined;
function zstdDecoder(): ZstdDecoderClass {
  return (zstdDecoderCls ??= defineZstdDecoder(Transform, zstdBinding(), ZSTD_WINDOW_LOG_MAX, (e) =>
    typeof e === 'string' ? new CodecError(e) : zstdError(e),
  ));
}

/** A decoding failure of a compressed stream; whoever knows what the stream is prefixes that. */
export class CodecError extends InvalidArchiveError {}

function zstdError(e: Error): Error {
  if (/too much memory/i.test(e.message)) {
    return new CodecError(`zstd frame needs a window larger than ${1 << (ZSTD_WINDOW_LOG_MAX - 20)} MiB (zstd's default limit, windowLogMax ${ZSTD_WINDOW_LOG_MAX}); refusing it`);
  }
  return new CodecError(describeCodecError('zstd', e));
}

/**
 * What went wrong decoding a `c` stream, in imgtool's words (zlib's and zstd's own texts are
 * not messages for users): truncated, not that format, a checksum mismatch, or corrupt data.
 */
export function describeCodecError(c: Compression, e: unknown): string {
  const err = e as { code?: string; message?: string };
  const m = err?.message ?? String(e);
  if (err?.code === 'Z_BUF_ERROR' || /unexpected end of file|ended in (the )?middle|truncated/i.test(m)) return `${c} stream is truncated`;
  if (/incorrect header check|Unknown frame descriptor|unknown compression method/i.test(m)) {
    return `${c} data is corrupt: not a ${c} stream at this point (a bad header, or bytes after the end of the stream)`;
  }
  if (/incorrect (data|length) check|header crc mismatch|doesn't match checksum|Src size is incorrect/i.test(m)) return `${c} data is corrupt: checksum mismatch`;
  return `${c} data is corrupt`;
}

/** Compress a buffer exactly as `compressStream` would (tests, small blobs). */
export function compressBufferSync(c: Compression, data: Buffer, level?: number): Buffer {
  const lv = effectiveLevel(c, level);
  if (c === 'none') return Buffer.from(data);
  if (c === 'gzip') {
    const out = zlib.gzipSync(data, { level: lv });
    if (out.length > 9) out[9] = GZIP_OS_BYTE;
    return out;
  }
  // The streaming API, as CompressStream drives it: the one-shot API would know the
  // size up front and pick other parameters for small inputs.
  const zb = zstdBinding();
  const cctx = new zb.CCtx();
  const p = zstdParams(lv!);
  const P = zb.CParameter;
  cctx.setParameter(P.compressionLevel, p.compressionLevel);
  cctx.setParameter(P.checksumFlag, 0);
  cctx.setParameter(P.contentSizeFlag, 0);
  cctx.setParameter(P.dictIDFlag, 0);
  cctx.setParameter(P.nbWorkers, p.nbWorkers);
  const out: Buffer[] = [];
  let src: Buffer = data;
  // (an empty input never reaches CompressStream's _transform: the frame is ended at once)
  while (src.length) {
    const dst = Buffer.allocUnsafe(zstdBinding().cStreamOutSize());
    const [, produced, consumed] = cctx.compressStream2(dst, src, zstdBinding().EndDirective.continue);
    if (produced) out.push(dst.subarray(0, produced));
    src = src.subarray(consumed);
  }
  for (;;) {
    const dst = Buffer.allocUnsafe(zstdBinding().cStreamOutSize());
    const [left, produced] = cctx.compressStream2(dst, Buffer.alloc(0), zstdBinding().EndDirective.end);
    if (produced) out.push(dst.subarray(0, produced));
    if (left === 0) break;
  }
  return Buffer.concat(out);
}

// ---- codec versions ------------------------------------------------------

/**
 * A fixed 192 KiB probe that looks like a layer (text, repeats, some noise), used to
 * fingerprint what a codec build really produces on this machine.
 */
export function codecProbe(): Buffer {
  const words = ['usr', 'lib', 'bin', 'share', 'locale', 'python3', 'site-packages', 'include', 'x86_64', 'linux', 'gnu', 'so', 'doc', 'README', 'LICENSE', 'copyright', 'changelog', 'etc', 'var', 'cache', '#include', 'return', 'static', 'const', 'void', 'int'];
  let s = 0x9e3779b9;
  const rnd = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 0x100000000;
  };
  const parts: string[] = [];
  let n = 0;
  while (n < 192 * 1024) {
    let line = '';
    const k = 2 + Math.floor(rnd() * 8);
    for (let i = 0; i < k; i++) line += (i ? (rnd() < 0.5 ? '/' : ' ') : '') + words[Math.floor(rnd() * words.length)];
    if (rnd() < 0.3) line += ' ' + Math.floor(rnd() * 1e9).toString(36);
    line += '\n';
    parts.push(line);
    n += line.length;
  }
  return Buffer.from(parts.join('')).subarray(0, 192 * 1024);
}

const versionCache = new Map<Compression, string | undefined>();

/**
 * Version of the codec that produces a compression's bytes; recorded with each
 * variant imgtool makes. It is the library version plus a fingerprint of the bytes
 * it produces for a fixed probe, because the same version can produce different
 * bytes on different machines: node's zlib (Chromium's fork) hashes with CRC32C
 * when the CPU has SSE4.2/ARMv8-CRC, and zstd picks its row-based match finder
 * depending on the SIMD the build targets. Equal codecVersion + level + input
 * therefore means equal output.
 */
export function codecVersion(c: Compression): string | undefined {
  if (c === 'none') return undefined;
  if (versionCache.has(c)) return versionCache.get(c);
  const probe = codecProbe();
  const h = crypto.createHash('sha256');
  let v: string;
  if (c === 'gzip') {
    for (const lv of [1, 6]) h.update(compressBufferSync('gzip', probe, lv));
    v = `zlib-${process.versions.zlib}`;
  } else {
    for (const lv of [3, 7]) h.update(compressBufferSync('zstd', probe, lv));
    v = `zstd-${zstdBinding().versionString()}`;
  }
  const out = `${v}+${h.digest('hex').slice(0, 12)}`;
  versionCache.set(c, out);
  return out;
}

/**
 * A transform that sniffs the first bytes of its input, picks the decoder by magic,
 * and decodes through it. `detected` is set once known.
 */
export class AutoDecompressStream extends Transform {
  detected: Compression | undefined;
  private inner: Transform | undefined;
  private head: Buffer[] = [];
  private headLen = 0;
  private pendingCb: ((err?: Error | null) => void) | undefined;

  private start(): void {
    const head = Buffer.concat(this.head);
    this.head = [];
    this.detected = detectCompression(head);
    this.inner = decompressStream(this.detected);
    this.inner.on('data', (d: Buffer) => {
      if (!this.push(d)) this.inner!.pause();
    });
    this.inner.on('error', (e) => this.destroy(e));
    if (head.length) this.inner.write(head);
  }
  override _read(size: number): void {
    if (this.inner && this.inner.isPaused()) this.inner.resume();
    super._read(size);
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (!this.inner) {
      this.head.push(chunk);
      this.headLen += chunk.length;
      if (this.headLen < 4) return cb();
      this.start();
      return cb();
    }
    if (!this.inner.write(chunk)) this.inner.once('drain', () => cb());
    else cb();
  }
  override _flush(cb: (err?: Error | null) => void): void {
    if (!this.inner) this.start();
    this.pendingCb = cb;
    this.inner!.once('end', () => this.pendingCb && this.pendingCb());
    this.inner!.end();
  }
}
