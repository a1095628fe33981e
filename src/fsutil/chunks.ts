/**
 * Reading a file range through a small pool of reused buffers: the one way imgtool streams a
 * stored blob to somewhere else (a positional write into an archive, src/archive/copy.ts; a
 * request body, src/registry/filebody.ts). A read stream hands out a fresh buffer per read, and
 * every fresh megabyte costs page faults; here the same few buffers go round.
 *
 * Invariants:
 *  - Bytes [start, end) are handed to `sink` in order, each exactly once, one read at a time;
 *    the next read starts before the current chunk is given to `onChunk` and `sink` (read-ahead).
 *  - A buffer is reused only after the sink called `done` for it; at most `pool.length` chunks
 *    are with the sink at once (flat memory).
 *  - A file that ends before `end` fails (`short(pos)`); with `exactSize`, a file whose size is
 *    not that fails before the first read (SizeMismatchError).
 *  - The promise settles only once every read and every sink write has settled and the file is
 *    closed; the first error wins; an aborted `signal` stops new reads and fails with its reason.
 */
import * as fs from 'node:fs';
import { SizeMismatchError } from '../errors';

/**
 * Size of each reused buffer and how many a reader holds (flat memory: 4 MiB). Measured on the
 * 652 MiB bench image: 0.5–2 MiB chunks cost ~0.45 s of system time, 4 MiB chunks ~1.1 s (the
 * chunk no longer stays in cache between read, hash and write).
 */
export const COPY_CHUNK = 1024 * 1024;
export const COPY_BUFFERS = 4;

/** A small pool of large buffers, reused across reads; a buffer is reused only after its chunk was done. */
export function copyBuffers(n = COPY_BUFFERS, size = COPY_CHUNK): Buffer[] {
  return Array.from({ length: n }, () => Buffer.allocUnsafeSlow(size));
}

/** Takes a chunk at file position `pos`; calls `done` (once) when its buffer may be reused. */
export type ChunkSink = (chunk: Buffer, pos: number, done: (err?: Error | null) => void) => void;

export interface ChunkOptions {
  /** For errors: `<mediaType> <digest>`, `blob sha256:… of x:1`. */
  what: string;
  /** Each chunk, in order, before the sink gets it (hash it here). */
  onChunk?: (chunk: Buffer) => void;
  /** The file must be exactly this many bytes (checked with fstat before reading). */
  exactSize?: number;
  /** The error for a file that ends at `pos`, before `end` (default SizeMismatchError). */
  short?: (pos: number) => Error;
  /** Stop (no new reads) and fail with the signal's reason once it is aborted. */
  signal?: AbortSignal;
}

export function readFileChunks(src: string, start: number, end: number, pool: Buffer[], sink: ChunkSink, opts: ChunkOptions): Promise<void> {
  return new Promise((resolve, reject) => new ChunkReader(src, start, end, pool, sink, opts, resolve, reject).start());
}

class ChunkReader {
  private fd = -1;
  private pos: number;
  private reading = false;
  private withSink = 0;
  private readonly free: Buffer[];
  private err: unknown;
  private settled = false;

  constructor(
    private readonly src: string,
    start: number,
    private readonly end: number,
    pool: Buffer[],
    private readonly sink: ChunkSink,
    private readonly opts: ChunkOptions,
    private readonly resolve: () => void,
    private readonly reject: (e: unknown) => void,
  ) {
    this.pos = start;
    this.free = pool.slice();
  }

  start(): void {
    fs.open(this.src, 'r', (e, fd) => {
      if (e) return this.fail(e);
      this.fd = fd;
      const exact = this.opts.exactSize;
      if (exact === undefined) return this.pump();
      fs.fstat(fd, (e2, st) => {
        if (e2) return this.fail(e2);
        if (st.size !== exact) return this.fail(new SizeMismatchError(this.opts.what, exact, st.size));
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
    if (!this.err && !this.reading && this.pos < this.end && this.free.length) {
      const buf = this.free.pop()!;
      const len = Math.min(buf.length, this.end - this.pos);
      this.reading = true;
      fs.read(this.fd, buf, 0, len, this.pos, (e, n) => this.onRead(e, n, buf));
    }
    this.check();
  }

  private onRead(e: NodeJS.ErrnoException | null, n: number, buf: Buffer): void {
    this.reading = false;
    if (e || n === 0) {
      this.free.push(buf);
      return this.fail(e ?? (this.opts.short ? this.opts.short(this.pos) : new SizeMismatchError(this.opts.what, this.end, this.pos)));
    }
    if (this.err) {
      this.free.push(buf);
      return this.check();
    }
    const pos = this.pos;
    this.pos += n;
    this.withSink++; // counted before pump(): the read must not settle before this chunk is done
    this.pump(); // read ahead while this chunk is hashed and handed on
    const chunk = n === buf.length ? buf : buf.subarray(0, n);
    try {
      this.opts.onChunk?.(chunk);
    } catch (err) {
      this.withSink--;
      this.free.push(buf);
      return this.fail(err);
    }
    let called = false;
    this.sink(chunk, pos, (err) => {
      if (called) return;
      called = true;
      this.withSink--;
      this.free.push(buf);
      if (err) return this.fail(err);
      this.pump();
    });
  }

  private check(): void {
    if (this.settled || this.reading || this.withSink) return;
    if (!this.err && this.pos < this.end) return;
    this.settled = true;
    const finish = () => (this.err ? this.reject(this.err) : this.resolve());
    if (this.fd < 0) return finish();
    fs.close(this.fd, (e) => {
      this.err ??= e ?? undefined;
      finish();
    });
  }
}
