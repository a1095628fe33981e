import * as fs from 'node:fs';
import * as path from 'node:path';
import * as crypto from 'node:crypto';
import { Worker } from 'node:worker_threads';
import type { Store } from '../store';
import { Digest } from '../digest';
import { ImgtoolError } from '../errors';
import { Compression, effectiveLevel, zstdParams, GZIP_OS_BYTE } from './codecs';
import { tempOwnerTag } from '../leases/process';

/**
 * Transcoding a layer file in a worker thread: read → decode → sha256 (the tar) →
 * encode → sha256 + write a temp file in the content store's ingest directory (fsync).
 * zstd-napi's streaming compressor blocks the calling thread while its MT workers are
 * busy (measured: ~45% of the wall time of a pipeline is spent inside its _transform),
 * and its decompressor and sha256 run on the calling thread too; in a worker thread
 * that blocking stalls only this layer, so the main thread and other layers keep going
 * and both cores stay busy. The bytes are produced with the same parameters as
 * `compressStream` (tests check they are identical).
 *
 * The worker is plain JavaScript evaluated from a string so it runs the same from
 * `dist/` and under ts-jest; it only needs node built-ins and zstd-napi.
 */
export const WORKER_SOURCE = String.raw`
const { parentPort, workerData: w } = require('node:worker_threads');
const fs = require('node:fs');
const zlib = require('node:zlib');
const crypto = require('node:crypto');
const { pipeline } = require('node:stream/promises');
const { Transform, Writable } = require('node:stream');
let fd;
// The write (or final fsync + close) in flight. Closing the descriptor before its request
// left the thread pool would let it land in whatever file reuses the fd number.
let writing = null;
let closing = null;
function track(start) {
  writing = new Promise((res) => start(() => { writing = null; res(); }));
}
// Close the temp file once nothing uses it, unless final() already did; at most once.
function release() {
  closing = closing || (async () => {
    while (writing) await writing;
    const f = fd;
    fd = undefined;
    if (f !== undefined) await new Promise((res) => fs.close(f, () => res()));
  })();
  return closing;
}
function writeAll(chunks, cb) {
  fs.writev(fd, chunks, (err, n) => {
    if (err) return cb(err);
    let total = 0;
    for (const c of chunks) total += c.length;
    if (n === total) return cb();
    const rest = [];
    let skip = n;
    for (const c of chunks) {
      if (skip >= c.length) { skip -= c.length; continue; }
      rest.push(skip ? c.subarray(skip) : c);
      skip = 0;
    }
    writeAll(rest, cb);
  });
}
(async () => {
  const stages = [fs.createReadStream(w.src, { highWaterMark: 1 << 20 })];
  let read = 0, reported = 0;
  stages.push(new Transform({ highWaterMark: 1 << 20, transform(c, _e, cb) {
    read += c.length;
    if (read - reported >= (4 << 20)) { reported = read; parentPort.postMessage({ type: 'progress', n: read }); }
    cb(null, c);
  } }));
  if (w.inC === 'gzip') stages.push(zlib.createGunzip({ chunkSize: 256 * 1024 }));
  else if (w.inC === 'zstd') stages.push(new (require(w.zstdPath).DecompressStream)());
  const tarHash = crypto.createHash('sha256');
  let tarSize = 0;
  stages.push(new Transform({ highWaterMark: 1 << 20, transform(c, _e, cb) { tarHash.update(c); tarSize += c.length; cb(null, c); } }));
  if (w.outC === 'gzip') {
    const gz = zlib.createGzip({ level: w.level, chunkSize: 256 * 1024 });
    let seen = 0;
    const push = gz.push.bind(gz);
    gz.push = (chunk, enc) => {
      if (seen <= 9 && Buffer.isBuffer(chunk)) {
        if (seen + chunk.length > 9) chunk[9 - seen] = w.gzipOs;
        seen += chunk.length;
      }
      return push(chunk, enc);
    };
    stages.push(gz);
  } else if (w.outC === 'zstd') {
    stages.push(new (require(w.zstdPath).CompressStream)(w.zstd));
  }
  const outHash = crypto.createHash('sha256');
  let outSize = 0;
  fd = fs.openSync(w.tmp, 'wx', 0o644);
  stages.push(new Writable({
    highWaterMark: 4 << 20,
    writev(items, cb) {
      if (closing) return cb(new Error('temp file closed'));
      const chunks = items.map((i) => i.chunk);
      for (const c of chunks) { outHash.update(c); outSize += c.length; }
      track((settle) => writeAll(chunks, (e) => { settle(); cb(e); }));
    },
    final(cb) {
      const f = fd;
      track((settle) => fs.fsync(f, (e) => fs.close(f, (e2) => { fd = undefined; settle(); cb(e || e2); })));
    },
    destroy(err, cb) {
      if (!err) return cb();
      release().then(() => cb(err));
    },
  }));
  await pipeline(stages);
  parentPort.postMessage({ type: 'done', tarDigest: 'sha256:' + tarHash.digest('hex'), tarSize, outDigest: 'sha256:' + outHash.digest('hex'), outSize, read });
})().catch(async (e) => {
  await release();
  try { fs.rmSync(w.tmp, { force: true }); } catch {}
  parentPort.postMessage({ type: 'error', message: String(e && e.message || e), code: e && e.code });
});
`;

/** Sources at least this big are transcoded in a worker thread; smaller ones in-process. */
export const WORKER_MIN_BYTES = 1024 * 1024;

export interface TranscodeResult {
  /** sha256 and size of the uncompressed tar that flowed through. */
  tarDigest: Digest;
  tarSize: number;
  /** The output, in a temp file of the ingest directory, not yet committed. */
  tmp: string;
  outDigest: Digest;
  outSize: number;
}

/** Error raised by the decoder in the worker (corrupt or mislabelled input). */
export class TranscodeError extends ImgtoolError {
  readonly codecCode?: string;
  constructor(message: string, code?: string) {
    super('INVALID_ARCHIVE', message);
    this.name = 'TranscodeError';
    this.codecCode = code;
  }
}

/**
 * Transcode the stored blob `src` from `inC` to `outC` in a worker thread. The caller
 * checks `tarDigest` and then commits `tmp` (or removes it).
 */
export function transcodeInWorker(
  store: Store, src: Digest, inC: Compression, outC: Compression, level: number | undefined, onProgress?: (n: number) => void,
): Promise<TranscodeResult> {
  fs.mkdirSync(store.content.ingestDir, { recursive: true });
  const tmp = path.join(store.content.ingestDir, `${tempOwnerTag()}-${crypto.randomBytes(8).toString('hex')}`);
  const lv = effectiveLevel(outC, level);
  const workerData = {
    src: store.content.blobPath(src), inC, outC, level: lv, tmp, gzipOs: GZIP_OS_BYTE,
    zstd: outC === 'zstd' ? zstdParams(lv!) : undefined,
    zstdPath: require.resolve('zstd-napi'),
  };
  return new Promise<TranscodeResult>((resolve, reject) => {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData });
    let settled = false;
    const fail = (e: Error) => {
      if (settled) return;
      settled = true;
      fs.rm(tmp, { force: true }, () => reject(e));
    };
    worker.on('message', (m: { type: string; n?: number; message?: string; code?: string } & Omit<TranscodeResult, 'tmp'>) => {
      if (m.type === 'progress') onProgress?.(m.n!);
      else if (m.type === 'done') {
        settled = true;
        resolve({ tarDigest: m.tarDigest, tarSize: m.tarSize, tmp, outDigest: m.outDigest, outSize: m.outSize });
      } else if (m.type === 'error') {
        // errno codes (ENOENT, ENOSPC, …) are I/O failures, anything else comes from a codec.
        if (m.code && /^E[A-Z]+$/.test(m.code)) fail(new ImgtoolError('INTERNAL', `transcoding ${src}: ${m.message}`));
        else fail(new TranscodeError(`decoding ${src} as ${inC}: ${m.message}`, m.code));
      }
    });
    worker.on('error', (e) => fail(e));
    worker.on('exit', (code) => {
      if (!settled) fail(new ImgtoolError('INTERNAL', `transcode worker for ${src} exited with code ${code}`));
    });
  });
}
