import * as fs from 'node:fs';
import * as path from 'node:path';
import * as crypto from 'node:crypto';
import * as os from 'node:os';
import { MessageChannel, Worker } from 'node:worker_threads';
import type { Store } from '../store';
import { Digest } from '../digest';
import { ImgtoolError } from '../errors';
import { Compression, effectiveLevel, zstdParams, GZIP_OS_BYTE, ZSTD_WINDOW_LOG_MAX, describeCodecError } from './codecs';
import { defineZstdDecoder } from './zstd-decoder';
import { decodeBoundExceeded, decodeBoundError, LIMIT_FLAGS, Limits, RATIO_FLOOR, resolveLimits } from '../limits';
import { tempOwnerTag } from '../leases/process';
import { cancelSignal, cancelledError } from '../cancel';

/**
 * Transcoding a layer file in two worker threads, one pass over the source:
 *
 *   decoder thread: read → sha256 (the source blob's own digest) → decode → sha256 (the tar,
 *                   the diffID proof) → batches of `BATCH_BYTES`, transferred (not copied) to
 *   encoder thread: encode → sha256 + size of the output → write a temp file in the content
 *                   store's ingest directory (fsync).
 *
 * Why two threads: a one-layer convert is bounded by its slowest serial stage, gunzip (zlib
 * inflates on the thread pool, but the next chunk is only scheduled when the JS thread that
 * owns the stream is free). zstd-napi compresses synchronously on the calling thread (or, in
 * multithreaded mode, blocks it while its workers are busy), so with both in one thread the
 * decoder sat idle while the encoder ran. Split, each stage runs on its own core. The batches
 * travel as transferred ArrayBuffers and come back with the acknowledgement (a pool of
 * `BATCH_CREDITS` buffers: memory stays flat, nothing is copied between threads).
 *
 * The bytes are produced with the same parameters as `compressStream` (tests check they are
 * identical). Errors: a worker that fails tells the other one (through their port) to stop;
 * each closes its files only after the I/O in flight settled, the encoder removes its temp
 * file, and the caller settles only when both threads have exited.
 *
 * The workers are plain JavaScript evaluated from strings so they run the same from `dist/`
 * and under ts-jest; they only need node built-ins and zstd-napi. The decoder thread decodes
 * zstd with the same backpressure-honouring, window-capped class as the rest of imgtool and
 * bounds the decoded size as unpack does (src/limits): both are built from the source of
 * self-contained functions (`defineZstdDecoder`, `decodeBoundExceeded`), not copies.
 */
const DECODER_BODY = String.raw`
const { parentPort, workerData: w } = require('node:worker_threads');
const fs = require('node:fs');
const zlib = require('node:zlib');
const crypto = require('node:crypto');
const { pipeline } = require('node:stream/promises');
const { Transform, Writable } = require('node:stream');
const port = w.port;
let credits = w.credits;
let waiting = null;
const free = [];
let stopped = null;
port.on('message', (m) => {
  if (m.type === 'ack') {
    credits++;
    if (m.buf) free.push(m.buf);
    if (waiting) { const f = waiting; waiting = null; f(); }
  } else if (m.type === 'abort') stop(new Error('the encoder stopped'));
});
port.on('close', () => stop(new Error('the encoder stopped')));
parentPort.on('message', (m) => { if (m.type === 'abort') stop(new Error('aborted')); });
parentPort.unref();
const stages = [];
function stop(e) {
  if (stopped) return;
  stopped = e;
  for (const s of stages) s.destroy(e);
  if (waiting) { const f = waiting; waiting = null; f(e); }
}
(async () => {
  const srcHash = crypto.createHash('sha256');
  let read = 0, reported = 0;
  stages.push(fs.createReadStream(w.src, { highWaterMark: 1 << 20 }));
  stages.push(new Transform({ highWaterMark: 1 << 20, transform(c, _e, cb) {
    srcHash.update(c);
    read += c.length;
    if (read - reported >= (4 << 20)) { reported = read; parentPort.postMessage({ type: 'progress', n: read }); }
    cb(null, c);
  } }));
  if (w.inC === 'gzip') stages.push(zlib.createGunzip({ chunkSize: w.chunk }));
  else if (w.inC === 'zstd') {
    const ZstdDecoder = defineZstdDecoder(Transform, require(w.zstdBindingPath), w.windowLogMax, (e) => (typeof e === 'string' ? new Error(e) : e));
    stages.push(new ZstdDecoder());
  }
  const tarHash = crypto.createHash('sha256');
  let tarSize = 0;
  const take = () => free.pop() || new ArrayBuffer(w.batch);
  let batch = new Uint8Array(take());
  let fill = 0;
  const send = (n) => {
    const buf = batch.buffer;
    credits--;
    port.postMessage({ type: 'data', buf, n }, [buf]);
    batch = null;
    fill = 0;
  };
  stages.push(new Writable({
    highWaterMark: 1 << 20,
    write(c, _e, cb) {
      const over = w.bound && decodeBoundExceeded(tarSize + c.length, w.srcSize, w.bound.max, w.bound.ratio, w.bound.floor);
      if (over) {
        const e = new Error('decode bound');
        e.code = 'LIMIT';
        e.bound = { kind: over, n: tarSize + c.length };
        return cb(e);
      }
      tarHash.update(c);
      tarSize += c.length;
      let off = 0;
      const step = (err) => {
        if (err) return cb(err);
        while (off < c.length) {
          if (!batch) {
            if (credits <= 0) { waiting = step; return; }
            batch = new Uint8Array(take());
          }
          const k = Math.min(c.length - off, batch.length - fill);
          batch.set(c.subarray(off, off + k), fill);
          fill += k;
          off += k;
          if (fill === batch.length) send(fill);
        }
        cb();
      };
      step();
    },
    final(cb) {
      if (batch && fill) send(fill);
      port.postMessage({ type: 'end' });
      cb();
    },
  }));
  await pipeline(stages);
  if (stopped) throw stopped;
  parentPort.postMessage({ type: 'done', tarDigest: 'sha256:' + tarHash.digest('hex'), tarSize, srcDigest: 'sha256:' + srcHash.digest('hex'), srcSize: read });
  port.close();
})().catch((e) => {
  if (!stopped) port.postMessage({ type: 'abort' });
  port.close();
  parentPort.postMessage({ type: 'error', message: String(e && e.message || e), code: e && e.code, bound: e && e.bound });
});
`;

/** The decoder thread's source: its two shared helpers, then its body. */
export const DECODER_SOURCE = `const defineZstdDecoder = ${String(defineZstdDecoder)};\nconst decodeBoundExceeded = ${String(decodeBoundExceeded)};\n${DECODER_BODY}`;

export const ENCODER_SOURCE = String.raw`
const { parentPort, workerData: w } = require('node:worker_threads');
const fs = require('node:fs');
const zlib = require('node:zlib');
const crypto = require('node:crypto');
const { pipeline } = require('node:stream/promises');
const { PassThrough, Writable } = require('node:stream');
const port = w.port;
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
let enc;
if (w.outC === 'gzip') {
  enc = zlib.createGzip({ level: w.level, chunkSize: 256 * 1024 });
  let seen = 0;
  const push = enc.push.bind(enc);
  enc.push = (chunk, e) => {
    if (seen <= 9 && Buffer.isBuffer(chunk)) {
      if (seen + chunk.length > 9) chunk[9 - seen] = w.gzipOs;
      seen += chunk.length;
    }
    return push(chunk, e);
  };
} else if (w.outC === 'zstd') {
  enc = new (require(w.zstdPath).CompressStream)(w.zstd);
} else {
  enc = new PassThrough({ highWaterMark: 1 << 20 });
}
// An uncompressed output passes the received bytes on as they are: those buffers are not
// given back. An encoder has consumed its input when the write callback runs.
const giveBack = w.outC !== 'none';
let stopped = null;
let ended = false;
function stop(e) {
  if (stopped) return;
  stopped = e;
  enc.destroy(e);
}
port.on('message', (m) => {
  if (stopped) return;
  if (m.type === 'data') {
    enc.write(Buffer.from(m.buf, 0, m.n), (err) => {
      if (err || stopped) return;
      if (giveBack) port.postMessage({ type: 'ack', buf: m.buf }, [m.buf]);
      else port.postMessage({ type: 'ack' });
    });
  } else if (m.type === 'end') enc.end();
  else if (m.type === 'abort') stop(new Error('the decoder stopped'));
  if (m.type === 'end') ended = true;
});
// The decoder closes its end after 'end'; closed before that, it is gone.
port.on('close', () => { if (!ended) stop(new Error('the decoder stopped')); });
parentPort.on('message', (m) => { if (m.type === 'abort') stop(new Error('aborted')); });
parentPort.unref();
(async () => {
  const outHash = crypto.createHash('sha256');
  let outSize = 0;
  fd = fs.openSync(w.tmp, 'wx', 0o644);
  const sink = new Writable({
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
  });
  await pipeline(enc, sink);
  if (stopped) throw stopped;
  parentPort.postMessage({ type: 'done', outDigest: 'sha256:' + outHash.digest('hex'), outSize });
  port.close();
})().catch(async (e) => {
  if (!stopped) port.postMessage({ type: 'abort' });
  port.close();
  await release();
  try { fs.rmSync(w.tmp, { force: true }); } catch {}
  parentPort.postMessage({ type: 'error', message: String(e && e.message || e), code: e && e.code, stopped: !!stopped });
});
`;

/**
 * Transcodes running at once in this process: half the cores (at least one). Each one keeps
 * two threads busy (decoder + encoder, with inflate and I/O on the thread pool), so more only
 * shares the same cores and adds one pipeline's buffers and two isolates (~85 MB) each:
 * measured on 2 cores, two layers one after the other take the same time as both at once,
 * at 165 MB peak RSS instead of 246 MB. Other layers' reuse and small conversions are not held up.
 */
export function transcodeSlots(): number {
  return Math.max(1, Math.floor((os.availableParallelism?.() ?? os.cpus().length) / 2));
}
let running = 0;
let peakRunning = 0;
const queued: Array<() => void> = [];
/** Most transcodes seen running at once (tests). */
export function peakTranscodes(): number {
  return peakRunning;
}
async function slot(): Promise<() => void> {
  if (running >= transcodeSlots()) await new Promise<void>((res) => queued.push(res));
  running++;
  peakRunning = Math.max(peakRunning, running);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    running--;
    queued.shift()?.();
  };
}

/** Bytes per batch handed from the decoder to the encoder thread, and batches in flight. */
export const BATCH_BYTES = 1 << 20;
export const BATCH_CREDITS = 4;

/** Sources at least this big are transcoded in a worker thread; smaller ones in-process. */
export const WORKER_MIN_BYTES = 1024 * 1024;

export interface TranscodeResult {
  /** sha256 and size of the compressed source as read (the caller compares them with its digest). */
  srcDigest: Digest;
  srcSize: number;
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

interface WorkerMessage {
  type: string; n?: number; message?: string; code?: string; stopped?: boolean;
  bound?: { kind: 'size' | 'ratio'; n: number };
  [k: string]: unknown;
}

/** How the decoding is bounded and named in messages. */
export interface DecodeOptions {
  /** "image X layer 1/2 (sha256:…): converting …", prefixed to a limit's message. */
  what?: string;
  /** Hostile-input limits (src/limits; defaults when absent): the per-layer cap and the ratio. */
  limits?: Partial<Limits>;
}

/**
 * Transcode the stored blob `src` from `inC` to `outC` in two worker threads (see above). The
 * caller checks `srcDigest` and `tarDigest` and then commits `tmp` (or removes it).
 */
export async function transcodeInWorker(
  store: Store, src: Digest, inC: Compression, outC: Compression, level: number | undefined, onProgress?: (n: number) => void,
  decode: DecodeOptions = {},
): Promise<TranscodeResult> {
  const release = await slot();
  try {
    return await transcode(store, src, inC, outC, level, onProgress, decode);
  } finally {
    release();
  }
}

function transcode(
  store: Store, src: Digest, inC: Compression, outC: Compression, level: number | undefined, onProgress: ((n: number) => void) | undefined,
  decode: DecodeOptions,
): Promise<TranscodeResult> {
  const limits = resolveLimits(decode.limits);
  const srcSize = store.content.info(src)?.size ?? 0;
  fs.mkdirSync(store.content.ingestDir, { recursive: true });
  const tmp = path.join(store.content.ingestDir, `${tempOwnerTag()}-${crypto.randomBytes(8).toString('hex')}`);
  const lv = effectiveLevel(outC, level);
  const { port1, port2 } = new MessageChannel();
  const zstdPath = require.resolve('zstd-napi');
  const decoder = new Worker(DECODER_SOURCE, {
    eval: true, transferList: [port1],
    workerData: {
      src: store.content.blobPath(src), srcSize, inC, zstdBindingPath: require.resolve('zstd-napi/binding'), windowLogMax: ZSTD_WINDOW_LOG_MAX,
      bound: { max: limits.layerSize, ratio: limits.ratio, floor: RATIO_FLOOR },
      port: port1, batch: BATCH_BYTES, credits: BATCH_CREDITS, chunk: BATCH_BYTES,
    },
  });
  const encoder = new Worker(ENCODER_SOURCE, {
    eval: true, transferList: [port2],
    workerData: { outC, level: lv, tmp, gzipOs: GZIP_OS_BYTE, zstd: outC === 'zstd' ? zstdParams(lv!) : undefined, zstdPath, port: port2 },
  });
  return new Promise<TranscodeResult>((resolve, reject) => {
    let dec: WorkerMessage | undefined;
    let enc: WorkerMessage | undefined;
    let failure: Error | undefined;
    let exited = 0;
    const fail = (e: Error) => {
      if (!failure) failure = e;
      decoder.postMessage({ type: 'abort' });
      encoder.postMessage({ type: 'abort' });
    };
    const signal = cancelSignal();
    const onCancel = () => fail(cancelledError(`transcoding ${src}`)!);
    if (signal.aborted) onCancel();
    else signal.addEventListener('abort', onCancel, { once: true });
    const settle = () => {
      if (++exited < 2) return;
      signal.removeEventListener('abort', onCancel);
      if (!failure && (!dec || !enc)) failure = new ImgtoolError('INTERNAL', `transcode workers for ${src} exited before they finished`);
      if (failure) {
        const e = failure;
        fs.rm(tmp, { force: true }, () => reject(e));
        return;
      }
      resolve({
        srcDigest: dec!.srcDigest as Digest, srcSize: dec!.srcSize as number, tarDigest: dec!.tarDigest as Digest, tarSize: dec!.tarSize as number,
        tmp, outDigest: enc!.outDigest as Digest, outSize: enc!.outSize as number,
      });
    };
    // errno codes (ENOENT, ENOSPC, …) are I/O failures, anything else from the decoder comes from a codec.
    const ioError = (m: WorkerMessage) => !!m.code && /^E[A-Z]+$/.test(m.code);
    decoder.on('message', (m: WorkerMessage) => {
      if (m.type === 'progress') onProgress?.(m.n!);
      else if (m.type === 'done') dec = m;
      else if (m.type === 'error' && !failure) {
        if (ioError(m)) fail(new ImgtoolError('INTERNAL', `transcoding ${src}: reading it: ${m.message}`));
        else if (m.code === 'LIMIT' && m.bound) {
          fail(decodeBoundError(m.bound.kind, decode.what ?? `blob ${src}`, m.bound.n, srcSize, limits.layerSize, LIMIT_FLAGS.layerSize, limits.ratio));
        } else if (m.message !== 'the encoder stopped' && m.message !== 'aborted') {
          fail(new TranscodeError(`decoding ${src} as ${inC}: ${describeCodecError(inC, m)}`, m.code));
        }
      }
    });
    encoder.on('message', (m: WorkerMessage) => {
      if (m.type === 'done') enc = m;
      else if (m.type === 'error' && !m.stopped && !failure) fail(new ImgtoolError('INTERNAL', `transcoding ${src}: writing its ${outC} variant: ${m.message}`));
    });
    for (const w of [decoder, encoder]) {
      w.on('error', (e) => fail(new ImgtoolError('INTERNAL', `transcoding ${src}: ${e.message}`)));
      w.on('exit', settle);
    }
  });
}
