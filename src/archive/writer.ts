import { Readable } from 'node:stream';
import { ArchiveOutput } from './output';
import { CopyOptions } from './copy';
import { ImgtoolError } from '../errors';

/** Fixed header fields: the same content always gives the same bytes. */
export const TAR_MTIME = new Date(0);
export const BLOB_MODE = 0o444;
export const FILE_MODE = 0o644;
export const DIR_MODE = 0o755;

const BLOCK = 512;
/** Zeros for padding and the end-of-archive marker (never written to). */
const ZEROS = Buffer.alloc(2 * BLOCK);

const octal = (val: number, n: number): string => {
  const s = val.toString(8);
  return s.length > n ? '7'.repeat(n) + ' ' : '0'.repeat(n - s.length) + s + ' ';
};

/** One ustar header block with the fixed fields (mtime 0, uid/gid 0, empty uname/gname), or undefined when `name` does not fit. */
function ustarBlock(name: string, size: number, mode: number, typeflag: number): Buffer | undefined {
  if (Buffer.byteLength(name) !== name.length) return undefined; // non-ASCII: PAX
  let prefix = '';
  while (name.length > 100) {
    const i = name.indexOf('/');
    if (i === -1) return undefined;
    prefix += prefix ? '/' + name.slice(0, i) : name.slice(0, i);
    name = name.slice(i + 1);
  }
  if (name.length > 100 || prefix.length > 155) return undefined;
  const b = Buffer.alloc(BLOCK);
  b.write(name, 0, 'latin1');
  b.write(octal(mode & 0o7777, 6), 100, 'latin1');
  b.write(octal(0, 6), 108, 'latin1');
  b.write(octal(0, 6), 116, 'latin1');
  if (size.toString(8).length > 11) {
    // base-256 for sizes of 8 GiB and more
    b[124] = 0x80;
    let num = size;
    for (let i = 11; i > 0; i--) {
      b[124 + i] = num & 0xff;
      num = Math.floor(num / 0x100);
    }
  } else {
    b.write(octal(size, 11), 124, 'latin1');
  }
  b.write(octal(0, 11), 136, 'latin1'); // mtime
  b[156] = 0x30 + typeflag;
  b.write('ustar\x0000', 257, 'latin1');
  b.write(octal(0, 6), 329, 'latin1'); // devmajor
  b.write(octal(0, 6), 337, 'latin1'); // devminor
  if (prefix) b.write(prefix, 345, 'latin1');
  let sum = 8 * 32;
  for (let i = 0; i < 148; i++) sum += b[i];
  for (let i = 156; i < BLOCK; i++) sum += b[i];
  b.write(octal(sum, 6), 148, 'latin1');
  return b;
}

function paxRecord(s: string): string {
  const len = Buffer.byteLength(s);
  let digits = Math.floor(Math.log(len) / Math.log(10)) + 1;
  if (len + digits >= Math.pow(10, digits)) digits++;
  return len + digits + s;
}

const padding = (size: number): Buffer | undefined => {
  const r = size & (BLOCK - 1);
  return r ? ZEROS.subarray(0, BLOCK - r) : undefined;
};

/**
 * The header block(s) of one entry, byte for byte what tar-stream 3's `pack` writes for
 * `{ name, size, mode, type, mtime: 0, uid: 0, gid: 0, uname: '', gname: '' }`: a ustar
 * header (long names split into prefix/name), or a PAX `path` record for names that do
 * not fit or are not ASCII.
 */
export function encodeEntryHeader(name: string, size: number, mode: number, type: 'file' | 'directory'): Buffer[] {
  const typeflag = type === 'directory' ? 5 : 0;
  const b = ustarBlock(name, size, mode, typeflag);
  if (b) return [b];
  const pax = Buffer.from(paxRecord(' path=' + name + '\n'));
  const out = [ustarBlock('PaxHeader', pax.length, mode, 72)!, pax];
  const pad = padding(pax.length);
  if (pad) out.push(pad);
  out.push(ustarBlock('PaxHeader', size, mode, typeflag)!);
  return out;
}

/** An output that can copy a file's bytes at the current position itself (positional writes). */
interface FileCopyOutput extends ArchiveOutput {
  copyFrom(src: string, size: number, opts: CopyOptions): Promise<void>;
}

const canCopy = (o: ArchiveOutput): o is FileCopyOutput => typeof (o as Partial<FileCopyOutput>).copyFrom === 'function';

/**
 * Deterministic tar writer: every entry has mtime 0, uid/gid 0, empty uname/gname and a
 * fixed mode (the bytes are those tar-stream's `pack` gave). Entries are written in the
 * order added, each awaited, to an `ArchiveOutput` (which applies back-pressure).
 */
export class TarWriter {
  private failed: unknown;
  /** Bytes handed to the output so far. */
  bytes = 0;

  constructor(private readonly out: ArchiveOutput) {}

  /** Whether `addFile` copies directly (positional writes) rather than through a stream. */
  get copiesFiles(): boolean {
    return canCopy(this.out);
  }

  private checkFailed(): void {
    if (this.failed) throw this.failed;
  }

  private async put(b: Buffer): Promise<void> {
    await this.out.write(b);
    this.bytes += b.length;
  }

  private async guard(fn: () => Promise<void>): Promise<void> {
    this.checkFailed();
    try {
      await fn();
    } catch (e) {
      this.failed ??= e;
      throw this.failed;
    }
  }

  private async header(name: string, size: number, mode: number, type: 'file' | 'directory'): Promise<void> {
    for (const b of encodeEntryHeader(name, size, mode, type)) await this.put(b);
  }

  private async pad(size: number): Promise<void> {
    const p = padding(size);
    if (p) await this.put(p);
  }

  /** A directory entry (`name` ends with `/`). */
  addDir(name: string): Promise<void> {
    return this.guard(() => this.header(name, 0, DIR_MODE, 'directory'));
  }

  /** A small file from memory (metadata documents). */
  addBuffer(name: string, data: Buffer, mode = FILE_MODE): Promise<void> {
    return this.guard(async () => {
      await this.header(name, data.length, mode, 'file');
      if (data.length) await this.put(data);
      await this.pad(data.length);
    });
  }

  /**
   * A file whose size is known up front, copied from `src` (never buffered whole).
   * A source that errors (e.g. digest re-verification failing) or delivers another
   * size fails the archive.
   */
  addStream(name: string, size: number, src: Readable, mode = BLOB_MODE, onBytes?: (n: number) => void): Promise<void> {
    return this.guard(async () => {
      try {
        await this.header(name, size, mode, 'file');
        let n = 0;
        for await (const chunk of src as AsyncIterable<Buffer>) {
          n += chunk.length;
          if (n > size) throw new ImgtoolError('SIZE_MISMATCH', `${name}: source is longer than the planned ${size} bytes`);
          await this.put(chunk);
          onBytes?.(n);
        }
        if (n !== size) throw new ImgtoolError('SIZE_MISMATCH', `${name}: source gave ${n} bytes, planned ${size}`);
        await this.pad(size);
      } catch (e) {
        src.destroy();
        throw e;
      }
    });
  }

  /**
   * A file copied from the path `src` (exactly `size` bytes; with `opts.digest`, they must
   * hash to it). File outputs copy with reused buffers and positional writes; other outputs
   * get the bytes through `openStream()`.
   */
  addFile(name: string, size: number, src: string, mode: number, opts: CopyOptions, openStream: () => Readable): Promise<void> {
    if (!canCopy(this.out)) return this.addStream(name, size, openStream(), mode, opts.onBytes);
    const out = this.out;
    return this.guard(async () => {
      await this.header(name, size, mode, 'file');
      await out.copyFrom(src, size, opts);
      this.bytes += size;
      await this.pad(size);
    });
  }

  /** Write the end-of-archive marker (two zero blocks); the output takes every byte on commit. */
  finish(): Promise<void> {
    return this.guard(() => this.put(ZEROS));
  }

  /** Stop after a failure. */
  destroy(err: unknown): void {
    this.failed ??= err;
  }
}
