/**
 * A small deterministic tar writer (ustar + PAX + GNU long names), written here rather
 * than with tar-stream's `pack` because that one writes PAX values as UTF-8 strings
 * (binary xattrs such as `security.capability` would be mangled), cannot emit GNU
 * `L`/`K` long-name headers, always prefers the ustar prefix split, and refuses
 * entries whose body does not match the declared size (which hostile-input tests need).
 */
import { Readable } from 'node:stream';
import { InvalidArgumentError } from '../errors';

export const BLOCK = 512;

/** Tar typeflags by name. */
export const TypeFlag = {
  file: '0',
  hardlink: '1',
  symlink: '2',
  char: '3',
  block: '4',
  dir: '5',
  fifo: '6',
  contiguous: '7',
  paxHeader: 'x',
  paxGlobal: 'g',
  gnuLongName: 'L',
  gnuLongLink: 'K',
} as const;

/** How names/link targets longer than 100 bytes are written. */
export type LongNameFormat =
  /** PAX `path` / `linkpath` records (default; what GNU tar --format=posix writes). */
  | 'pax'
  /** GNU `././@LongLink` headers with typeflag `L` / `K`. */
  | 'gnu'
  /** ustar prefix/name split when the name allows it (as Go's archive/tar does), else PAX. */
  | 'ustar';

/** One header, as raw as the format allows. Strings longer than their field are cut. */
export interface RawHeader {
  name: string;
  /** Single typeflag character, e.g. '0', '5', 'x'. */
  typeflag: string;
  mode?: number;
  uid?: number;
  gid?: number;
  /** Declared size (may differ from the body actually written, for hostile tests). */
  size?: number;
  /** Seconds since the epoch. */
  mtime?: number;
  linkname?: string;
  uname?: string;
  gname?: string;
  devmajor?: number;
  devminor?: number;
  /** ustar prefix field (155 bytes). */
  prefix?: string;
  /** 'ustar' = "ustar\0" "00" (default); 'gnu' = "ustar  \0". */
  magic?: 'ustar' | 'gnu';
}

function writeString(buf: Buffer, s: string | Buffer, off: number, len: number): void {
  const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
  b.copy(buf, off, 0, Math.min(len, b.length));
}

/** Octal with NUL terminator when it fits in `len-1` digits; otherwise GNU base-256. */
function writeNumber(buf: Buffer, n: number, off: number, len: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError(`tar: bad numeric field ${n}`);
  const oct = n.toString(8);
  if (oct.length <= len - 1) {
    writeString(buf, oct.padStart(len - 1, '0'), off, len - 1);
    buf[off + len - 1] = 0;
    return;
  }
  // base-256: first byte 0x80, big-endian value in the rest
  buf.fill(0, off, off + len);
  buf[off] = 0x80;
  let v = BigInt(n);
  for (let i = off + len - 1; i > off && v > 0n; i--) {
    buf[i] = Number(v & 0xffn);
    v >>= 8n;
  }
}

/** Encode one 512-byte header block, checksum included. */
export function encodeHeader(h: RawHeader): Buffer {
  const buf = Buffer.alloc(BLOCK);
  writeString(buf, h.name, 0, 100);
  writeNumber(buf, (h.mode ?? 0) & 0o7777777, 100, 8);
  writeNumber(buf, h.uid ?? 0, 108, 8);
  writeNumber(buf, h.gid ?? 0, 116, 8);
  writeNumber(buf, h.size ?? 0, 124, 12);
  writeNumber(buf, h.mtime ?? 0, 136, 12);
  buf.write(h.typeflag || '0', 156, 1, 'latin1');
  if (h.linkname) writeString(buf, h.linkname, 157, 100);
  if (h.magic === 'gnu') {
    buf.write('ustar  \0', 257, 8, 'latin1');
  } else {
    buf.write('ustar\0', 257, 6, 'latin1');
    buf.write('00', 263, 2, 'latin1');
  }
  if (h.uname) writeString(buf, h.uname, 265, 32);
  if (h.gname) writeString(buf, h.gname, 297, 32);
  const dev = h.typeflag === TypeFlag.char || h.typeflag === TypeFlag.block;
  if (dev || h.devmajor || h.devminor) {
    writeNumber(buf, h.devmajor ?? 0, 329, 8);
    writeNumber(buf, h.devminor ?? 0, 337, 8);
  }
  if (h.prefix) writeString(buf, h.prefix, 345, 155);
  // checksum: sum of all bytes with the checksum field as spaces
  buf.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += buf[i];
  buf.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
  return buf;
}

/**
 * Encode PAX records: "<len> <key>=<value>\n", len counting its own digits, in bytes.
 * Values may be binary (xattrs). Keys are written in sorted order (as Go does).
 */
export function encodePaxRecords(records: Record<string, string | Buffer>): Buffer {
  const parts: Buffer[] = [];
  for (const key of Object.keys(records).sort()) {
    const k = Buffer.from(key, 'utf8');
    const rv = records[key];
    const v = typeof rv === 'string' ? Buffer.from(rv, 'utf8') : rv;
    const rest = 1 + k.length + 1 + v.length + 1; // ' ' key '=' value '\n'
    let len = rest + 1;
    while (String(len).length + rest !== len) len = String(len).length + rest;
    parts.push(Buffer.from(`${len} `, 'latin1'), k, Buffer.from('=', 'latin1'), v, Buffer.from('\n', 'latin1'));
  }
  return Buffer.concat(parts);
}

export function padding(size: number): Buffer {
  const r = size % BLOCK;
  return r === 0 ? Buffer.alloc(0) : Buffer.alloc(BLOCK - r);
}

/** The two zero blocks that end an archive. */
export const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK);

/** Body of an entry: bytes, or a factory for a stream/iterable of chunks. */
export type TarBody = Buffer | string | (() => AsyncIterable<Buffer> | Iterable<Buffer> | Readable);

/** A logical tar entry: a header plus what goes in front of it (PAX/GNU) and its body. */
export interface TarItem {
  header: RawHeader;
  /** Extra PAX records (e.g. `SCHILY.xattr.security.capability`). */
  pax?: Record<string, string | Buffer>;
  /** How to write names/link targets > 100 bytes. Default 'pax'; 'truncate' cuts them (raw tests). */
  longNames?: LongNameFormat | 'truncate';
  body?: TarBody;
}

function byteLen(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/** Split a path for the ustar prefix field, as Go's splitUSTARPath does. */
function splitUstar(name: string): { prefix: string; name: string } | undefined {
  const len = byteLen(name);
  if (len <= 100) return { prefix: '', name };
  if (len > 256 || byteLen(name) !== name.length) return undefined;
  let i = Math.min(name.length - 1, 155);
  i = name.lastIndexOf('/', i);
  if (i <= 0) return undefined;
  const prefix = name.slice(0, i);
  const rest = name.slice(i + 1);
  if (!rest || rest.length > 100 || prefix.length > 155) return undefined;
  return { prefix, name: rest };
}

function paxHeaderName(name: string): string {
  const trimmed = name.replace(/\/+$/, '');
  const base = trimmed.slice(trimmed.lastIndexOf('/') + 1) || 'entry';
  return `PaxHeaders.0/${base}`.slice(0, 100);
}

/**
 * Header blocks for one item: optional GNU L/K blocks, an optional PAX header with
 * its records, then the entry's own header (name/linkname cut to fit).
 */
export function encodeItemHeaders(item: TarItem): Buffer[] {
  const h: RawHeader = { ...item.header };
  const out: Buffer[] = [];
  const pax: Record<string, string | Buffer> = { ...(item.pax ?? {}) };
  const mode = item.longNames ?? 'pax';
  const nameLong = mode !== 'truncate' && byteLen(h.name) > 100;
  const linkLong = mode !== 'truncate' && !!h.linkname && byteLen(h.linkname) > 100;
  if (nameLong) {
    const split = mode === 'ustar' ? splitUstar(h.name) : undefined;
    if (split) {
      h.prefix = split.prefix;
      h.name = split.name;
    } else if (mode === 'gnu') {
      const data = Buffer.concat([Buffer.from(h.name, 'utf8'), Buffer.alloc(1)]);
      out.push(encodeHeader({ name: '././@LongLink', typeflag: TypeFlag.gnuLongName, size: data.length, magic: 'gnu' }), data, padding(data.length));
      h.magic = 'gnu';
      h.name = cutUtf8(h.name, 100);
    } else {
      pax.path = h.name;
    }
  }
  if (linkLong) {
    if (mode === 'gnu') {
      const data = Buffer.concat([Buffer.from(h.linkname!, 'utf8'), Buffer.alloc(1)]);
      out.push(encodeHeader({ name: '././@LongLink', typeflag: TypeFlag.gnuLongLink, size: data.length, magic: 'gnu' }), data, padding(data.length));
      h.magic = 'gnu';
    } else {
      pax.linkpath = h.linkname!;
    }
  }
  if (Object.keys(pax).length > 0) {
    const data = encodePaxRecords(pax);
    out.push(
      encodeHeader({ name: paxHeaderName(item.header.name), typeflag: TypeFlag.paxHeader, size: data.length, mode: 0o644, mtime: h.mtime }),
      data,
      padding(data.length),
    );
    if (pax.path !== undefined) h.name = cutUtf8(h.name, 100);
  }
  if (h.linkname && byteLen(h.linkname) > 100) h.linkname = cutUtf8(h.linkname, 100);
  out.push(encodeHeader(h));
  return out;
}

function cutUtf8(s: string, max: number): string {
  let b = Buffer.from(s, 'utf8');
  if (b.length <= max) return s;
  b = b.subarray(0, max);
  // drop a partial trailing code point
  let str = b.toString('utf8');
  while (Buffer.byteLength(str, 'utf8') > max) str = str.slice(0, -1);
  return str.replace(/\uFFFD$/, '');
}

async function* bodyChunks(body: TarBody | undefined): AsyncGenerator<Buffer> {
  if (body === undefined) return;
  if (typeof body === 'string') {
    yield Buffer.from(body, 'utf8');
    return;
  }
  if (Buffer.isBuffer(body)) {
    yield body;
    return;
  }
  for await (const c of body() as AsyncIterable<Buffer>) yield Buffer.isBuffer(c) ? c : Buffer.from(c);
}

export interface TarStreamOptions {
  /**
   * Strict (default): each body must be exactly `header.size` bytes, else the stream
   * errors. Non-strict: bodies are written as given and padded to a block boundary,
   * whatever the header declares.
   */
  strict?: boolean;
  /** Write the two zero end blocks (default true). */
  endBlocks?: boolean;
}

/** Stream a tar archive from items, one body at a time (memory stays flat). */
export async function* tarChunks(items: Iterable<TarItem> | AsyncIterable<TarItem>, opts: TarStreamOptions = {}): AsyncGenerator<Buffer> {
  const strict = opts.strict ?? true;
  for await (const item of items) {
    for (const b of encodeItemHeaders(item)) if (b.length) yield b;
    let n = 0;
    for await (const c of bodyChunks(item.body)) {
      n += c.length;
      if (strict && n > (item.header.size ?? 0)) {
        throw new InvalidArgumentError(`tar: body of ${item.header.name} is longer than its declared size ${item.header.size ?? 0}`);
      }
      if (c.length) yield c;
    }
    if (strict && n !== (item.header.size ?? 0)) {
      throw new InvalidArgumentError(`tar: body of ${item.header.name} is ${n} bytes, header declares ${item.header.size ?? 0}`);
    }
    const pad = padding(n);
    if (pad.length) yield pad;
  }
  if (opts.endBlocks ?? true) yield END_OF_ARCHIVE;
}

/** A Readable over `tarChunks`. */
export function tarStream(items: Iterable<TarItem> | AsyncIterable<TarItem>, opts: TarStreamOptions = {}): Readable {
  return Readable.from(tarChunks(items, opts), { objectMode: false, highWaterMark: 1 << 20 });
}
