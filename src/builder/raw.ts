/**
 * Low-level tar writing for hostile-input tests: any name (`../x`, `/etc/passwd`),
 * any declared size (larger or smaller than the data), links pointing anywhere,
 * arbitrary typeflags, missing end blocks, truncation at a byte offset.
 */
import { Readable } from 'node:stream';
import { Compression, compressStream } from '../compression/codecs';
import { ArchiveResult, writeStreamToFile } from './archive';
import { encodeItemHeaders, END_OF_ARCHIVE, LongNameFormat, padding, RawHeader, TypeFlag } from './tar';

export type RawEntryType = keyof typeof TypeFlag;

export interface RawEntry {
  /** Written verbatim (cut to 100 bytes unless `longNames` puts it in a PAX/GNU record). */
  name: string;
  /** Entry type (default 'file'); see TypeFlag. */
  type?: RawEntryType;
  /** Raw typeflag character; overrides `type` (e.g. 'Z' for an unknown type). */
  typeflag?: string;
  /** Body bytes actually written (then padded to 512 unless `noPad`). */
  data?: Buffer | string;
  /** Declared size in the header; default the data length. */
  size?: number;
  linkname?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  uname?: string;
  gname?: string;
  devmajor?: number;
  devminor?: number;
  magic?: 'ustar' | 'gnu';
  /** PAX records written in a preceding `x` header. */
  pax?: Record<string, string | Buffer>;
  /** Long-name handling for names/links > 100 bytes; default: cut, no extra header. */
  longNames?: LongNameFormat;
  /** Do not pad the body to a block boundary. */
  noPad?: boolean;
}

export interface RawTarOptions {
  /** Write the two zero end blocks (default true). */
  endBlocks?: boolean;
  /** Cut the (uncompressed) result after this many bytes. */
  truncateAt?: number;
}

function rawHeader(e: RawEntry, dataLen: number): RawHeader {
  const type = e.type ?? 'file';
  return {
    name: e.name,
    typeflag: e.typeflag ?? TypeFlag[type],
    mode: e.mode ?? (type === 'dir' ? 0o755 : type === 'symlink' ? 0o777 : 0o644),
    uid: e.uid ?? 0,
    gid: e.gid ?? 0,
    size: e.size ?? dataLen,
    mtime: e.mtime ?? 0,
    linkname: e.linkname,
    uname: e.uname,
    gname: e.gname,
    devmajor: e.devmajor,
    devminor: e.devminor,
    magic: e.magic,
  };
}

/** Build a tar in memory from raw entries (small hostile archives). */
export function rawTar(entries: RawEntry[], opts: RawTarOptions = {}): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = e.data === undefined ? Buffer.alloc(0) : typeof e.data === 'string' ? Buffer.from(e.data, 'utf8') : e.data;
    const h = rawHeader(e, data.length);
    // without longNames: no automatic long-name records, names cut to their field
    parts.push(...encodeItemHeaders({ header: h, pax: e.pax, longNames: e.longNames ?? 'truncate' }));
    parts.push(data);
    if (!e.noPad) parts.push(padding(data.length));
  }
  if (opts.endBlocks ?? true) parts.push(END_OF_ARCHIVE);
  const buf = Buffer.concat(parts);
  return opts.truncateAt !== undefined ? buf.subarray(0, opts.truncateAt) : buf;
}

/** Compress a buffer with a codec from `src/compression` (e.g. to wrap a raw tar). */
export async function compressBuffer(buf: Buffer, c: Compression, level?: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const z = compressStream(c, level);
  const done = new Promise<void>((resolve, reject) => {
    z.on('data', (d: Buffer) => chunks.push(d));
    z.on('end', () => resolve());
    z.on('error', reject);
  });
  z.end(buf);
  await done;
  return Buffer.concat(chunks);
}

/** Write raw entries to a file, optionally compressed as a whole and/or truncated (after compression). */
export async function writeRawTar(
  out: string,
  entries: RawEntry[],
  opts: RawTarOptions & { wrap?: Compression; wrapLevel?: number; truncateOutputAt?: number } = {},
): Promise<ArchiveResult> {
  const buf = rawTar(entries, opts);
  const res = await writeStreamToFile(Readable.from([buf]), out, { wrap: opts.wrap, wrapLevel: opts.wrapLevel, truncateAt: opts.truncateOutputAt });
  return { path: out, ...res, entries: entries.map((e) => e.name) };
}
