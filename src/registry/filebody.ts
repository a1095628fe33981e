/**
 * A request body read from a file (a stored blob, or a range of it) into recycled buffers: the
 * upload side of ./wire.ts. A read stream hands out a fresh buffer per read, and every fresh
 * megabyte is page faults (measured: a 128 MiB monolithic PUT took 0.15 s longer that way); here
 * at most SLOTS buffers of SLOT bytes go round: read → `onChunk` (hash, count) → socket write →
 * reused once the socket has taken it.
 *
 * Invariants:
 *  - Bytes [start, end) of the file are sent in order, each exactly once; a file shorter than
 *    `end` fails the request (never a short body under a longer Content-Length).
 *  - `onChunk` sees every chunk before it is written; `beforeEnd` runs after the last one and
 *    may throw (a digest that does not match): the request is then destroyed, never ended, so
 *    the registry never receives a complete body of wrong bytes.
 *  - The descriptor is closed exactly once, after the last read settled (also on errors and
 *    cancellation, which fails the request with a CancelledError).
 */
import * as fs from 'node:fs';
import type { Writable } from 'node:stream';
import { ImgtoolError } from '../errors';
import { cancelledError } from '../cancel';

const SLOT = 1024 * 1024;
const SLOTS = 4;

export interface FileBodyOptions {
  /** Each chunk, in order, before it is sent. */
  onChunk?: (chunk: Buffer) => void;
  /** After the last chunk, before the request is ended; throw to fail the request. */
  beforeEnd?: () => void;
  /** For errors: `blob sha256:… of x:1`. */
  what: string;
}

export class FileBody {
  private fd: number | undefined;
  private closed = false;
  private reading = false;
  private failed: Error | undefined;

  constructor(readonly file: string, readonly start: number, readonly end: number, private readonly opts: FileBodyOptions) {
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
      throw new ImgtoolError('INTERNAL', `${opts.what}: bad file range ${start}-${end}`);
    }
  }

  get length(): number {
    return this.end - this.start;
  }

  /** Send the bytes into `req` and end it (or destroy it with the error). */
  pipeTo(req: Writable): void {
    const free: Buffer[] = [];
    let made = 0;
    let pos = this.start;
    let inflight = 0;
    const fail = (e: Error) => {
      if (this.failed) return;
      this.failed = e;
      this.destroy();
      req.destroy(e);
    };
    const pump = (): void => {
      if (this.failed || this.reading || this.closed) return;
      const c = cancelledError(this.opts.what);
      if (c) return fail(c);
      if (pos >= this.end) {
        if (inflight) return; // end once every write was taken
        try {
          this.opts.beforeEnd?.();
        } catch (e) {
          return fail(e as Error);
        }
        this.destroy();
        req.end();
        return;
      }
      let buf = free.pop();
      if (!buf) {
        if (made >= SLOTS) return; // a write callback pumps again
        buf = Buffer.allocUnsafeSlow(SLOT);
        made++;
      }
      const slot = buf;
      this.reading = true;
      fs.read(this.fd!, slot, 0, Math.min(SLOT, this.end - pos), pos, (err, n) => {
        this.reading = false;
        if (this.failed) return this.destroy();
        if (err) return fail(new ImgtoolError('INTERNAL', `${this.opts.what}: reading ${this.file}: ${err.code ?? err.message}`, [], { cause: err }));
        if (n === 0) return fail(new ImgtoolError('MISSING_CONTENT', `${this.opts.what}: ${this.file} ended at byte ${pos}, before ${this.end} (run imgtool fsck)`));
        pos += n;
        const chunk = slot.subarray(0, n);
        try {
          this.opts.onChunk?.(chunk);
        } catch (e) {
          return fail(e as Error);
        }
        inflight++;
        req.write(chunk, () => {
          inflight--;
          free.push(slot);
          pump();
        });
        pump();
      });
    };
    fs.open(this.file, 'r', (err, fd) => {
      if (err) return fail(new ImgtoolError('MISSING_CONTENT', `${this.opts.what}: opening ${this.file}: ${err.code ?? err.message}`, [], { cause: err }));
      if (this.failed || this.closed) return void fs.close(fd, () => undefined);
      this.fd = fd;
      pump();
    });
  }

  /** Close the file (once no read is in flight); the request is the caller's. */
  destroy(): void {
    if (this.closed) return;
    if (this.reading) {
      // The read callback calls destroy() again once it settles.
      this.failed ??= new Error('destroyed');
      return;
    }
    this.closed = true;
    const fd = this.fd;
    this.fd = undefined;
    if (fd !== undefined) fs.close(fd, () => undefined);
  }
}
