import * as fs from 'node:fs';
import * as crypto from 'node:crypto';
import { DigestMismatchError, SizeMismatchError } from '../errors';

/**
 * Size of each reused copy buffer and how many a copier holds (flat memory: 4 MiB).
 * Measured on the 652 MiB bench image: 0.5–2 MiB chunks cost ~0.45 s of system time,
 * 4 MiB chunks ~1.1 s (the chunk no longer stays in cache between read, hash and write).
 */
export const COPY_CHUNK = 1024 * 1024;
export const COPY_BUFFERS = 4;

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

/** A small pool of large buffers, reused across copies; a buffer is reused only after its write completed. */
export function copyBuffers(n = COPY_BUFFERS, size = COPY_CHUNK): Buffer[] {
  return Array.from({ length: n }, () => Buffer.allocUnsafeSlow(size));
}

/**
 * Copy the file `src` (exactly `size` bytes) into `dstFd` at `dstPos` with positional
 * writes: one read at a time into a free pool buffer, the next read starts before the
 * current chunk is hashed, writes run concurrently (up to the pool size). Resolves only
 * once every read and write has settled (the pool is free again); the source size must
 * be `size` and, with `opts.digest`, the bytes must hash to it.
 */
export function copyFileAt(src: string, dstFd: number, dstPos: number, size: number, pool: Buffer[], opts: CopyOptions): Promise<void> {
  return new Promise((resolve, reject) => new BlobCopy(src, dstFd, dstPos, size, pool, opts, resolve, reject).start());
}

class BlobCopy {
  private srcFd = -1;
  private readPos = 0;
  private written = 0;
  private reading = false;
  private writing = 0;
  private readonly free: Buffer[];
  private readonly hash: crypto.Hash | undefined;
  private err: unknown;
  private settled = false;

  constructor(
    private readonly src: string,
    private readonly dstFd: number,
    private readonly dstPos: number,
    private readonly size: number,
    pool: Buffer[],
    private readonly opts: CopyOptions,
    private readonly resolve: () => void,
    private readonly reject: (e: unknown) => void,
  ) {
    this.free = pool.slice();
    this.hash = opts.digest ? crypto.createHash('sha256') : undefined;
  }

  start(): void {
    fs.open(this.src, 'r', (e, fd) => {
      if (e) return this.fail(e);
      this.srcFd = fd;
      fs.fstat(fd, (e2, st) => {
        if (e2) return this.fail(e2);
        if (st.size !== this.size) return this.fail(new SizeMismatchError(this.opts.what, this.size, st.size));
        this.pump();
      });
    });
  }

  private fail(e: unknown): void {
    this.err ??= e;
    this.check();
  }

  /** Start the next read when a buffer is free; finish when everything has settled. */
  private pump(): void {
    if (!this.err && this.opts.signal?.aborted) this.err = this.opts.signal.reason;
    if (!this.err && !this.reading && this.readPos < this.size && this.free.length) {
      const buf = this.free.pop()!;
      const len = Math.min(buf.length, this.size - this.readPos);
      this.reading = true;
      fs.read(this.srcFd, buf, 0, len, this.readPos, (e, n) => this.onRead(e, n, buf));
    }
    this.check();
  }

  private onRead(e: NodeJS.ErrnoException | null, n: number, buf: Buffer): void {
    this.reading = false;
    if (e || n === 0) {
      this.free.push(buf);
      return this.fail(e ?? new SizeMismatchError(this.opts.what, this.size, this.readPos));
    }
    if (this.err) {
      this.free.push(buf);
      return this.check();
    }
    const pos = this.readPos;
    this.readPos += n;
    this.writing++; // counted before pump(): the copy must not settle before this chunk is written
    this.pump(); // read ahead while this chunk is hashed and written
    this.hash?.update(n === buf.length ? buf : buf.subarray(0, n));
    this.write(buf, 0, n, pos);
  }

  /** Write `buf[off, n)` at chunk position `pos` (+ off), continuing after short writes. */
  private write(buf: Buffer, off: number, n: number, pos: number): void {
    fs.write(this.dstFd, buf, off, n - off, this.dstPos + pos + off, (e, w) => {
      if (!e && w > 0 && off + w < n) return this.write(buf, off + w, n, pos);
      this.writing--;
      this.free.push(buf);
      if (e || w === 0) return this.fail(e ?? new Error(`${this.opts.what}: write returned 0 bytes`));
      this.written += n;
      this.opts.onBytes?.(this.written);
      this.pump();
    });
  }

  private check(): void {
    if (this.settled || this.reading || this.writing) return;
    if (!this.err && this.readPos < this.size) return;
    this.settled = true;
    const finish = () => {
      if (this.err) return this.reject(this.err);
      if (this.hash) {
        const actual = 'sha256:' + this.hash.digest('hex');
        if (actual !== this.opts.digest) return this.reject(new DigestMismatchError(this.opts.digest!, actual, this.opts.what));
      }
      this.resolve();
    };
    if (this.srcFd < 0) return finish();
    fs.close(this.srcFd, (e) => {
      this.err ??= e ?? undefined;
      finish();
    });
  }
}
