import * as zlib from 'node:zlib';
import { Transform, PassThrough } from 'node:stream';
import { CompressStream, DecompressStream } from 'zstd-napi';
import * as zstdBinding from 'zstd-napi/binding';
import { Compression } from '../images/mediatypes';
import { InvalidArgumentError } from '../errors';
import * as os from 'node:os';

export type { Compression };

/** Magic bytes: gzip 1f 8b; zstd 28 b5 2f fd. Needs at least 4 bytes to be sure. */
export function detectCompression(head: Buffer): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  return 'none';
}

export const DEFAULT_LEVEL: Record<Compression, number | undefined> = { none: undefined, gzip: 6, zstd: 3 };

/** Version of the codec that produces a compression's bytes; recorded with each variant. */
export function codecVersion(c: Compression): string | undefined {
  if (c === 'gzip') return `zlib-${process.versions.zlib}`;
  if (c === 'zstd') return `zstd-${zstdBinding.versionString()}`;
  return undefined;
}

/**
 * Deterministic compressor. gzip: node's zlib writes a fixed header (no name, mtime 0,
 * OS byte 3) so equal input + level + zlib version give equal bytes. zstd: fixed
 * parameters, no checksum, content size unknown, always multithreaded mode with
 * nbWorkers >= 1, whose output does not depend on the worker count.
 */
export function compressStream(c: Compression, level?: number): Transform {
  switch (c) {
    case 'gzip': {
      const lv = level ?? DEFAULT_LEVEL.gzip!;
      if (lv < 0 || lv > 9) throw new InvalidArgumentError(`gzip level must be 0..9, got ${lv}`);
      return zlib.createGzip({ level: lv, chunkSize: 128 * 1024 });
    }
    case 'zstd': {
      const lv = level ?? DEFAULT_LEVEL.zstd!;
      if (lv < 1 || lv > 19) throw new InvalidArgumentError(`zstd level must be 1..19, got ${lv}`);
      return new CompressStream({
        compressionLevel: lv,
        checksumFlag: false,
        contentSizeFlag: false,
        dictIDFlag: false,
        nbWorkers: Math.max(1, Math.min(os.availableParallelism?.() ?? os.cpus().length, 8)),
      });
    }
    case 'none':
      return new PassThrough();
  }
}

export function decompressStream(c: Compression): Transform {
  switch (c) {
    case 'gzip':
      return zlib.createGunzip({ chunkSize: 128 * 1024 });
    case 'zstd':
      return new DecompressStream();
    case 'none':
      return new PassThrough();
  }
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
