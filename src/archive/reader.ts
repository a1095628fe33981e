/**
 * One streaming pass over an image archive (a tar, possibly gzip/zstd-wrapped).
 *
 * Every regular file is handed to a `BlobSink` as it streams: a store sink ingests it into
 * the content store (import), a hash sink only hashes it (verify, ls-archive). Files under
 * `blobs/sha256/<hex>` are verified against their name while streaming; other files (Docker
 * `<id>/layer.tar`, `<hex>.json`, `<hex>.tar`…) are identified by the digest computed while
 * streaming. Metadata documents (`manifest.json`, `index.json`, `oci-layout`,
 * `repositories`) and small JSON-looking blobs are kept in memory, capped. Nothing is
 * extracted by path; symlinks and hard links are resolved at the end, inside the archive.
 */
import * as posix from 'node:path/posix';
import * as tar from 'tar-stream';

type TarEntry = AsyncIterable<Buffer> & { header: tar.Header };
import { Compression, detectCompression } from '../compression/codecs';
import { Digest, Digester } from '../digest';
import { MAX_JSON_SIZE } from '../content';
import {
  DigestMismatchError, ImgtoolError, InvalidArchiveError, SizeMismatchError, UnsafePathError,
} from '../errors';
import { Progress } from '../progress';
import { ArchiveInputSource, describeInputError, openArchiveInput } from './input';

/** A regular file of the archive, identified by its content. */
export interface ArchiveFile {
  /** Normalised path inside the archive (first path seen for this content). */
  path: string;
  digest: Digest;
  size: number;
  /** Compression sniffed from the file's first bytes. */
  compression: Compression;
}

/** Receives each regular file's bytes as they stream. */
export interface BlobSink {
  begin(entry: { path: string; size: number; expected?: Digest }): BlobTarget;
}

export interface BlobTarget {
  /** Returns false when the caller must wait for `drained()` before writing more. */
  write(chunk: Buffer): boolean;
  drained(): Promise<void>;
  /** Every byte written: resolves once the bytes are verified (and, for a store, committed). */
  finish(): Promise<{ digest: Digest; size: number }>;
  /** Drop what was written. */
  abort(): Promise<void>;
}

/** Hashes and checks each file without storing it (verify, ls-archive). */
export const hashSink: BlobSink = {
  begin({ path, size, expected }) {
    const d = new Digester();
    return {
      write(chunk: Buffer) {
        d.update(chunk);
        return true;
      },
      drained: async () => {},
      async finish() {
        const what = entryWhat(path);
        if (d.size !== size) throw new SizeMismatchError(what, size, d.size);
        const digest = d.digest();
        if (expected && digest !== expected) throw new DigestMismatchError(expected, digest, what);
        return { digest, size: d.size };
      },
      abort: async () => {},
    };
  },
};

export function entryWhat(path: string): string {
  return `archive entry ${JSON.stringify(path)}`;
}

export interface ScanOptions {
  sink: BlobSink;
  progress?: Progress;
  /**
   * Collect per-entry problems (digest/size mismatches, unsafe paths, oversize documents)
   * in `problems` and go on, instead of failing at the first (verify lists every problem).
   */
  collectProblems?: boolean;
  /** Commits allowed in flight while the next entry streams (default 4). */
  maxPending?: number;
}

export interface ArchiveScan {
  /** For messages: the file name or "stdin". */
  label: string;
  /** Compression the whole input was wrapped in. */
  compression: Compression;
  /** Input bytes read, and tar bytes after decompression. */
  bytes: number;
  tarBytes: number;
  entries: number;
  /** Regular files by normalised path (links resolved to their targets). */
  files: Map<string, ArchiveFile>;
  /** Every file's content by digest. */
  blobs: Map<Digest, ArchiveFile>;
  /** Metadata documents by path: `manifest.json`, `index.json`, `oci-layout`, `repositories`. */
  docs: Map<string, Buffer>;
  /** JSON-looking files' bytes by digest (manifests, configs, indexes), within a memory budget. */
  json: Map<Digest, Buffer>;
  /** Links whose target is not a regular file of the archive: path -> target. */
  danglingLinks: Map<string, string>;
  /** Blobs whose bytes did not match their name (reported in `problems`). */
  corrupt: Set<Digest>;
  /** Problems found while reading (only with `collectProblems`). */
  problems: string[];
  warnings: string[];
}

/** Root-level metadata documents, kept in memory (never stored as content). */
export const ARCHIVE_DOCS = new Set(['oci-layout', 'index.json', 'manifest.json', 'repositories']);
/** Memory for JSON-looking blobs kept during one scan. */
export const JSON_BUDGET = 256 * 1024 * 1024;
const BLOB_RE = /^blobs\/([^/]+)\/([^/]+)$/;
const LEGACY_META_RE = /^(?:VERSION|[a-f0-9]{64}\/(?:VERSION|json))$/;

type Role = 'doc' | 'legacy' | 'blob' | 'file';

/**
 * Normalise an entry name: drop `./` and repeated slashes. Absolute names and `..`
 * components are a hostile archive.
 */
export function entryPath(raw: string): string {
  if (raw.startsWith('/')) throw new UnsafePathError(`archive entry ${JSON.stringify(raw)} has an absolute path (hostile archive)`);
  const parts = raw.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new UnsafePathError(`archive entry ${JSON.stringify(raw)} escapes the archive with "..", refusing (hostile archive)`);
  if (raw.includes('\0')) throw new UnsafePathError(`archive entry ${JSON.stringify(raw)} has a NUL byte in its name`);
  return parts.join('/');
}

/** Where a link points, as a normalised archive path; throws when it leaves the archive. */
export function linkTarget(path: string, linkname: string, hard: boolean): string {
  const what = `${hard ? 'hard link' : 'symlink'} ${JSON.stringify(path)} -> ${JSON.stringify(linkname)}`;
  if (!linkname) throw new UnsafePathError(`${what}: empty target`);
  if (linkname.startsWith('/')) throw new UnsafePathError(`${what} points outside the archive (absolute target; hostile archive)`);
  // Hard link names are relative to the archive root, symlinks to the link's directory.
  const joined = hard ? linkname : posix.join(posix.dirname(path), linkname);
  const norm = posix.normalize(joined);
  if (norm === '..' || norm.startsWith('../')) throw new UnsafePathError(`${what} points outside the archive (hostile archive)`);
  return norm === '.' ? '' : norm.replace(/\/+$/, '');
}

function classify(path: string): Role {
  if (ARCHIVE_DOCS.has(path)) return 'doc';
  if (LEGACY_META_RE.test(path)) return 'legacy';
  const m = BLOB_RE.exec(path);
  if (m && m[1] === 'sha256' && /^[a-f0-9]{64}$/.test(m[2])) return 'blob';
  return 'file';
}

function isJsonStart(b: Buffer): boolean {
  for (let i = 0; i < b.length && i < 64; i++) {
    const c = b[i];
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) continue;
    return c === 0x7b; // '{'
  }
  return false;
}

function isEntryProblem(e: unknown): boolean {
  return e instanceof DigestMismatchError || e instanceof SizeMismatchError || e instanceof UnsafePathError ||
    (e instanceof ImgtoolError && e.code === 'INVALID_ARCHIVE' && (e as ImgtoolError & { entryProblem?: boolean }).entryProblem === true);
}

function entryProblem(message: string): ImgtoolError {
  const e = new InvalidArchiveError(message) as InvalidArchiveError & { entryProblem: boolean };
  e.entryProblem = true;
  return e;
}

const pad512 = (n: number) => Math.ceil(n / 512) * 512;

/** Read the whole archive once. See the module comment. */
export async function scanArchive(src: ArchiveInputSource, opts: ScanOptions): Promise<ArchiveScan> {
  const input = await openArchiveInput(src);
  return new Scanner(input, opts).run();
}

class Scanner {
  private readonly out: ArchiveScan;
  private readonly extract = tar.extract();
  private decoded = 0;
  private lastEnd = 0;
  private lastName: string | undefined;
  private current: { name: string; size: number; got: number } | undefined;
  private readonly pending = new Set<Promise<void>>();
  private failure: Error | undefined;
  private jsonLeft = JSON_BUDGET;
  /** Link path -> normalised target (a later entry of the same path wins, as in tar). */
  private readonly links = new Map<string, string>();

  constructor(private readonly input: Awaited<ReturnType<typeof openArchiveInput>>, private readonly opts: ScanOptions) {
    this.out = {
      label: input.label, compression: input.compression, bytes: 0, tarBytes: 0, entries: 0,
      files: new Map(), blobs: new Map(), docs: new Map(), json: new Map(), danglingLinks: new Map(),
      corrupt: new Set(), problems: [], warnings: [],
    };
  }

  private problem(e: unknown): void {
    if (this.opts.collectProblems && isEntryProblem(e)) {
      this.out.problems.push((e as Error).message);
      return;
    }
    throw e;
  }

  private fail(e: Error): void {
    if (!this.failure) this.failure = e;
    this.extract.destroy(e);
  }

  async run(): Promise<ArchiveScan> {
    const task = this.opts.progress?.task(`reading ${this.input.label === 'stdin' ? 'stdin' : 'archive'}`, this.input.total);
    const feed = this.feed(task);
    feed.catch(() => {});
    let err: unknown;
    try {
      for await (const entry of this.extract as unknown as AsyncIterable<TarEntry>) {
        await this.onEntry(entry);
        if (this.failure) throw this.failure;
      }
      await feed;
    } catch (e) {
      err = this.failure ?? e;
    }
    if (err) {
      this.extract.destroy();
      this.input.stream.destroy();
      await feed.catch(() => {});
      await Promise.allSettled([...this.pending]);
      throw this.describe(err);
    }
    await Promise.all([...this.pending]);
    if (this.failure) throw this.describe(this.failure);
    this.out.tarBytes = this.decoded;
    this.out.bytes = this.input.passthrough ? this.decoded : this.input.rawBytes();
    task?.update(this.out.bytes);
    task?.finish();
    this.checkEnd();
    this.resolveLinks();
    return this.out;
  }

  /** Push the (decoded) input into the tar parser, honouring its backpressure. */
  private async feed(task: { update(n: number, t?: number): void } | undefined): Promise<void> {
    const ex = this.extract as unknown as NodeJS.EventEmitter & { write(c: Buffer): boolean; end(): void; destroy(e?: Error): void; destroyed?: boolean };
    try {
      let lastReport = 0;
      for await (const chunk of this.input.stream as AsyncIterable<Buffer>) {
        this.decoded += chunk.length;
        if (task && this.decoded - lastReport >= 1 << 20) {
          lastReport = this.decoded;
          task.update(this.input.passthrough ? this.decoded : this.input.rawBytes());
        }
        if (!ex.write(chunk)) {
          await new Promise<void>((resolve, reject) => {
            const done = (e?: Error) => {
              ex.off('drain', ok);
              ex.off('close', closed);
              ex.off('error', done);
              if (e) reject(e);
              else resolve();
            };
            const ok = () => done();
            const closed = () => done(new ImgtoolError('INTERNAL', 'archive reading stopped'));
            ex.on('drain', ok);
            ex.on('close', closed);
            ex.on('error', done);
          });
        }
      }
      ex.end();
    } catch (e) {
      const err = describeInputError(e as Error, this.input);
      if (!this.failure && !(e instanceof ImgtoolError && e.code === 'INTERNAL')) this.failure = err;
      ex.destroy(err);
      throw err;
    }
  }

  /** One clear line for tar-level failures. */
  private describe(e: unknown): Error {
    if (e instanceof ImgtoolError) return e;
    const err = e as Error;
    const m = err?.message ?? String(e);
    const label = this.input.label;
    const after = this.lastName ? ` after entry ${JSON.stringify(this.lastName)}` : '';
    if (/Unexpected end of data/.test(m)) {
      const c = this.current;
      if (c && c.got < c.size) {
        return new InvalidArchiveError(`archive ${label} is truncated: entry ${JSON.stringify(c.name)} declares ${c.size} bytes but the input ends after ${c.got}`);
      }
      if (this.out.entries === 0) return new InvalidArchiveError(`${label} is not a tar archive (${this.decoded} bytes, no complete tar header)`);
      return new InvalidArchiveError(`archive ${label} is truncated${after}: the input ends at byte ${this.decoded}, inside a tar header or padding`);
    }
    if (/Invalid tar header|Invalid header|Header exceeds max size/.test(m)) {
      if (this.out.entries === 0) return new InvalidArchiveError(`${label} is not a tar archive (no valid tar header at its start)`);
      return new InvalidArchiveError(`archive ${label} is corrupt: invalid tar header at offset ${this.lastEnd}${after}`);
    }
    return err instanceof Error ? err : new InvalidArchiveError(m);
  }

  /** A well-formed tar ends with zero blocks after its last entry. */
  private checkEnd(): void {
    const label = this.input.label;
    if (this.decoded === 0) throw new InvalidArchiveError(`${label} is empty: not a tar archive`);
    if (this.decoded - this.lastEnd < 512) {
      if (this.out.entries === 0) throw new InvalidArchiveError(`${label} is not a tar archive`);
      throw new InvalidArchiveError(`archive ${label} is truncated: it ends after entry ${JSON.stringify(this.lastName)} without the end-of-archive marker`);
    }
  }

  private async onEntry(entry: TarEntry): Promise<void> {
    const h = entry.header as tar.Header & { byteOffset?: number };
    const size = h.size ?? 0;
    this.out.entries++;
    this.lastEnd = (h.byteOffset ?? this.lastEnd + 512) + pad512(size);
    this.lastName = h.name;
    this.current = { name: h.name, size, got: 0 };
    let path: string | undefined;
    try {
      path = entryPath(h.name);
    } catch (e) {
      this.problem(e);
    }
    const type = h.type ?? 'file';
    if (path === undefined) {
      await this.drain(entry);
    } else if (type === 'file' || type === 'contiguous-file') {
      await this.onFile(path, size, entry);
    } else if (type === 'symlink' || type === 'link') {
      try {
        this.links.set(path, linkTarget(path, h.linkname ?? '', type === 'link'));
      } catch (e) {
        this.problem(e);
      }
      await this.drain(entry);
    } else if (type === 'character-device' || type === 'block-device' || type === 'fifo') {
      this.problem(new UnsafePathError(`archive entry ${JSON.stringify(h.name)} is a ${type}: not allowed in an image archive (hostile archive)`));
      await this.drain(entry);
    } else {
      if (type !== 'directory') this.out.warnings.push(`archive entry ${JSON.stringify(h.name)} of type ${type} ignored`);
      await this.drain(entry);
    }
    this.current = undefined;
  }

  private async drain(entry: TarEntry): Promise<void> {
    for await (const chunk of entry as AsyncIterable<Buffer>) this.current!.got += chunk.length;
  }

  private async onFile(path: string, size: number, entry: TarEntry): Promise<void> {
    const role = classify(path);
    if (role === 'legacy') return this.drain(entry);
    if (role === 'doc') {
      if (size > MAX_JSON_SIZE) {
        this.problem(entryProblem(`archive entry ${JSON.stringify(path)} is ${size} bytes, over the ${MAX_JSON_SIZE}-byte limit for JSON documents`));
        return this.drain(entry);
      }
      const parts: Buffer[] = [];
      for await (const chunk of entry as AsyncIterable<Buffer>) {
        this.current!.got += chunk.length;
        parts.push(chunk);
      }
      this.out.docs.set(path, Buffer.concat(parts));
      return;
    }
    const expected = role === 'blob' ? `sha256:${path.slice(path.lastIndexOf('/') + 1)}` : undefined;
    const target = this.opts.sink.begin({ path, size, expected });
    let head: Buffer | undefined;
    let json: Buffer[] | null | undefined = size <= MAX_JSON_SIZE && size <= this.jsonLeft ? undefined : null;
    try {
      for await (const chunk of entry as AsyncIterable<Buffer>) {
        this.current!.got += chunk.length;
        if (!head || head.length < 4) head = head ? Buffer.concat([head, chunk.subarray(0, 4)]) : Buffer.from(chunk.subarray(0, 4));
        if (json === undefined) {
          json = isJsonStart(chunk) ? [] : null;
          if (json) this.jsonLeft -= size;
        }
        if (json) json.push(chunk);
        if (!target.write(chunk)) await target.drained();
      }
    } catch (e) {
      await target.abort();
      throw e;
    }
    const compression = detectCompression(head ?? Buffer.alloc(0));
    const parts = json;
    const p = target
      .finish()
      .then((info) => {
        const f: ArchiveFile = { path, digest: info.digest, size: info.size, compression };
        this.out.files.set(path, f);
        if (!this.out.blobs.has(f.digest)) this.out.blobs.set(f.digest, f);
        if (parts && !this.out.json.has(f.digest)) this.out.json.set(f.digest, Buffer.concat(parts));
        else if (parts) this.jsonLeft += size;
      })
      .catch((e) => {
        if (parts) this.jsonLeft += size;
        if (expected && e instanceof DigestMismatchError) this.out.corrupt.add(expected);
        try {
          this.problem(e);
        } catch (fatal) {
          this.fail(fatal as Error);
        }
      })
      .finally(() => this.pending.delete(p));
    this.pending.add(p);
    while (this.pending.size >= (this.opts.maxPending ?? 4)) await Promise.race(this.pending);
  }

  private resolveLinks(): void {
    for (const path of this.links.keys()) {
      let t = path;
      let file: ArchiveFile | undefined;
      // Follow chains of links (bounded: a loop is simply unresolved).
      for (let hops = 0; hops < 40; hops++) {
        const next = this.links.get(t);
        if (next === undefined) break;
        t = next;
        file = this.out.files.get(t);
        if (file) break;
      }
      if (file) this.out.files.set(path, file);
      else this.out.danglingLinks.set(path, t);
    }
  }
}
