import * as fs from 'node:fs';
import * as crypto from 'node:crypto';
import { DigestMismatchError } from '../errors';
import { COPY_BUFFERS, COPY_CHUNK, copyBuffers, readFileChunks } from '../fsutil/chunks';

export { COPY_BUFFERS, COPY_CHUNK, copyBuffers };

export interface CopyOptions {
  /** Re-verify: the copied bytes must hash to this digest (sha256:…), else DigestMismatchError. */
  digest?: string;
  /** What the blob is, for error messages (e.g. `<mediaType> <digest>`). */
  what: string;
  /** Called with the running count of bytes written. */
  onBytes?: (n: number) => void;
  /** Stop (no new reads) and fail with the signal's reason once it is aborted. */
  signal?: AbortSignal;
}

/**
 * Copy the file `src` (exactly `size` bytes) into `dstFd` at `dstPos` with positional
 * writes: one read at a time into a free pool buffer, the next read starts before the
 * current chunk is hashed, writes run concurrently (up to the pool size). Resolves only
 * once every read and write has settled (the pool is free again); the source size must
 * be `size` and, with `opts.digest`, the bytes must hash to it.
 */
export async function copyFileAt(src: string, dstFd: number, dstPos: number, size: number, pool: Buffer[], opts: CopyOptions): Promise<void> {
  const hash = opts.digest ? crypto.createHash('sha256') : undefined;
  let written = 0;
  /** Write `buf[off, n)` at chunk position `pos` (+ off), continuing after short writes. */
  const write = (buf: Buffer, off: number, pos: number, done: (err?: Error | null) => void): void => {
    fs.write(dstFd, buf, off, buf.length - off, dstPos + pos + off, (e, w) => {
      if (!e && w > 0 && off + w < buf.length) return write(buf, off + w, pos, done);
      if (e || w === 0) return done(e ?? new Error(`${opts.what}: write returned 0 bytes`));
      written += buf.length;
      opts.onBytes?.(written);
      done();
    });
  };
  await readFileChunks(src, 0, size, pool, (chunk, pos, done) => write(chunk, 0, pos, done), {
    what: opts.what, exactSize: size, signal: opts.signal, onChunk: hash && ((c) => hash.update(c)),
  });
  if (hash) {
    const actual = 'sha256:' + hash.digest('hex');
    if (actual !== opts.digest) throw new DigestMismatchError(opts.digest!, actual, opts.what);
  }
}
