/**
 * The one tar reader: block-level and streaming (outer archives and layers alike).
 *
 * tar-stream does not expose the raw header bytes that exact layer reproduction
 * (tar-split) needs, so this reader works on 512-byte blocks itself: every byte of
 * the input is either handed to `raw()` (header blocks, PAX `x`/`g` and GNU `L`/`K`
 * blocks with their payloads, padding, end-of-archive and trailing bytes) or is file
 * payload handed to the entry's sink, in input order. Payloads are streamed, never
 * buffered. Semantics follow Go's archive/tar (what containerd uses):
 * header-only types (links, dirs, devices, fifos) have no payload whatever their size
 * field says; EOF at a header boundary ends the archive; `\0` typeflag with a
 * trailing slash is a directory; a zero block followed by a non-zero block is an error.
 *
 * Names are "binary strings" (latin1-decoded bytes) so they round-trip byte-exactly;
 * convert with `Buffer.from(name, 'latin1')` when touching the filesystem.
 */
import { Writable } from 'node:stream';
import { InvalidArchiveError, ImgtoolError } from '../errors';

export const BLOCK = 512;
const MAX_META = 1 << 20; // Go's maxSpecialFileSize

export type TarType = 'file' | 'link' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

export interface TarHeader {
  /** Entry name as stored (PAX/GNU overrides applied), latin1 binary string. */
  name: string;
  linkname: string;
  type: TarType;
  /** The raw typeflag character. */
  typeflag: string;
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  /** Payload size (0 for header-only types). */
  size: number;
  /** Seconds since the epoch; fractional when PAX says so. */
  mtime: number;
  devmajor: number;
  devminor: number;
  /** Extended attributes from `SCHILY.xattr.*` PAX records (values are raw bytes). */
  xattrs: Record<string, Buffer>;
  /** Every PAX record of the entry (values latin1). */
  pax: Record<string, string>;
}

/** Receives an entry's payload. Returned by the handler for every entry (size may be 0). */
export interface PayloadSink {
  write(chunk: Buffer): void | Promise<void>;
  end(): void | Promise<void>;
}

export interface TarHandler {
  /** Bytes of the archive that are not file payload, in order. May keep the buffer. */
  raw(buf: Buffer): void;
  /** An entry; its header bytes have already been passed to raw(). */
  entry(h: TarHeader): PayloadSink | Promise<PayloadSink>;
}

const TYPES: Record<string, TarType> = {
  '0': 'file', '\0': 'file', '7': 'file', '1': 'link', '2': 'symlink', '3': 'char', '4': 'block', '5': 'dir', '6': 'fifo',
};
const HEADER_ONLY = new Set(['1', '2', '3', '4', '5', '6']);

function cstr(b: Buffer, off: number, len: number): string {
  let end = off;
  const max = off + len;
  while (end < max && b[end] !== 0) end++;
  return b.toString('latin1', off, end);
}

/** Largest payload size: every byte offset stays an exact JavaScript integer. */
export const MAX_SIZE = Number.MAX_SAFE_INTEGER;
/** Largest uid/gid: 2^32-1 is (uid_t)-1, "no change" to chown. */
export const MAX_ID = 2 ** 32 - 2;

/**
 * Octal (space/NUL padded) or base-256 (GNU, two's complement, sign in bit 6 of the
 * first byte) numeric field, as Go's archive/tar reads it: base-256 values must fit
 * in 64 bits and may be negative; octal ones cannot be. Callers bound the result.
 */
export function parseNumeric(b: Buffer, off: number, len: number): number {
  const first = b[off];
  if (first & 0x80) {
    const inv = first & 0x40 ? 0xff : 0;
    let x = 0n;
    for (let i = 0; i < len; i++) {
      let c = b[off + i] ^ inv;
      if (i === 0) c &= 0x7f;
      x = (x << 8n) | BigInt(c);
    }
    if (x >= 1n << 63n) throw new InvalidArchiveError('tar: base-256 numeric field does not fit in 64 bits');
    return Number(inv ? -x - 1n : x);
  }
  let s = b.toString('latin1', off, off + len).replace(/^[ \0]+|[ \0]+$/g, '');
  const nul = s.indexOf('\0');
  if (nul >= 0) s = s.slice(0, nul);
  if (!s) return 0;
  if (!/^[0-7]+$/.test(s)) throw new InvalidArchiveError(`tar: invalid numeric field ${JSON.stringify(s)}`);
  return parseInt(s, 8);
}

function checksumOk(b: Buffer): boolean {
  const stored = (() => {
    try {
      return parseNumeric(b, 148, 8);
    } catch {
      return -1;
    }
  })();
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const c = i >= 148 && i < 156 ? 0x20 : b[i];
    unsigned += c;
    signed += c > 127 ? c - 256 : c;
  }
  return stored === unsigned || stored === signed;
}

function isZero(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/** Parse PAX records `LEN KEY=VALUE\n`; values kept as raw bytes. */
export function parsePax(buf: Buffer): Array<[string, Buffer]> {
  const out: Array<[string, Buffer]> = [];
  let off = 0;
  while (off < buf.length) {
    if (buf[off] === 0) break;
    const sp = buf.indexOf(0x20, off);
    if (sp < 0) throw new InvalidArchiveError('tar: invalid PAX record');
    const lenStr = buf.toString('latin1', off, sp);
    if (!/^[0-9]+$/.test(lenStr)) throw new InvalidArchiveError('tar: invalid PAX record length');
    const len = parseInt(lenStr, 10);
    if (len <= sp - off + 1 || off + len > buf.length || buf[off + len - 1] !== 0x0a) throw new InvalidArchiveError('tar: invalid PAX record');
    const rec = buf.subarray(sp + 1, off + len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq < 0) throw new InvalidArchiveError('tar: invalid PAX record (no =)');
    out.push([rec.toString('latin1', 0, eq), Buffer.from(rec.subarray(eq + 1))]);
    off += len;
  }
  return out;
}

type State = 'header' | 'meta' | 'payload' | 'pad' | 'zero2' | 'trailer';

/**
 * Writable that parses a tar stream and drives a TarHandler. Errors (malformed or
 * truncated archive, handler errors) fail the stream.
 */
export class TarParser extends Writable {
  private state: State = 'header';
  private block = Buffer.alloc(BLOCK);
  private fill = 0;
  private remaining = 0;
  private metaType = '';
  private metaSize = 0;
  private metaBufs: Buffer[] = [];
  private sink: PayloadSink | undefined;
  private pendingPax: Array<[string, Buffer]> = [];
  private longName: string | undefined;
  private longLink: string | undefined;
  /** Bytes consumed. */
  offset = 0;
  entries = 0;

  constructor(private readonly handler: TarHandler) {
    super({ highWaterMark: 1024 * 1024 });
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.process(chunk).then(() => cb(), (e) => cb(e));
  }

  override _final(cb: (err?: Error | null) => void): void {
    const ok =
      (this.state === 'header' && this.fill === 0 && !this.metaType && this.pendingPax.length === 0 && this.longName === undefined && this.longLink === undefined) ||
      (this.state === 'zero2' && this.fill === 0) ||
      this.state === 'trailer';
    if (!ok) return cb(new InvalidArchiveError(`tar: unexpected end of archive at byte ${this.offset} (truncated layer)`));
    cb();
  }

  /** Copy up to one header block's worth of `chunk` (from `off`) into the block buffer. */
  private fillBlock(chunk: Buffer, off: number): number {
    const n = this.forward(Math.min(BLOCK - this.fill, chunk.length - off));
    chunk.copy(this.block, this.fill, off, off + n);
    this.fill += n;
    return n;
  }

  private async process(chunk: Buffer): Promise<void> {
    let off = 0;
    while (off < chunk.length) {
      let n: number;
      switch (this.state) {
        case 'header': {
          n = this.fillBlock(chunk, off);
          off += n;
          if (this.fill === BLOCK) {
            this.fill = 0;
            await this.onHeader();
          }
          break;
        }
        case 'meta': {
          n = this.forward(Math.min(this.remaining, chunk.length - off));
          const part = Buffer.from(chunk.subarray(off, off + n));
          this.metaBufs.push(part);
          this.handler.raw(part);
          this.remaining -= n;
          off += n;
          if (this.remaining === 0) this.onMetaDone();
          break;
        }
        case 'payload': {
          n = this.forward(Math.min(this.remaining, chunk.length - off));
          const part = chunk.subarray(off, off + n);
          this.remaining -= n;
          off += n;
          await this.sink!.write(part);
          if (this.remaining === 0) await this.endPayload();
          break;
        }
        case 'pad': {
          n = this.forward(Math.min(this.remaining, chunk.length - off));
          this.handler.raw(Buffer.from(chunk.subarray(off, off + n)));
          this.remaining -= n;
          off += n;
          if (this.remaining === 0) this.state = 'header';
          break;
        }
        case 'zero2': {
          n = this.fillBlock(chunk, off);
          off += n;
          if (this.fill === BLOCK) {
            this.fill = 0;
            if (!isZero(this.block)) throw new InvalidArchiveError(`tar: invalid header after a zero block at byte ${this.offset - BLOCK}`);
            this.handler.raw(Buffer.from(this.block));
            this.state = 'trailer';
          }
          break;
        }
        case 'trailer': {
          n = this.forward(chunk.length - off);
          this.handler.raw(Buffer.from(chunk.subarray(off)));
          off = chunk.length;
          break;
        }
      }
    }
  }

  /**
   * The parser only moves forward: every step consumes at least one byte. Sizes are
   * validated when headers are read, so this failing is a bug, never bad input.
   */
  private forward(n: number): number {
    if (!(n > 0) || !Number.isSafeInteger(n)) {
      throw new ImgtoolError('INTERNAL', `tar reader: step of ${n} bytes at byte ${this.offset} in state ${this.state} (the reader must move forward)`);
    }
    this.offset += n;
    return n;
  }

  private async endPayload(): Promise<void> {
    const s = this.sink!;
    this.sink = undefined;
    await s.end();
    this.state = this.padAfter > 0 ? 'pad' : 'header';
    this.remaining = this.padAfter;
  }

  private padAfter = 0;

  private async onHeader(): Promise<void> {
    const b = this.block;
    const at = this.offset - BLOCK;
    if (isZero(b)) {
      if (this.metaType || this.pendingPax.length || this.longName !== undefined || this.longLink !== undefined) {
        throw new InvalidArchiveError('tar: extended header not followed by an entry');
      }
      this.handler.raw(Buffer.from(b));
      this.state = 'zero2';
      return;
    }
    if (!checksumOk(b)) throw new InvalidArchiveError(`tar: invalid header checksum at byte ${at}`);
    const raw = Buffer.from(b);
    this.handler.raw(raw);
    const typeflag = String.fromCharCode(b[156]);
    const magic = b.toString('latin1', 257, 263);
    let name = cstr(b, 0, 100);
    if (magic === 'ustar\0') {
      // USTAR/PAX (any version, as Go reads it); star keeps atime/ctime after a 131-byte prefix
      const star = b.toString('latin1', 508, 512) === 'tar\0';
      const prefix = cstr(b, 345, star ? 131 : 155);
      if (prefix) name = prefix + '/' + name;
    }
    if (typeflag === 'x' || typeflag === 'g' || typeflag === 'L' || typeflag === 'K') {
      const size = count('size', field(b, 124, 12, 'size', name, at), name, at);
      if (size > MAX_META) throw new InvalidArchiveError(`tar: ${typeflag} header of ${size} bytes is too large`);
      this.metaType = typeflag;
      this.metaSize = size;
      this.metaBufs = [];
      this.remaining = roundUp(size);
      if (this.remaining === 0) this.onMetaDone();
      else this.state = 'meta';
      return;
    }
    if (typeflag === 'S' || typeflag === 'V' || typeflag === 'M' || typeflag === 'N' || typeflag === 'D') {
      throw new ImgtoolError('INVALID_ARCHIVE', `tar: unsupported GNU entry type ${JSON.stringify(typeflag)} at byte ${at}`);
    }
    const type = TYPES[typeflag];
    if (!type) throw new ImgtoolError('INVALID_ARCHIVE', `tar: unsupported entry type ${JSON.stringify(typeflag)} at byte ${at}`);

    // The entry's name first (GNU long name, then PAX path): every error below names it.
    if (this.longName !== undefined) name = this.longName;
    const pax: Record<string, string> = {};
    for (const [k, v] of this.pendingPax) pax[k] = v.toString('latin1');
    if (pax.path !== undefined) name = pax.path;

    const ustarish = magic.startsWith('ustar');
    const h: TarHeader = {
      name,
      linkname: this.longLink ?? cstr(b, 157, 100),
      type,
      typeflag,
      mode: field(b, 100, 8, 'mode', name, at),
      uid: field(b, 108, 8, 'uid', name, at),
      gid: field(b, 116, 8, 'gid', name, at),
      uname: cstr(b, 265, 32),
      gname: cstr(b, 297, 32),
      size: field(b, 124, 12, 'size', name, at),
      mtime: field(b, 136, 12, 'mtime', name, at),
      devmajor: ustarish ? field(b, 329, 8, 'devmajor', name, at) : 0,
      devminor: ustarish ? field(b, 337, 8, 'devminor', name, at) : 0,
      xattrs: {},
      pax,
    };
    for (const [k, v] of this.pendingPax) {
      const s = pax[k];
      switch (k) {
        case 'linkpath': h.linkname = s; break;
        case 'uname': h.uname = s; break;
        case 'gname': h.gname = s; break;
        case 'uid': h.uid = paxCount(k, s, name, at); break;
        case 'gid': h.gid = paxCount(k, s, name, at); break;
        case 'size': h.size = paxCount(k, s, name, at); break;
        case 'mtime': h.mtime = paxTime(s, name, at); break;
        default:
          if (k.startsWith('SCHILY.xattr.')) h.xattrs[k.slice('SCHILY.xattr.'.length)] = v;
          else if (k.startsWith('GNU.sparse.')) throw new ImgtoolError('INVALID_ARCHIVE', `tar: GNU sparse files are not supported (${name})`);
      }
    }
    // Whatever the encoding, sizes and ids are integers >= 0 within bounds.
    count('size', h.size, name, at);
    count('uid', h.uid, name, at);
    count('gid', h.gid, name, at);
    if (HEADER_ONLY.has(typeflag)) h.size = 0;
    this.pendingPax = [];
    this.longName = undefined;
    this.longLink = undefined;
    if (typeflag === '\0' && h.name.endsWith('/')) {
      h.type = 'dir';
      h.typeflag = '5';
    }
    this.entries++;
    this.sink = await this.handler.entry(h);
    this.remaining = h.size;
    this.padAfter = roundUp(h.size) - h.size;
    if (h.size === 0) {
      const s = this.sink;
      this.sink = undefined;
      await s.end();
      this.state = 'header';
    } else {
      this.state = 'payload';
    }
  }

  private onMetaDone(): void {
    const data = Buffer.concat(this.metaBufs).subarray(0, this.metaSize);
    this.metaBufs = [];
    const t = this.metaType;
    this.metaType = '';
    this.state = 'header';
    if (t === 'x') this.pendingPax.push(...parsePax(data));
    else if (t === 'g') parsePax(data); // global headers: validated, ignored (as containerd does)
    else if (t === 'L') this.longName = cstr(data, 0, data.length);
    else if (t === 'K') this.longLink = cstr(data, 0, data.length);
  }
}

/** A header error: one line naming the entry (and where its header is). */
function headerError(name: string, at: number, msg: string): InvalidArchiveError {
  return new InvalidArchiveError(`tar: entry ${JSON.stringify(name)} (header at byte ${at}): ${msg}`);
}

/** A numeric header field; a malformed one is a header error naming the entry. */
function field(b: Buffer, off: number, len: number, what: string, name: string, at: number): number {
  try {
    return parseNumeric(b, off, len);
  } catch (e) {
    throw headerError(name, at, `${what} field: ${(e as Error).message.replace(/^tar: /, '')}`);
  }
}

const LIMITS = { size: MAX_SIZE, uid: MAX_ID, gid: MAX_ID };

/** Sizes and ids: integers from 0 to their limit, whatever their encoding. */
function count(what: keyof typeof LIMITS, v: number, name: string, at: number): number {
  if (!Number.isSafeInteger(v) || v < 0 || v > LIMITS[what]) {
    throw headerError(name, at, `${what} ${v} is out of range (an integer from 0 to ${LIMITS[what]})`);
  }
  return v;
}

/** A PAX size/uid/gid: decimal digits only (no sign, no exponent, not empty), then bounded. */
function paxCount(what: keyof typeof LIMITS, s: string, name: string, at: number): number {
  if (!/^[0-9]+$/.test(s)) throw headerError(name, at, `invalid PAX ${what} ${JSON.stringify(s)} (an integer from 0 to ${LIMITS[what]})`);
  const v = Number(s);
  if (!Number.isSafeInteger(v) || v > LIMITS[what]) throw headerError(name, at, `PAX ${what} ${s.length > 40 ? s.slice(0, 40) + '…' : s} is out of range (an integer from 0 to ${LIMITS[what]})`);
  return v;
}

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;

/**
 * A PAX mtime: `[-]SECONDS[.FRACTION]`, seconds within 64 bits (as Go reads it). May be
 * negative or fractional: the header keeps it verbatim; what touches a filesystem
 * clamps it (tree.ts `clampMtime`).
 */
function paxTime(s: string, name: string, at: number): number {
  const m = /^(-?[0-9]+)(\.[0-9]+)?$/.exec(s);
  if (!m || BigInt(m[1]) < INT64_MIN || BigInt(m[1]) > INT64_MAX) {
    throw headerError(name, at, `invalid PAX mtime ${JSON.stringify(s.length > 40 ? s.slice(0, 40) + '…' : s)} (seconds since the epoch, within 64 bits)`);
  }
  return Number(s);
}

export function roundUp(n: number): number {
  return Math.ceil(n / BLOCK) * BLOCK;
}
