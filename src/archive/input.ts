import * as fs from 'node:fs';
import { promisify } from 'node:util';
import { Readable, Transform, TransformCallback, pipeline } from 'node:stream';
import { CodecError, Compression, detectCompression, decompressStream, describeCodecError } from '../compression/codecs';
import { ImgtoolError, InvalidArgumentError, InvalidArchiveError, NotFoundError } from '../errors';
import { DecodeBound, LIMIT_FLAGS, Limits, resolveLimits } from '../limits';

/** Where an archive comes from: a path, `-` for stdin, or any byte stream. */
export type ArchiveInputSource = Readable | string;

/**
 * An opened archive: `stream` yields the tar bytes (decompressed when the input is
 * gzip- or zstd-wrapped, detected by magic bytes). `rawBytes()` counts input bytes
 * consumed so far (for progress); `total` is the input size when it is a file.
 */
export interface ArchiveInput {
  stream: Readable;
  /** Compression the input was wrapped in. */
  compression: Compression;
  /** Input size in bytes when known (a regular file). */
  total?: number;
  /** For messages: the file name, or "stdin"/"input". */
  label: string;
  /** Input bytes read so far, when decompressing (else the consumer counts `stream` bytes itself). */
  rawBytes(): number;
  /** True when `stream` is the raw input itself (the consumer's byte count is the raw count). */
  passthrough: boolean;
  /**
   * For a plain (not compressed) regular file: read up to `buf.length` bytes at `position`
   * into the caller's buffer (0 at the end), so a consumer can reuse its buffers instead of
   * taking a new one per chunk from `stream`. A consumer that uses it must not read `stream`,
   * and destroys `stream` when done (that closes the file).
   */
  read?: (buf: Buffer, position: number) => Promise<number>;
}

const READ_CHUNK = 1024 * 1024;

/**
 * Open `src` and sniff its compression without consuming any byte. A wrapped input's
 * decompressed bytes are bounded by `limits` (`archiveSize`, and `ratio` to the input's size
 * when it is a file, else to the bytes read so far).
 */
export async function openArchiveInput(src: ArchiveInputSource, limits?: Partial<Limits>): Promise<ArchiveInput> {
  const l = resolveLimits(limits);
  if (typeof src === 'string' && src !== '-') return openFile(src, l);
  const raw = typeof src === 'string' ? process.stdin : src;
  const label = typeof src === 'string' || raw === process.stdin ? 'stdin' : 'input';
  const { head, stream } = await peek(raw, 4);
  return wrap(stream, detectCompression(head), undefined, label, l);
}

async function openFile(file: string, limits: Limits): Promise<ArchiveInput> {
  let fd: number;
  try {
    fd = await promisify(fs.open)(file, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new NotFoundError(`archive ${file}: no such file`);
    throw new ImgtoolError('INVALID_ARGUMENT', `archive ${file}: cannot open: ${(e as Error).message}`);
  }
  let st: fs.Stats;
  let bytesRead = 0;
  const head = Buffer.alloc(4);
  try {
    st = await promisify(fs.fstat)(fd);
    if (st.isDirectory()) throw new InvalidArgumentError(`archive ${file} is a directory, not a tar file`);
    if (st.isFile()) bytesRead = (await promisify(fs.read)(fd, head, 0, 4, 0)).bytesRead;
  } catch (e) {
    fs.close(fd, () => {});
    throw e;
  }
  // The stream owns the descriptor from here on (autoClose; the number is never closed twice).
  if (!st.isFile()) {
    // A pipe or device: sniff by peeking at the stream instead of reading at an offset.
    const p = await peek(fs.createReadStream(file, { fd, highWaterMark: READ_CHUNK, autoClose: true }), 4);
    return wrap(p.stream, detectCompression(p.head), undefined, file, limits);
  }
  const raw = fs.createReadStream(file, { fd, start: 0, highWaterMark: READ_CHUNK, autoClose: true });
  const input = wrap(raw, detectCompression(head.subarray(0, bytesRead)), st.size, file, limits);
  if (input.compression === 'none') {
    input.read = (buf, position) =>
      new Promise<number>((resolve, reject) => {
        fs.read(fd, buf, 0, buf.length, position, (err, n) => (err ? reject(err) : resolve(n)));
      });
  }
  return input;
}

function wrap(raw: Readable, compression: Compression, total: number | undefined, label: string, limits: Limits): ArchiveInput {
  if (compression === 'none') {
    return { stream: raw, compression, total, label, passthrough: true, rawBytes: () => 0 };
  }
  let n = 0;
  const counter = new Transform({
    highWaterMark: READ_CHUNK,
    transform(chunk: Buffer, _e, cb: TransformCallback) {
      n += chunk.length;
      cb(null, chunk);
    },
  });
  // pipeline() forwards errors and destroys every stage; the consumer sees the error on `out`.
  const bound = new DecodeBound({ what: `archive ${label}`, max: limits.archiveSize, maxFlag: LIMIT_FLAGS.archiveSize, ratio: limits.ratio, compressed: () => total ?? n });
  const out = pipeline(raw, counter, decompressStream(compression), bound, () => {});
  return { stream: out, compression, total, label, passthrough: false, rawBytes: () => n };
}

/** A clear one-line error for a failure while reading or decoding the input. */
export function describeInputError(err: Error, input: Pick<ArchiveInput, 'compression' | 'label'>): Error {
  const { compression, label } = input;
  if (err instanceof CodecError) return new InvalidArchiveError(`${label}: ${err.message}`);
  if (err instanceof ImgtoolError) return err;
  const m = err.message || String(err);
  if (compression !== 'none' && (/unexpected end of file|ended in middle/i.test(m) || /^Z_/.test((err as NodeJS.ErrnoException).code ?? ''))) {
    return new InvalidArchiveError(`${label}: ${describeCodecError(compression, err)}`);
  }
  if ((err as NodeJS.ErrnoException).code && /^E[A-Z]+$/.test((err as NodeJS.ErrnoException).code!) && !/^Z_/.test((err as NodeJS.ErrnoException).code!)) {
    return new ImgtoolError('INVALID_ARGUMENT', `${label}: read error: ${m}`);
  }
  if (compression === 'none') return new InvalidArchiveError(`${label}: ${m}`);
  return new InvalidArchiveError(`${label}: ${describeCodecError(compression, err)}`);
}

/**
 * Read at least `n` bytes (or everything, if shorter) from a paused stream and put
 * them back, so the returned stream yields the input from its first byte.
 */
export async function peek(r: Readable, n: number): Promise<{ head: Buffer; stream: Readable }> {
  const chunks: Buffer[] = [];
  let len = 0;
  while (len < n) {
    const c = r.read() as Buffer | null;
    if (c !== null) {
      chunks.push(typeof c === 'string' ? Buffer.from(c) : c);
      len += c.length;
      continue;
    }
    if (r.readableEnded || r.destroyed) break;
    await new Promise<void>((resolve, reject) => {
      const done = () => {
        r.off('readable', done);
        r.off('end', done);
        r.off('close', done);
        r.off('error', fail);
        resolve();
      };
      const fail = (e: Error) => {
        done();
        reject(e);
      };
      r.on('readable', done);
      r.on('end', done);
      r.on('close', done);
      r.on('error', fail);
    });
  }
  const head = Buffer.concat(chunks);
  if (!head.length) return { head, stream: r };
  // After 'end' a stream cannot take bytes back: hand out what was read instead.
  if (r.readableEnded) return { head, stream: Readable.from([head], { objectMode: false }) };
  r.unshift(head);
  return { head, stream: r };
}
