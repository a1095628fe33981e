/**
 * tar-split: what it takes to rebuild a layer's exact uncompressed tar from a snapshot
 * (the technique of containers/storage). While a layer is applied, every byte that is
 * not file payload (header blocks incl. PAX and GNU long-name blocks, padding,
 * end-of-archive, trailing bytes) is recorded verbatim, and each file payload is
 * recorded as a reference (payload id + size). When the snapshot is committed, the
 * references are resolved: a payload still stored in the snapshot becomes
 * `F size path`; one the snapshot cannot give back (overwritten or removed later in
 * the same layer) is inlined from where it was set aside.
 *
 * Final record (`tarsplit.gz`, gzip): magic `IMGTS1\n`, then records
 *   'R' u32be len, bytes      verbatim bytes
 *   'F' f64be size, u32be n, path (n bytes, latin1 of the stored path)
 *   'E'                       end
 */
import { fsPath } from './fspath';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ImgtoolError } from '../errors';

const MAGIC = Buffer.from('IMGTS1\n');
const FLUSH_AT = 1024 * 1024;

/** Records raw bytes and payload references to a temp file while a layer is applied. */
export class SplitRecorder {
  private fd: number;
  private pending: Buffer[] = [];
  private pendingLen = 0;
  /** Bytes of the tar seen so far (raw + payload). */
  total = 0;

  constructor(readonly file: string) {
    this.fd = fs.openSync(file, 'wx', 0o600);
  }

  raw(buf: Buffer): void {
    if (!buf.length) return;
    this.pending.push(buf);
    this.pendingLen += buf.length;
    this.total += buf.length;
    if (this.pendingLen >= FLUSH_AT) this.flush();
  }

  payload(id: number, size: number): void {
    this.flush();
    const b = Buffer.alloc(13);
    b.write('F', 0, 'latin1');
    b.writeUInt32BE(id, 1);
    b.writeDoubleBE(size, 5);
    writeAllSync(this.fd, b);
    this.total += size;
  }

  private flush(): void {
    if (!this.pendingLen) return;
    const data = Buffer.concat(this.pending, this.pendingLen);
    this.pending = [];
    this.pendingLen = 0;
    const h = Buffer.alloc(5);
    h.write('R', 0, 'latin1');
    h.writeUInt32BE(data.length, 1);
    writeAllSync(this.fd, h);
    writeAllSync(this.fd, data);
  }

  close(): void {
    if (this.fd < 0) return;
    this.flush();
    fs.closeSync(this.fd);
    this.fd = -1;
  }
}

function writeAllSync(fd: number, b: Buffer): void {
  let off = 0;
  while (off < b.length) off += fs.writeSync(fd, b, off, b.length - off);
}

/** Where a payload is at commit time. */
export type PayloadLocation = { stored: string } | { aside: string };

/**
 * Turn the temp record into the final gzip'd record. `locate(id)` says where each
 * payload is; set-aside payloads are inlined.
 */
export async function finalizeRecord(tempFile: string, outFile: string, locate: (id: number) => PayloadLocation): Promise<number> {
  async function* gen(): AsyncGenerator<Buffer> {
    yield MAGIC;
    const r = new ByteReader(fs.createReadStream(tempFile, { highWaterMark: 1024 * 1024 }));
    for (;;) {
      const t = await r.readOpt(1);
      if (!t) break;
      const tag = String.fromCharCode(t[0]);
      if (tag === 'R') {
        const len = (await r.read(4)).readUInt32BE(0);
        const h = Buffer.alloc(5);
        h.write('R', 0, 'latin1');
        h.writeUInt32BE(len, 1);
        yield h;
        for await (const c of r.chunks(len)) yield c;
      } else if (tag === 'F') {
        const b = await r.read(12);
        const id = b.readUInt32BE(0);
        const size = b.readDoubleBE(4);
        const loc = locate(id);
        if ('stored' in loc) {
          const p = Buffer.from(loc.stored, 'latin1');
          const h = Buffer.alloc(13);
          h.write('F', 0, 'latin1');
          h.writeDoubleBE(size, 1);
          h.writeUInt32BE(p.length, 9);
          yield Buffer.concat([h, p]);
        } else {
          yield* inlineFile(loc.aside, size);
        }
      } else {
        throw new ImgtoolError('INTERNAL', `tar-split temp record ${tempFile} is corrupt`);
      }
    }
    yield Buffer.from('E');
  }
  await pipeline(Readable.from(gen()), zlib.createGzip({ level: 6, chunkSize: 128 * 1024 }), fs.createWriteStream(outFile, { flags: 'wx' }));
  return fs.statSync(outFile).size;
}

async function* inlineFile(file: string, size: number): AsyncGenerator<Buffer> {
  const st = fs.statSync(file);
  if (st.size !== size) throw new ImgtoolError('INTERNAL', `tar-split: set-aside payload ${file} has ${st.size} bytes, expected ${size}`);
  for await (const c of fs.createReadStream(file, { highWaterMark: 1024 * 1024 })) {
    const buf = c as Buffer;
    const h = Buffer.alloc(5);
    h.write('R', 0, 'latin1');
    h.writeUInt32BE(buf.length, 1);
    yield h;
    yield buf;
  }
}

/**
 * Stream the exact uncompressed layer from a final record, reading payloads from
 * `fsRoot` (the snapshot's `fs/` directory). Fails if a stored file's size changed.
 */
export function readRecord(recordFile: string, fsRoot: string): Readable {
  async function* gen(): AsyncGenerator<Buffer> {
    const r = new ByteReader(fs.createReadStream(recordFile).pipe(zlib.createGunzip({ chunkSize: 128 * 1024 })));
    const magic = await r.read(MAGIC.length);
    if (!magic.equals(MAGIC)) throw new ImgtoolError('INTERNAL', `tar-split record ${recordFile} has a bad magic`);
    for (;;) {
      const t = await r.read(1);
      const tag = String.fromCharCode(t[0]);
      if (tag === 'E') return;
      if (tag === 'R') {
        const len = (await r.read(4)).readUInt32BE(0);
        for await (const c of r.chunks(len)) yield c;
      } else if (tag === 'F') {
        const h = await r.read(12);
        const size = h.readDoubleBE(0);
        const n = h.readUInt32BE(8);
        const rel = (await r.read(n)).toString('latin1');
        yield* readStored(fsRoot, rel, size);
      } else {
        throw new ImgtoolError('INTERNAL', `tar-split record ${recordFile} is corrupt`);
      }
    }
  }
  return Readable.from(gen(), { objectMode: false, highWaterMark: 1024 * 1024 });
}

async function* readStored(fsRoot: string, rel: string, size: number): AsyncGenerator<Buffer> {
  const p = fsPath(fsRoot, rel);
  if (size <= 256 * 1024) {
    // small files: one synchronous open/fstat/read/close beats four thread-pool round trips
    const fd = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile() || st.size !== size) {
        throw new ImgtoolError('INTERNAL', `snapshot file ${rel} has ${st.size} bytes, the layer recorded ${size} (run imgtool fsck)`);
      }
      const buf = Buffer.allocUnsafe(size);
      let off = 0;
      while (off < size) {
        const n = fs.readSync(fd, buf, off, size - off, null);
        if (n === 0) throw new ImgtoolError('INTERNAL', `snapshot file ${rel} ended early`);
        off += n;
      }
      if (size) yield buf;
    } finally {
      fs.closeSync(fd);
    }
    return;
  }
  const fd = await fs.promises.open(p, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    const st = await fd.stat();
    if (!st.isFile() || st.size !== size) {
      throw new ImgtoolError('INTERNAL', `snapshot file ${rel} has ${st.size} bytes, the layer recorded ${size} (run imgtool fsck)`);
    }
    let left = size;
    while (left > 0) {
      const buf = Buffer.allocUnsafe(Math.min(left, 1024 * 1024));
      const { bytesRead } = await fd.read(buf, 0, buf.length, null);
      if (bytesRead === 0) throw new ImgtoolError('INTERNAL', `snapshot file ${rel} ended early`);
      left -= bytesRead;
      yield bytesRead === buf.length ? buf : buf.subarray(0, bytesRead);
    }
  } finally {
    await fd.close();
  }
}

export { fsPath } from './fspath';

/** Pull-based reader over a byte stream. */
export class ByteReader {
  private buf: Buffer = Buffer.alloc(0);
  private it: AsyncIterator<Buffer>;
  private eof = false;
  constructor(src: AsyncIterable<Buffer>) {
    this.it = src[Symbol.asyncIterator]();
  }
  private async fill(n: number): Promise<boolean> {
    while (this.buf.length < n && !this.eof) {
      const r = await this.it.next();
      if (r.done) this.eof = true;
      else this.buf = this.buf.length ? Buffer.concat([this.buf, r.value]) : r.value;
    }
    return this.buf.length >= n;
  }
  async readOpt(n: number): Promise<Buffer | undefined> {
    if (!(await this.fill(n))) {
      if (this.buf.length === 0) return undefined;
      throw new ImgtoolError('INTERNAL', 'record truncated');
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }
  async read(n: number): Promise<Buffer> {
    const b = await this.readOpt(n);
    if (!b) throw new ImgtoolError('INTERNAL', 'record truncated');
    return b;
  }
  async *chunks(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (!this.buf.length && !(await this.fill(1))) throw new ImgtoolError('INTERNAL', 'record truncated');
      const k = Math.min(left, this.buf.length);
      const out = this.buf.subarray(0, k);
      this.buf = this.buf.subarray(k);
      left -= k;
      yield out;
    }
  }
}
