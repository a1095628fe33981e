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
import { finished } from 'node:stream/promises';
import { Compression, decompressStream, describeCodecError, detectCompression } from '../compression/codecs';
import { Digest, Digester } from '../digest';
import { MAX_JSON_SIZE } from '../content';
import {
  DigestMismatchError, ImgtoolError, InvalidArchiveError, SizeMismatchError, UnsafePathError,
} from '../errors';
import { Progress } from '../progress';
import { PayloadSink, TarHeader, TarParser, roundUp } from '../tar';
import { ArchiveInput, ArchiveInputSource, describeInputError, openArchiveInput } from './input';
import { DecodeBound, LIMIT_FLAGS, Limits, resolveLimits } from '../limits';

/** A regular file of the archive, identified by its content. */
export interface ArchiveFile {
  /** Normalised path inside the archive (first path seen for this content). */
  path: string;
  digest: Digest;
  size: number;
  /** Compression sniffed from the file's first bytes. */
  compression: Compression;
  /**
   * With a decoding sink (`verify --strict`): sha256 of the file's decompressed bytes, or why
   * it does not decompress. Undefined for uncompressed files (their digest is that hash).
   */
  decoded?: { digest?: Digest; error?: string };
}

/** Receives each regular file's bytes as they stream. */
export interface BlobSink {
  begin(entry: { path: string; size: number; expected?: Digest }): BlobTarget;
}

export interface BlobTarget {
  /**
   * Returns false when the caller must wait for `drained()` before writing more. When
   * `done` is given, the target calls it once it no longer needs `chunk` (hashed and
   * written, or dropped after an error): the caller may reuse the chunk's memory then.
   */
  write(chunk: Buffer, done?: (err?: Error | null) => void): boolean;
  drained(): Promise<void>;
  /** Every byte written: resolves once the bytes are verified (and, for a store, committed). */
  finish(): Promise<{ digest: Digest; size: number; decoded?: ArchiveFile['decoded'] }>;
  /** Drop what was written. */
  abort(): Promise<void>;
}

/**
 * As `hashSink`, and also hashes the decompressed bytes of every gzip or zstd file (any file
 * may turn out to be a layer once the manifests are read), so that `verify --strict` can
 * check each layer against its config's diffID in the same single pass. Decoding streams:
 * memory stays flat whatever a file decompresses to; what it decompresses to is bounded as
 * a layer is in unpack (src/limits: `--max-layer-size`, `--max-ratio` to the file's size),
 * a file past the bound being reported as not decoding (decoding stops there).
 */
export function decodingHashSink(limits?: Partial<Limits>): BlobSink {
  const l = resolveLimits(limits);
  return {
    begin(entry) {
      const inner = hashSink.begin(entry);
      let dec: NodeJS.ReadWriteStream | undefined;
      let decoded: Digester | undefined;
      let error: string | undefined;
      let ended: Promise<void> | undefined;
      let head: Buffer | undefined;
      const start = (first: Buffer) => {
        const c = detectCompression(first);
        if (c === 'none') return;
        decoded = new Digester();
        const d = decompressStream(c);
        const bound = new DecodeBound({ what: '', max: l.layerSize, maxFlag: LIMIT_FLAGS.layerSize, ratio: l.ratio, compressed: () => entry.size });
        bound.on('data', (b: Buffer) => decoded!.update(b));
        ended = new Promise<void>((resolve) => {
          bound.on('end', () => resolve());
          d.on('error', (e: Error) => {
            error = error ?? `does not decompress: ${describeCodecError(c, e)}`;
            resolve();
          });
          bound.on('error', (e: Error) => {
            error = error ?? e.message;
            (d as unknown as { destroy(): void }).destroy();
            resolve();
          });
        });
        d.pipe(bound);
        dec = d;
      };
      return {
        write(chunk, done) {
          inner.write(chunk);
          if (!head) {
            head = Buffer.from(chunk.subarray(0, 4));
            start(head);
          }
          if (!dec || error) {
            done?.();
            return true;
          }
          return dec.write(chunk, () => done?.());
        },
        drained: () => (dec && !error ? new Promise<void>((r) => { dec!.once('drain', r); ended!.then(r); }) : Promise.resolve()),
        async finish() {
          const info = await inner.finish();
          if (!dec) return info;
          if (!error) dec.end();
          await ended;
          return { ...info, decoded: error ? { error } : { digest: decoded!.digest() } };
        },
        async abort() {
          (dec as unknown as { destroy?: () => void } | undefined)?.destroy?.();
          await inner.abort();
        },
      };
    },
  };
}

/** Hashes and checks each file without storing it (verify, ls-archive). */
export const hashSink: BlobSink = {
  begin({ path, size, expected }) {
    const d = new Digester();
    return {
      write(chunk: Buffer, done?: (err?: Error | null) => void) {
        d.update(chunk);
        done?.();
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
  /** Hostile-input limits (src/limits): what a wrapped archive may decompress to. */
  limits?: Partial<Limits>;
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

/** Read buffers for a plain archive file: reused, so reading allocates (and faults in) no new memory. */
const SLOT_SIZE = 1024 * 1024;
const SLOTS = 8;

/** A read buffer and the holders of its bytes (the tar parser, blob targets still writing them). */
interface Slot {
  buf: Buffer;
  refs: number;
  wake: (() => void) | undefined;
}

/** Entry types of the snapshot tar reader, named as in messages (and tar-stream) before. */
const TYPE_NAMES: Record<string, string> = { char: 'character-device', block: 'block-device', dir: 'directory' };

/** Tar names are latin1 binary strings; archive paths (as manifest.json names them) are UTF-8. */
function utf8Name(s: string): string {
  // eslint-disable-next-line no-control-regex
  return /^[\x00-\x7f]*$/.test(s) ? s : Buffer.from(s, 'latin1').toString('utf8');
}

/** Read the whole archive once. See the module comment. */
export async function scanArchive(src: ArchiveInputSource, opts: ScanOptions): Promise<ArchiveScan> {
  const input = await openArchiveInput(src, opts.limits);
  return new Scanner(input, opts).run();
}

/** What discards a payload (link and directory bodies, unsafe entries, legacy files). */
class Skip implements PayloadSink {
  constructor(private readonly scanner: Scanner) {}
  write(chunk: Buffer): void {
    this.scanner.got(chunk.length);
  }
  end(): void {
    this.scanner.endEntry();
  }
}

class Scanner {
  private readonly out: ArchiveScan;
  private readonly parser: TarParser;
  private decoded = 0;
  private lastEnd = 0;
  private lastName: string | undefined;
  private current: { name: string; size: number; got: number } | undefined;
  /** The target receiving the current entry's bytes (aborted if reading fails). */
  private active: BlobTarget | undefined;
  private readonly pending = new Set<Promise<void>>();
  /** Targets begun and not yet handed to `committed` (finish) — aborted if reading fails. */
  private readonly unfinished = new Set<BlobTarget>();
  private failure: Error | undefined;
  private jsonLeft = JSON_BUDGET;
  /** Link path -> normalised target (a later entry of the same path wins, as in tar). */
  private readonly links = new Map<string, string>();
  /** Read buffers by their memory, when the input is read into reused buffers. */
  private slots: Map<ArrayBufferLike, Slot> | undefined;
  private readonly waiters = new Set<() => void>();

  constructor(private readonly input: ArchiveInput, private readonly opts: ScanOptions) {
    this.out = {
      label: input.label, compression: input.compression, bytes: 0, tarBytes: 0, entries: 0,
      files: new Map(), blobs: new Map(), docs: new Map(), json: new Map(), danglingLinks: new Map(),
      corrupt: new Set(), problems: [], warnings: [],
    };
    this.parser = new TarParser({ raw: () => {}, entry: (h) => this.onEntry(h) });
    this.parser.on('error', (e: Error) => this.fail(e));
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
    if (!this.parser.destroyed) this.parser.destroy(e);
    for (const w of this.waiters) w();
    this.waiters.clear();
  }

  async run(): Promise<ArchiveScan> {
    const task = this.opts.progress?.task(`reading ${this.input.label === 'stdin' ? 'stdin' : 'archive'}`, this.input.total);
    try {
      await (this.input.read ? this.feedFile(this.input.read, task) : this.feed(task));
      if (this.failure) throw this.failure;
    } catch (e) {
      const err = this.failure ?? e;
      this.fail(err as Error);
      const t = this.active;
      this.active = undefined;
      await t?.abort().catch(() => {});
      // Targets begun whose entry never ended (the parser stopped under them): drop them too.
      const open = [...this.unfinished];
      this.unfinished.clear();
      await Promise.allSettled(open.map((o) => o.abort()));
      this.input.stream.destroy();
      await Promise.allSettled([...this.pending]);
      throw this.describe(err);
    }
    if (this.input.read) this.input.stream.destroy();
    await Promise.all([...this.pending]);
    if (this.failure) {
      // A background commit failed and stopped the parser: targets it had begun never ended.
      const open = [...this.unfinished];
      this.unfinished.clear();
      this.active = undefined;
      await Promise.allSettled(open.map((o) => o.abort()));
      throw this.describe(this.failure);
    }
    this.out.tarBytes = this.decoded;
    this.out.bytes = this.input.passthrough ? this.decoded : this.input.rawBytes();
    task?.update(this.out.bytes);
    task?.finish();
    this.checkEnd();
    this.resolveLinks();
    return this.out;
  }

  /** Push the (decoded) input stream into the tar parser, honouring its backpressure. */
  private async feed(task: { update(n: number, t?: number): void } | undefined): Promise<void> {
    const ex = this.parser;
    try {
      let lastReport = 0;
      for await (const chunk of this.input.stream as AsyncIterable<Buffer>) {
        if (this.failure) break;
        this.decoded += chunk.length;
        if (task && this.decoded - lastReport >= 1 << 20) {
          lastReport = this.decoded;
          task.update(this.input.passthrough ? this.decoded : this.input.rawBytes());
        }
        if (!ex.write(chunk)) {
          await new Promise<void>((resolve) => {
            const done = () => {
              ex.off('drain', done);
              ex.off('close', done);
              this.waiters.delete(done);
              resolve();
            };
            ex.on('drain', done);
            ex.on('close', done);
            this.waiters.add(done);
          });
        }
      }
    } catch (e) {
      const err = describeInputError(e as Error, this.input);
      if (!this.failure) this.failure = err;
      throw err;
    }
    if (this.failure) throw this.failure;
    ex.end();
    await finished(ex);
  }

  /**
   * Read a plain archive file into a ring of reused buffers and hand each to the parser
   * without copying; a buffer is read into again once the parser and every target holding
   * part of it are done with it. Memory stays at SLOTS * SLOT_SIZE.
   */
  private async feedFile(read: NonNullable<ArchiveInput['read']>, task: { update(n: number, t?: number): void } | undefined): Promise<void> {
    const ring: Slot[] = [];
    this.slots = new Map();
    for (let i = 0; i < SLOTS; i++) {
      const s: Slot = { buf: Buffer.allocUnsafeSlow(SLOT_SIZE), refs: 0, wake: undefined };
      ring.push(s);
      this.slots.set(s.buf.buffer, s);
    }
    let lastReport = 0;
    for (let i = 0; ; i++) {
      const slot = ring[i % SLOTS];
      if (slot.refs > 0 && !this.failure) {
        await new Promise<void>((resolve) => {
          const done = () => {
            slot.wake = undefined;
            this.waiters.delete(done);
            resolve();
          };
          slot.wake = done;
          this.waiters.add(done);
        });
      }
      if (this.failure) throw this.failure;
      let n: number;
      try {
        n = await read(slot.buf, this.decoded);
      } catch (e) {
        const err = describeInputError(e as Error, this.input);
        if (!this.failure) this.failure = err;
        throw err;
      }
      if (n === 0) break;
      this.decoded += n;
      if (task && this.decoded - lastReport >= 1 << 20) {
        lastReport = this.decoded;
        task.update(this.decoded);
      }
      slot.refs = 1;
      this.parser.write(n === SLOT_SIZE ? slot.buf : slot.buf.subarray(0, n), () => this.release(slot));
    }
    this.parser.end();
    await finished(this.parser);
  }

  /** Count a holder of `chunk`'s memory; returns the callback that releases it (none for unpooled memory). */
  private hold(chunk: Buffer): (() => void) | undefined {
    const slot = this.slots?.get(chunk.buffer);
    if (!slot) return undefined;
    slot.refs++;
    return () => this.release(slot);
  }

  private release(slot: Slot): void {
    if (--slot.refs === 0) slot.wake?.();
  }

  /** A copy when `chunk` lives in a reused read buffer (for bytes kept past the entry). */
  private keep(chunk: Buffer): Buffer {
    return this.slots?.has(chunk.buffer) ? Buffer.from(chunk) : chunk;
  }

  /** One clear line for tar-level failures. */
  private describe(e: unknown): Error {
    const label = this.input.label;
    const after = this.lastName ? ` after entry ${JSON.stringify(this.lastName)}` : '';
    // The tar reader's own format errors start with "tar: "; every other error is already clear.
    if (!(e instanceof ImgtoolError) || !e.message.startsWith('tar: ')) {
      return e instanceof Error ? e : new InvalidArchiveError(String(e));
    }
    const m = e.message;
    if (m.startsWith('tar: unexpected end of archive')) {
      const c = this.current;
      if (c && c.got < c.size) {
        return new InvalidArchiveError(`archive ${label} is truncated: entry ${JSON.stringify(c.name)} declares ${c.size} bytes but the input ends after ${c.got}`);
      }
      if (this.out.entries === 0) return new InvalidArchiveError(`${label} is not a tar archive (${this.decoded} bytes, no complete tar header)`);
      return new InvalidArchiveError(`archive ${label} is truncated${after}: the input ends at byte ${this.decoded}, inside a tar header or padding`);
    }
    if (m.startsWith('tar: invalid header')) {
      if (this.out.entries === 0) return new InvalidArchiveError(`${label} is not a tar archive (no valid tar header at its start)`);
      return new InvalidArchiveError(`archive ${label} is corrupt: invalid tar header at offset ${this.lastEnd}${after}`);
    }
    return new InvalidArchiveError(`archive ${label} is corrupt${after}: ${m.slice('tar: '.length)}`);
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

  /** @internal payload bytes of the current entry seen. */
  got(n: number): void {
    this.current!.got += n;
  }

  /** @internal the current entry's payload is complete. */
  endEntry(): void {
    this.current = undefined;
  }

  private onEntry(h: TarHeader): PayloadSink | Promise<PayloadSink> {
    const name = utf8Name(h.name);
    const size = h.size;
    this.out.entries++;
    // The parser has just read this entry's header block.
    this.lastEnd = this.parser.offset + roundUp(size);
    this.lastName = name;
    this.current = { name, size, got: 0 };
    let path: string | undefined;
    try {
      path = entryPath(name);
    } catch (e) {
      this.problem(e);
    }
    const type = TYPE_NAMES[h.type] ?? h.type;
    if (path === undefined) return new Skip(this);
    if (type === 'file') return this.onFile(path, size);
    if (type === 'symlink' || type === 'link') {
      try {
        this.links.set(path, linkTarget(path, utf8Name(h.linkname), type === 'link'));
      } catch (e) {
        this.problem(e);
      }
    } else if (type === 'character-device' || type === 'block-device' || type === 'fifo') {
      this.problem(new UnsafePathError(`archive entry ${JSON.stringify(name)} is a ${type}: not allowed in an image archive (hostile archive)`));
    } else if (type !== 'directory') {
      this.out.warnings.push(`archive entry ${JSON.stringify(name)} of type ${type} ignored`);
    }
    return new Skip(this);
  }

  private onFile(path: string, size: number): PayloadSink {
    const role = classify(path);
    if (role === 'legacy') return new Skip(this);
    if (role === 'doc') {
      if (size > MAX_JSON_SIZE) {
        this.problem(entryProblem(`archive entry ${JSON.stringify(path)} is ${size} bytes, over the ${MAX_JSON_SIZE}-byte limit for JSON documents`));
        return new Skip(this);
      }
      const parts: Buffer[] = [];
      return {
        write: (chunk) => {
          this.got(chunk.length);
          parts.push(this.keep(chunk));
        },
        end: () => {
          this.out.docs.set(path, Buffer.concat(parts));
          this.endEntry();
        },
      };
    }
    const expected = role === 'blob' ? `sha256:${path.slice(path.lastIndexOf('/') + 1)}` : undefined;
    const target = this.opts.sink.begin({ path, size, expected });
    this.active = target;
    this.unfinished.add(target);
    let head: Buffer | undefined;
    let json: Buffer[] | null | undefined = size <= MAX_JSON_SIZE && size <= this.jsonLeft ? undefined : null;
    return {
      write: (chunk) => {
        this.got(chunk.length);
        if (!head || head.length < 4) head = head ? Buffer.concat([head, chunk.subarray(0, 4)]) : Buffer.from(chunk.subarray(0, 4));
        if (json === undefined) {
          json = isJsonStart(chunk) ? [] : null;
          if (json) this.jsonLeft -= size;
        }
        if (json) json.push(this.keep(chunk));
        if (!target.write(chunk, this.hold(chunk))) return target.drained();
      },
      end: () => {
        this.active = undefined;
        this.unfinished.delete(target);
        this.endEntry();
        return this.committed(path, size, expected, target, head, json);
      },
    };
  }

  /** Finish a file's target in the background (up to `maxPending` at once) and record it. */
  private async committed(path: string, size: number, expected: Digest | undefined, target: BlobTarget, head: Buffer | undefined, parts: Buffer[] | null | undefined): Promise<void> {
    const compression = detectCompression(head ?? Buffer.alloc(0));
    const p = target
      .finish()
      .then((info) => {
        const f: ArchiveFile = { path, digest: info.digest, size: info.size, compression, ...(info.decoded ? { decoded: info.decoded } : {}) };
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
