import * as fs from 'node:fs';
import * as path from 'node:path';
import * as crypto from 'node:crypto';
import { Readable, Writable, Transform, TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Metadata } from '../metadata';
import { Digest, digestHex, validateDigest } from '../digest';
import { DigestMismatchError, ImgtoolError, NotFoundError, SizeMismatchError } from '../errors';
import { parseTempOwner, tempOwnerTag } from '../leases/process';
import { cancellable, cancelledError } from '../cancel';
import { afterShortWrite, syncDir as fsSyncDir } from '../fsutil';

export interface BlobInfo {
  digest: Digest;
  size: number;
  createdAt: number;
}

/**
 * Something that can hold resources against garbage collection (a lease). The content
 * store calls `attach` inside the same write transaction that makes a blob visible,
 * so prune can never delete a blob between "it exists" and "it is mine".
 */
export interface ResourceHolder {
  attach(kind: 'content' | 'snapshot' | 'image', ref: string): void;
}

export interface WriterOptions {
  /** Expected digest; verified at commit. Also enables the already-present fast path. */
  digest?: Digest;
  /** Expected size; verified while writing (never writes past it) and at commit. */
  size?: number;
  /** Attach the committed blob to this holder. */
  lease?: ResourceHolder;
  /** Called with the running byte count. */
  onProgress?: (bytes: number) => void;
  /** What the blob is, for error messages (e.g. "layer 2 of docker.io/library/x:1"). */
  what?: string;
}

/** Default cap for JSON documents (manifests, indexes, configs), as containerd does. */
export const MAX_JSON_SIZE = 20 * 1024 * 1024;
/** Blobs up to this size are read with one synchronous read (see readBuffer). */
const SYNC_READ_MAX = 256 * 1024;

/** absorb(): the slab size and how many slabs a writer keeps in flight (its memory bound). */
const SLAB = 1024 * 1024;
const MAX_SLABS = 4;

/** A blob writer starts a background fdatasync after this many bytes (see ContentWriter). */
const WRITEBACK_BYTES = 32 * 1024 * 1024;

/**
 * Content-addressed blob store. Blobs live at `ROOT/content/blobs/sha256/<hex>`, are
 * written to `ROOT/content/ingest/` first, hashed while written, verified, fsynced and
 * renamed into place; the `blobs` table records what is committed.
 */
export class ContentStore {
  readonly root: string;
  readonly blobsDir: string;
  readonly ingestDir: string;
  /** Corrupt blob files moved aside by `fsck --repair` (kept for the user; nothing reads or prunes them). */
  readonly quarantineDir: string;
  private readonly meta: Metadata;
  private dirsMade = false;

  constructor(root: string, meta: Metadata) {
    this.root = path.join(root, 'content');
    this.blobsDir = path.join(this.root, 'blobs', 'sha256');
    this.ingestDir = path.join(this.root, 'ingest');
    this.quarantineDir = path.join(this.root, 'quarantine');
    this.meta = meta;
  }

  private ensureDirs(): void {
    if (this.dirsMade) return;
    fs.mkdirSync(this.blobsDir, { recursive: true });
    fs.mkdirSync(this.ingestDir, { recursive: true });
    this.dirsMade = true;
  }

  /** Filesystem path of a blob (for fast copies); check `has()` first. */
  blobPath(digest: Digest): string {
    return path.join(this.blobsDir, digestHex(digest));
  }

  info(digest: Digest): BlobInfo | undefined {
    const row = this.meta.stmt('SELECT digest, size, created_at FROM blobs WHERE digest = ?').get(digest) as
      | { digest: string; size: number; created_at: number }
      | undefined;
    return row ? { digest: row.digest, size: row.size, createdAt: row.created_at } : undefined;
  }

  has(digest: Digest): boolean {
    return !!this.meta.stmt('SELECT 1 FROM blobs WHERE digest = ?').get(digest);
  }

  /**
   * Attach a blob to `lease` if it is present, under the write lock (so prune cannot take
   * it between the check and the attach). Call before reading a blob a command needs.
   */
  attachIfPresent(digest: Digest, lease: ResourceHolder | undefined): boolean {
    return this.meta.write(() => {
      if (!this.has(digest)) return false;
      lease?.attach('content', digest);
      return true;
    });
  }

  /** Every committed blob, from the database. */
  list(): BlobInfo[] {
    const rows = this.meta.db.prepare('SELECT digest, size, created_at FROM blobs ORDER BY digest').all() as Array<{
      digest: string; size: number; created_at: number;
    }>;
    return rows.map((r) => ({ digest: r.digest, size: r.size, createdAt: r.created_at }));
  }

  /** Blob files on disk (digest from the file name), whether or not the database knows them. */
  *walkFiles(): Generator<{ digest: Digest; path: string }> {
    let names: string[] = [];
    try {
      names = fs.readdirSync(this.blobsDir);
    } catch {
      return;
    }
    for (const n of names.sort()) {
      if (/^[a-f0-9]{64}$/.test(n)) yield { digest: `sha256:${n}`, path: path.join(this.blobsDir, n) };
    }
  }

  /** Temp files of in-flight or abandoned ingests, with the PID that created each. */
  *walkIngest(): Generator<{ path: string; pid: number }> {
    let names: string[] = [];
    try {
      names = fs.readdirSync(this.ingestDir);
    } catch {
      return;
    }
    for (const n of names) {
      yield { path: path.join(this.ingestDir, n), pid: parseTempOwner(n)?.pid ?? 0 };
    }
  }

  /**
   * Open a blob for reading. With `verify`, the stream errors at its end if the bytes do not hash
   * to the digest. `start`/`end` (inclusive) read a range, unverified (a resumed upload: the
   * caller hashes across ranges).
   */
  openRead(digest: Digest, opts: { verify?: boolean; what?: string; start?: number; end?: number } = {}): Readable {
    const info = this.info(digest);
    if (!info) throw new NotFoundError(`${opts.what ? opts.what + ': ' : ''}content ${digest} not found in the store`);
    const ranged = opts.start !== undefined || opts.end !== undefined;
    // An interrupted command (src/cancel) fails its reads with a CancelledError.
    const rs = cancellable(fs.createReadStream(this.blobPath(digest), { highWaterMark: 1024 * 1024, start: opts.start, end: opts.end }), opts.what ?? `content ${digest}`);
    if (!opts.verify || ranged) return rs;
    const check = new VerifyStream(digest, info.size, opts.what);
    rs.on('error', (e) => check.destroy(e));
    return rs.pipe(check);
  }

  /**
   * A small document's bytes, verified against the digest. `known`: the blob's recorded size when
   * the caller already read it (a listing reads every row in one query): no query per document.
   */
  async readBuffer(digest: Digest, maxSize = MAX_JSON_SIZE, known?: { size: number }): Promise<Buffer> {
    const info = known ?? this.info(digest);
    if (!info) throw new NotFoundError(`content ${digest} not found in the store`);
    if (info.size > maxSize) throw new ImgtoolError('INVALID_ARGUMENT', `content ${digest} is ${info.size} bytes, over the ${maxSize}-byte limit for documents`);
    // Small documents (manifests, configs: a few KiB) are read synchronously: four thread-pool
    // round trips (open, fstat, read, close) cost more than the read, e.g. 1,000 per `images`.
    const buf = info.size <= SYNC_READ_MAX ? fs.readFileSync(this.blobPath(digest)) : await fs.promises.readFile(this.blobPath(digest));
    const actual = 'sha256:' + crypto.createHash('sha256').update(buf).digest('hex');
    if (actual !== digest) throw new DigestMismatchError(digest, actual, 'stored blob (run imgtool fsck)');
    return buf;
  }

  async readJSON<T = unknown>(digest: Digest, maxSize = MAX_JSON_SIZE, known?: { size: number }): Promise<T> {
    const buf = await this.readBuffer(digest, maxSize, known);
    try {
      return JSON.parse(buf.toString('utf8')) as T;
    } catch (e) {
      throw new ImgtoolError('INVALID_ARCHIVE', `content ${digest} is not valid JSON: ${(e as Error).message}`);
    }
  }

  /** Recorded, and its file exists with the recorded size (a cheap check, no hashing). */
  private storedIntact(digest: Digest): boolean {
    const info = this.info(digest);
    if (!info) return false;
    try {
      return fs.statSync(this.blobPath(digest)).size === info.size;
    } catch {
      return false;
    }
  }

  /** Begin writing a blob. Call `commit()` after the data has been written and the stream finished. */
  writer(opts: WriterOptions = {}): ContentWriter {
    this.ensureDirs();
    if (opts.digest) validateDigest(opts.digest);
    // Fast path: the blob is already here. Hold it for the lease first (same write
    // lock as prune), then only hash the incoming bytes to verify them. A stored file
    // that is gone or has the wrong size is not trusted: the bytes are written again and
    // the commit renames them over it (same-size corruption is fsck's: it quarantines).
    if (opts.digest && opts.lease) {
      const present = this.meta.write(() => {
        if (!this.storedIntact(opts.digest!)) return false;
        opts.lease!.attach('content', opts.digest!);
        return true;
      });
      if (present) return new ContentWriter(this, this.meta, opts, null);
    } else if (opts.digest && this.storedIntact(opts.digest)) {
      return new ContentWriter(this, this.meta, opts, null);
    }
    const tmp = path.join(this.ingestDir, `${tempOwnerTag()}-${crypto.randomBytes(8).toString('hex')}`);
    return new ContentWriter(this, this.meta, opts, tmp);
  }

  /** Stream `src` into the store. Resolves once the blob is committed. */
  async ingest(src: Readable, opts: WriterOptions = {}): Promise<BlobInfo> {
    const w = this.writer(opts);
    try {
      await pipeline(src, w);
      return await w.commit();
    } catch (e) {
      await w.abort();
      throw e;
    }
  }

  async ingestBuffer(buf: Buffer, opts: WriterOptions = {}): Promise<BlobInfo> {
    return this.ingest(Readable.from([buf]), opts);
  }

  /**
   * Remove a blob's rows and file at once, inside the caller's write transaction. Not
   * crash-safe when the file exists (a crash before the commit leaves a row without its
   * file): use `forgetLocked` + `removeFileIfUnrecorded` for that. Fine for rows whose
   * file is already gone.
   */
  deleteLocked(digest: Digest): void {
    this.forgetLocked(digest);
    try {
      fs.unlinkSync(this.blobPath(digest));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }

  /**
   * Crash-safe removal, step 1 (inside the caller's write transaction): forget the blob's
   * rows. Its file stays until `removeFileIfUnrecorded` runs after the commit, so a crash in
   * between leaves a file without a row (an orphan prune removes), never a row without a file.
   */
  forgetLocked(digest: Digest): void {
    this.meta.db.prepare('DELETE FROM blobs WHERE digest = ?').run(digest);
    this.meta.db.prepare('DELETE FROM content_labels WHERE digest = ?').run(digest);
  }

  /** Step 2, after the forgetting transaction committed: unlink the file unless the blob was recorded again meanwhile. */
  removeFileIfUnrecorded(digest: Digest): void {
    this.meta.write(() => {
      if (this.has(digest)) return;
      try {
        fs.unlinkSync(this.blobPath(digest));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
    });
  }

  /**
   * Move a corrupt blob's file to `quarantineDir/<hex>.<ms>` and forget its rows, inside the
   * caller's write transaction (which should also forget rows other concepts keep for it,
   * e.g. variants). The move is made durable before the rows can commit, so a crash leaves
   * at worst a row without its file (fsck: missing; the next load rewrites it). Returns
   * where the file went, or undefined when there was no file.
   */
  quarantineLocked(digest: Digest): string | undefined {
    fs.mkdirSync(this.quarantineDir, { recursive: true });
    const to = path.join(this.quarantineDir, `${digestHex(digest)}.${Date.now()}`);
    let moved = true;
    try {
      fs.renameSync(this.blobPath(digest), to);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new ImgtoolError('INTERNAL', `blob ${digest}: cannot move it to ${this.quarantineDir}: ${(e as Error).message}`, [], { cause: e });
      }
      moved = false;
    }
    if (moved) this.syncDir(`blob ${digest}`);
    this.forgetLocked(digest);
    return moved ? to : undefined;
  }

  /** Register a blob file that is already at its final path (fsck repair). */
  registerLocked(digest: Digest, size: number): void {
    this.meta.db.prepare('INSERT OR IGNORE INTO blobs (digest, size, created_at) VALUES (?, ?, ?)').run(digest, size, Date.now());
  }

  // ---- labels -----------------------------------------------------------

  labels(digest: Digest): Record<string, string> {
    const rows = this.meta.db.prepare('SELECT key, value FROM content_labels WHERE digest = ?').all(digest) as Array<{ key: string; value: string }>;
    const out: Record<string, string> = {};
    for (const r of rows) out[r.key] = r.value;
    return out;
  }

  setLabel(digest: Digest, key: string, value: string | undefined): void {
    if (value === undefined) this.meta.db.prepare('DELETE FROM content_labels WHERE digest = ? AND key = ?').run(digest, key);
    else this.meta.db.prepare('INSERT INTO content_labels (digest, key, value) VALUES (?, ?, ?) ON CONFLICT(digest, key) DO UPDATE SET value = excluded.value').run(digest, key, value);
  }

  /**
   * @internal Make a verified, fsynced temp file the blob `digest` and record it, inside the
   * caller's write transaction (used by ContentWriter and the transcoder). The rename is
   * made durable (directory fsync) before the row can commit: a crash after COMMIT must
   * never leave a row whose file the directory lost. `what` names the blob in errors.
   */
  commitLocked(tmp: string | null, digest: Digest, size: number, lease?: ResourceHolder, what?: string): void {
    const final = this.blobPath(digest);
    lease?.attach('content', digest); // first: a holder whose lease expired must not even rename
    if (tmp) {
      // Another process may have committed the same digest meanwhile: rename is atomic
      // and the bytes are identical, so replacing it is harmless. On a failure below the
      // transaction rolls back and the file stays as an orphan (prune removes it).
      fs.renameSync(tmp, final);
      this.syncDir(what ?? `blob ${digest}`);
    } else if (!this.has(digest)) {
      throw new ImgtoolError('INTERNAL', `blob ${digest} vanished while being verified; retry`);
    }
    this.meta.db.prepare('INSERT OR IGNORE INTO blobs (digest, size, created_at) VALUES (?, ?, ?)').run(digest, size, Date.now());
  }

  /**
   * @internal fsync the blobs directory so renames and unlinks survive a crash. Only
   * EINVAL/ENOTSUP (a filesystem that cannot fsync directories) are ignored; anything
   * else (EIO: the directory may not be on disk) fails, naming `what`.
   */
  syncDir(what = 'content store'): void {
    try {
      fsSyncDir(this.blobsDir, { missingOk: true }); // missing: no blob was ever written here
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new ImgtoolError('INTERNAL', `${what}: cannot fsync the blobs directory ${this.blobsDir}: ${code ?? (e as Error).message}`, [], { cause: e });
    }
  }
}

/**
 * Writable that hashes and writes each chunk to a temp file. `commit()` verifies digest
 * and size, fsyncs, renames into place and records the blob in one write transaction.
 * When the blob already exists (`tmp === null`) it only hashes, to verify the input.
 */
export class ContentWriter extends Writable {
  private readonly hash = crypto.createHash('sha256');
  written = 0;
  private fd: number | undefined;
  private readonly tmp: string | null;
  private done = false;

  constructor(
    private readonly store: ContentStore,
    private readonly meta: Metadata,
    private readonly opts: WriterOptions,
    tmp: string | null,
  ) {
    super({ highWaterMark: 4 * 1024 * 1024 });
    this.tmp = tmp;
  }

  /** Settles once the temp file's open has completed (or failed): a close must wait for it. */
  private opened: Promise<void> = Promise.resolve();

  override _construct(cb: (err?: Error | null) => void): void {
    if (!this.tmp) return cb();
    let settled!: () => void;
    this.opened = new Promise<void>((res) => (settled = res));
    fs.open(this.tmp, 'wx', 0o644, (err, fd) => {
      if (!err) this.fd = fd;
      settled();
      cb(err ?? null);
    });
  }

  /** Set when the input went past the expected size: nothing more is written. */
  private overflow: Error | undefined;

  /**
   * Hash and count each chunk as it is handed over (in order), not when the file write
   * is issued: hashing the next chunks then overlaps the write in flight.
   */
  private account(c: Buffer): void {
    this.hash.update(c);
    this.written += c.length;
    if (this.opts.size !== undefined && this.written > this.opts.size && !this.overflow) {
      this.overflow = new SizeMismatchError(this.describe(), this.opts.size, this.written);
    }
    this.opts.onProgress?.(this.written);
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  override write(chunk: any, encoding?: any, cb?: any): boolean {
    if (typeof encoding === 'function') {
      cb = encoding;
      encoding = undefined;
    }
    if (!this.writableEnded && !this.destroyed) {
      let buf: Buffer | undefined;
      if (Buffer.isBuffer(chunk)) buf = chunk;
      else if (typeof chunk === 'string') buf = Buffer.from(chunk, (encoding as BufferEncoding | undefined) ?? 'utf8');
      else if (chunk instanceof Uint8Array) buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      if (buf) {
        if (this.slabUsed) this.flushSlab();
        this.account(buf);
        return super.write(buf, cb);
      }
    }
    return super.write(chunk, encoding, cb);
  }

  /** `end(chunk)` does not go through `write()` in node's Writable: route the last chunk through it. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  override end(chunk?: any, encoding?: any, cb?: any): this {
    if (typeof chunk === 'function') return super.end(chunk);
    if (typeof encoding === 'function') {
      cb = encoding;
      encoding = undefined;
    }
    if (chunk !== undefined && chunk !== null) this.write(chunk, encoding);
    if (this.slabUsed) this.flushSlab();
    return super.end(cb);
  }

  /** Free slabs for absorb(); `slabCount` were made in all (at most MAX_SLABS + 1). */
  private readonly freeSlabs: Buffer[] = [];
  private slabCount = 0;
  private slab: Buffer | undefined;
  private slabUsed = 0;
  private slabWaiters: Array<() => void> = [];

  /**
   * The copying write, for a caller that reuses its buffer (the registry's wire client reads
   * every socket chunk into the same memory): hash and count `chunk`, copy it into a slab, and
   * send a full slab to the file; `chunk` is not retained. Slabs are recycled once written, so
   * the memory touched stays hot and bounded (MAX_SLABS slabs). Returns false when every slab
   * is in flight: wait for `ready()` before the next call. Ends through `end()` as usual.
   */
  absorb(chunk: Buffer): boolean {
    if (this.writableEnded || this.destroyed) return false;
    this.account(chunk);
    let off = 0;
    while (off < chunk.length) {
      if (!this.slab) {
        this.slab = this.freeSlabs.pop();
        if (!this.slab) {
          this.slab = Buffer.allocUnsafeSlow(SLAB);
          this.slabCount++;
        }
      }
      const k = chunk.copy(this.slab, this.slabUsed, off);
      off += k;
      this.slabUsed += k;
      if (this.slabUsed === SLAB) this.flushSlab();
    }
    return this.hasSlab();
  }

  /** Resolves when absorb() may be called again; rejects once the writer has failed. */
  ready(): Promise<void> {
    if (this.destroyed) return Promise.reject(this.errored ?? new ImgtoolError('INTERNAL', `${this.describe()}: writer closed`));
    if (this.hasSlab()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const onClose = () => reject(this.errored ?? new ImgtoolError('INTERNAL', `${this.describe()}: writer closed`));
      this.once('close', onClose);
      this.slabWaiters.push(() => {
        this.off('close', onClose);
        resolve();
      });
    });
  }

  /** A whole slab to spare beyond the one being filled (a chunk of up to SLAB bytes fits). */
  private hasSlab(): boolean {
    return this.freeSlabs.length > 0 || this.slabCount < MAX_SLABS;
  }

  private flushSlab(): void {
    const s = this.slab!;
    const n = this.slabUsed;
    this.slab = undefined;
    this.slabUsed = 0;
    super.write(n === s.length ? s : s.subarray(0, n), () => {
      this.freeSlabs.push(s);
      const w = this.slabWaiters;
      this.slabWaiters = [];
      for (const f of w) f();
    });
  }

  private describe(): string {
    return this.opts.what ?? (this.opts.digest ? `blob ${this.opts.digest}` : 'blob');
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this._writev([{ chunk }], cb);
  }

  override _writev(items: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    // Already hashed and counted by write(); never write past the expected size.
    if (this.overflow) return cb(this.overflow);
    const cancelled = cancelledError(this.opts.what);
    if (cancelled) return cb(cancelled);
    if (this.fd === undefined || this.closing) return cb();
    const fd = this.fd;
    const chunks = items.length === 1 ? [items[0].chunk] : items.map((i) => i.chunk);
    let settle!: () => void;
    this.writing = new Promise<void>((res) => (settle = res));
    writeAll(fd, chunks, (err) => {
      this.writing = undefined;
      settle();
      if (!err) {
        for (const c of chunks) this.unsynced += c.length;
        this.startWriteback(fd);
      }
      cb(err);
    });
  }

  /**
   * The file write (or the final fsync + close) in flight; the stream issues one at a
   * time. Its request may still sit in the thread pool: closing the descriptor before it
   * settles would let it land in whatever file reuses the fd number, so nothing closes
   * the fd until it settles (see `release`).
   */
  private writing: Promise<void> | undefined;

  /** Bytes written to the file since the last background sync began. */
  private unsynced = 0;
  /** A background fdatasync in flight (the descriptor is not closed before it ends). */
  private syncing: Promise<void> | undefined;

  /**
   * Every WRITEBACK_BYTES, start an fdatasync in the background (one at a time) so the
   * disk writes overlap reading and hashing instead of all waiting for the final fsync.
   * Only an early start: durability still comes from the fsync in _final.
   */
  private startWriteback(fd: number): void {
    if (this.unsynced < WRITEBACK_BYTES || this.syncing) return;
    this.unsynced = 0;
    this.syncing = new Promise<void>((resolve) => fs.fdatasync(fd, () => resolve())).then(() => {
      this.syncing = undefined;
    });
  }

  /** Run `f` once no write and no background sync uses the descriptor. */
  private whenIdle(f: () => void): void {
    if (!this.writing && !this.syncing) return f();
    void Promise.all([this.writing, this.syncing]).then(() => this.whenIdle(f));
  }

  /** Closing the temp file after an error or abort (shared by abort() and _destroy). */
  private closing: Promise<void> | undefined;

  /**
   * Once nothing uses the descriptor, close it unless `_final` already did (taken only
   * when idle, so it is never closed twice); every caller awaits the same close.
   */
  private release(): Promise<void> {
    // An abort while the open is still pending must not let the file appear after its removal.
    this.closing ??= this.opened.then(() => new Promise<void>((res) =>
      this.whenIdle(() => {
        const fd = this.fd;
        this.fd = undefined;
        if (fd === undefined) res();
        else fs.close(fd, () => res());
      }),
    ));
    return this.closing;
  }

  /** Verify, fsync, rename, record. Call after the stream has finished. */
  async commit(): Promise<BlobInfo> {
    if (this.done) throw new ImgtoolError('INTERNAL', 'writer already committed');
    const actual = 'sha256:' + this.hash.digest('hex');
    const size = this.written;
    try {
      if (this.opts.size !== undefined && size !== this.opts.size) throw new SizeMismatchError(this.describe(), this.opts.size, size);
      if (this.opts.digest && actual !== this.opts.digest) throw new DigestMismatchError(this.opts.digest, actual, this.describe());
      if (this.fd !== undefined) throw new ImgtoolError('INTERNAL', 'commit() called before the writer finished');
      this.meta.write(() => this.store.commitLocked(this.tmp, actual, size, this.opts.lease, this.describe()));
      this.done = true;
      return { digest: actual, size, createdAt: Date.now() };
    } catch (e) {
      await this.abort();
      throw e;
    }
  }

  /** Drop the temp file. Safe to call more than once. */
  async abort(): Promise<void> {
    this.done = true;
    await this.release();
    if (this.tmp) await fs.promises.rm(this.tmp, { force: true });
  }

  /** End of data: fsync and close the temp file so 'finish' means durable. */
  override _final(cb: (err?: Error | null) => void): void {
    if (this.fd === undefined || this.closing) return cb();
    const fd = this.fd;
    this.whenIdle(() => {
      if (this.closing) return cb(); // aborted meanwhile: release() closes it
      let settle!: () => void;
      this.writing = new Promise<void>((res) => (settle = res));
      fs.fsync(fd, (e) => {
        fs.close(fd, (e2) => {
          this.fd = undefined;
          this.writing = undefined;
          settle();
          cb(e ?? e2);
        });
      });
    });
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    // autoDestroy runs after a successful finish too: keep the file for commit() then.
    if (!err) return cb();
    // The write in flight (if any) settles before the close: see `writing`.
    void this.release().then(() => (this.tmp ? fs.rm(this.tmp, { force: true }, () => cb(err)) : cb(err)));
  }
}

function writeAll(fd: number, chunks: Buffer[], cb: (err?: Error | null) => void): void {
  fs.writev(fd, chunks, (err, n) => {
    if (err) return cb(err);
    let total = 0;
    for (const c of chunks) total += c.length;
    if (n === total) return cb();
    // Short write: continue with what is left.
    const rest = afterShortWrite(chunks, n);
    writeAll(fd, rest, cb);
  });
}

/** Pass-through that fails at the end when the bytes do not match digest and size. */
export class VerifyStream extends Transform {
  private readonly hash = crypto.createHash('sha256');
  private n = 0;
  constructor(private readonly digest: Digest, private readonly size: number | undefined, private readonly what?: string) {
    super({ highWaterMark: 1024 * 1024 });
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.n += chunk.length;
    if (this.size !== undefined && this.n > this.size) return cb(new SizeMismatchError(this.what ?? `blob ${this.digest}`, this.size, this.n));
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    if (this.size !== undefined && this.n !== this.size) return cb(new SizeMismatchError(this.what ?? `blob ${this.digest}`, this.size, this.n));
    const actual = 'sha256:' + this.hash.digest('hex');
    if (actual !== this.digest) return cb(new DigestMismatchError(this.digest, actual, this.what ?? 'blob'));
    cb();
  }
}
