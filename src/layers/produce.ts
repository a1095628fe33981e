import { Readable, Transform, TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Store } from '../store';
import { Digest, DigestStream, shortDigest } from '../digest';
import { DigestMismatchError, ImgtoolError, MissingContentError, SizeMismatchError } from '../errors';
import { BlobInfo, ResourceHolder } from '../content';
import { Progress, ProgressTask } from '../progress';
import { Compression, compressStream, decompressStream, codecVersion, effectiveLevel, detectFileCompression } from '../compression/codecs';
import { Variant } from '../compression/variants';
import type * as SnapshotOps from '../snapshots/ops';
import type * as Transcode from '../compression/transcode';
import { proveVariant } from './prove';
import { DecodeBound, LIMIT_FLAGS, Limits, resolveLimits } from '../limits';
import * as fs from 'node:fs';

// Loaded on first use, not at start-up: a rebuild needs the snapshot code (tar apply, the GC
// marker), a conversion the worker; reusing a variant (a second convert) needs neither.
/* eslint-disable @typescript-eslint/no-require-imports */
const snapshotOps = (): typeof SnapshotOps => require('../snapshots/ops') as typeof SnapshotOps;
let transcodeLoaded: typeof Transcode | undefined;
const transcode = (): typeof Transcode => (transcodeLoaded ??= require('../compression/transcode') as typeof Transcode);
/* eslint-enable @typescript-eslint/no-require-imports */

/** Produces a layer's uncompressed tar from somewhere else than a blob (a snapshot). */
export type LayerRebuilder = (store: Store, diffId: Digest) => Readable | undefined | Promise<Readable | undefined>;

export interface EnsureLayerOptions {
  /** Wanted compression. */
  compression: Compression;
  /**
   * Wanted level. When given, only variants made at that level are reused; when not,
   * any variant of the compression is (and new ones use the level of `prefer` if
   * imgtool made it with the current codec, else the default level).
   */
  level?: number;
  /**
   * Reuse only variants whose level and codec version are what imgtool would produce
   * now, so the result is the same digest on every machine with the same codec.
   */
  deterministic?: boolean;
  /**
   * The blob the caller's manifest names for this layer: used when it qualifies, without a
   * diffID proof (its digest is what that manifest promises). Only ever pass the blob of
   * the very manifest being exported.
   */
  prefer?: Digest;
  /** Media type of `prefer` in its manifest (recorded if a conversion proves it). */
  preferMediaType?: string;
  /** Media type recorded for a blob this call creates. */
  mediaType?: string;
  /** Attach the blob returned, and every blob read to make it, to this holder. */
  lease?: ResourceHolder;
  /**
   * Hostile-input limits for decoding a stored blob to convert it (src/limits: the per-layer
   * decompressed cap and the ratio to the blob's size; defaults when absent). A blob loaded with
   * `--no-unpack` was never decoded, so a conversion is where a bomb is met first.
   */
  limits?: Partial<Limits>;
  /** Warnings, and a task per conversion. */
  progress?: Progress;
  /** Label of the progress task (e.g. `layer 2/5 sha256:abcd…`). */
  label?: string;
  /** Context for messages: `image docker.io/library/x:1 (linux/amd64) layer 2`. */
  what?: string;
  /**
   * How to rebuild the uncompressed layer from a snapshot (step 3). Defaults to the
   * snapshots module's `rebuildLayer`; `null` disables rebuilding.
   */
  rebuild?: LayerRebuilder | null;
}

export type EnsureSource = 'existing' | 'converted' | 'rebuilt';

/** A blob of the layer, present in the content store, in the wanted compression. */
export interface EnsuredLayer {
  digest: Digest;
  size: number;
  diffId: Digest;
  compression: Compression;
  mediaType?: string;
  level?: number;
  codecVersion?: string;
  /** How it was obtained. */
  source: EnsureSource;
  /** For `converted`: the variant it was made from. */
  from?: Digest;
}

/** In-flight productions per store, so concurrent requests for one layer share one pass. */
const inflight = new WeakMap<Store, Map<string, Promise<EnsuredLayer>>>();

interface Candidate {
  digest: Digest;
  size: number;
  /** Compression by magic bytes. */
  compression: Compression;
  /** The proven variant row, if any. */
  row?: Variant;
  /**
   * May stand for the layer as it is: proven (a variant row, or an uncompressed blob whose
   * digest is the diffID), or the blob the caller's own manifest names (`prefer`, whose
   * digest is all that manifest promises). Others are unproven claims: used only after a
   * checking pass, or as conversion sources (conversion hashes the decoded bytes anyway).
   */
  trusted: boolean;
}

const SOURCE_ORDER: Record<Compression, number> = { none: 0, zstd: 1, gzip: 2 };

/**
 * Get layer `diffId` as a blob in compression `opts.compression`, in this order:
 *  1. an existing variant present in the store (only level/codec-matching ones with
 *     `deterministic`, only same-level ones when `level` is given): a proven one, the
 *     caller's own `prefer` blob, or an unproven claim once a checking pass proved it;
 *  2. convert from any present variant: one streamed pass that decompresses, hashes the
 *     tar to re-check the diffID, compresses, and hashes + stores the output; on a
 *     diffID mismatch nothing is recorded and the next variant is tried;
 *  3. rebuild the tar from the layer's snapshot and compress it, same checks;
 *  4. else a MissingContentError naming `opts.what` and the diffID.
 * Every blob made is recorded as a variant (level and codec version included), and so is
 * every source whose decoded bytes were hashed to the diffID on the way (a proof). A blob
 * is never returned for the layer on a claim alone. The blob returned, and the blobs read,
 * are attached to `opts.lease`.
 */
export async function ensureLayer(store: Store, diffId: Digest, opts: EnsureLayerOptions): Promise<EnsuredLayer> {
  const level = opts.compression === 'none' ? undefined : opts.level === undefined ? undefined : effectiveLevel(opts.compression, opts.level);
  const key = `${diffId}|${opts.compression}|${level ?? ''}|${opts.deterministic ? 'd' : ''}`;
  let m = inflight.get(store);
  if (!m) inflight.set(store, (m = new Map()));
  const running = m.get(key);
  if (running) {
    const r = await running;
    if (opts.lease) store.content.attachIfPresent(r.digest, opts.lease);
    return r;
  }
  const p = ensureLayerOnce(store, diffId, { ...opts, level });
  m.set(key, p);
  try {
    return await p;
  } finally {
    m.delete(key);
  }
}

async function ensureLayerOnce(store: Store, diffId: Digest, opts: EnsureLayerOptions): Promise<EnsuredLayer> {
  const c = opts.compression;
  const what = opts.what ?? `layer ${diffId}`;
  const warn = (msg: string) => opts.progress?.warn(msg);
  const candidates = await presentCandidates(store, diffId, opts.prefer, warn);
  // The codec's fingerprint (compressing a probe: tens of ms) only when a decision needs it:
  // reusing the one variant present (a second convert) never does.
  let version: { v: string | undefined } | undefined;
  const curVersion = (): string | undefined => (version ??= { v: codecVersion(c) }).v;
  const defLevel = effectiveLevel(c);

  // 1. An existing variant.
  const qualifies = (k: Candidate): boolean => {
    if (k.compression !== c) return false;
    if (c === 'none') return true;
    if (opts.level !== undefined && k.row?.level !== opts.level) return false;
    if (opts.deterministic) {
      const want = opts.level ?? defLevel;
      return k.row?.level === want && k.row?.codecVersion === curVersion();
    }
    return true;
  };
  const reusable = candidates.filter(qualifies);
  reusable.sort((a, b) => rank(a) - rank(b));
  function rank(k: Candidate): number {
    if (!k.trusted) return 3; // needs a checking pass first
    if (k.digest === opts.prefer) return 0;
    const lv = opts.level ?? defLevel;
    if (k.row?.level === lv && k.row?.codecVersion === curVersion()) return 1;
    return 2;
  }
  for (const k of reusable) {
    if (opts.lease && !store.content.attachIfPresent(k.digest, opts.lease)) continue;
    if (!k.trusted) {
      // A claim: a checking pass (decode + hash, no output) proves or refutes it.
      try {
        await proveVariant(store, k.digest, diffId, { mediaType: opts.mediaType, what });
      } catch (e) {
        if (e instanceof DigestMismatchError || isCodecError(e)) {
          warn(`${what}: blob ${k.digest} is claimed to be layer ${diffId} but is not: ${(e as Error).message}; not used`);
          store.variants.dropClaim(k.digest, diffId);
          continue;
        }
        throw e;
      }
    }
    const row = store.variants.get(k.digest);
    return {
      digest: k.digest, size: k.size, diffId, compression: c, mediaType: row?.mediaType, level: row?.level,
      codecVersion: row?.codecVersion, source: 'existing',
    };
  }

  // Level of a new blob: explicit, else that of the preferred (missing) blob when imgtool
  // made it with this very codec — so rebuilding reproduces the same digest — else default.
  let newLevel = opts.level;
  if (newLevel === undefined && c !== 'none' && opts.prefer) {
    const pv = store.variants.get(opts.prefer);
    if (pv && pv.compression === c && pv.level !== undefined && pv.codecVersion === curVersion()) newLevel = pv.level;
  }
  newLevel = effectiveLevel(c, newLevel);

  // 2. Convert from a present variant (uncompressed first: nothing to decode; then zstd).
  const sources = [...candidates].sort((a, b) => SOURCE_ORDER[a.compression] - SOURCE_ORDER[b.compression] || a.size - b.size);
  const failures: string[] = [];
  for (const src of sources) {
    if (opts.lease && !store.content.attachIfPresent(src.digest, opts.lease)) continue;
    const task = opts.progress?.task(opts.label ?? `convert ${shortDigest(diffId)}`, src.size);
    try {
      const info = await convertBlob(store, src, diffId, c, newLevel, opts, task, `${what}: converting ${src.digest} (${src.compression})`);
      task?.finish();
      if (!info) continue; // removed meanwhile
      // The source's decoded bytes hashed to the diffID: that proves the source too.
      if (!src.row && store.content.has(src.digest)) {
        store.variants.recordProof({ digest: src.digest, diffId, compression: src.compression, size: src.size, mediaType: src.digest === opts.prefer ? opts.preferMediaType : undefined });
      }
      return record(store, diffId, info, c, newLevel, curVersion(), opts.mediaType, 'converted', src.digest);
    } catch (e) {
      task?.finish();
      // A source that does not decode to the layer, or whose stored bytes are not its digest.
      if (e instanceof DigestMismatchError || e instanceof SizeMismatchError || isCodecError(e)) {
        warn(`${what}: variant ${src.digest} (${src.compression}) cannot be converted to ${diffId}: ${(e as Error).message}; trying another source`);
        failures.push(`${src.digest} (${src.compression}): ${(e as Error).message}`);
        if (!src.row) store.variants.dropClaim(src.digest, diffId);
        continue;
      }
      throw e;
    }
  }

  // 3. Rebuild from the snapshot.
  const rebuild = opts.rebuild === null ? undefined : opts.rebuild ?? snapshotOps().rebuildLayer;
  if (rebuild) {
    const input = await rebuild(store, diffId);
    if (input) {
      const task = opts.progress?.task(opts.label ?? `rebuild ${shortDigest(diffId)}`);
      try {
        const info = await produce(store, input, 'none', diffId, c, newLevel, opts, task, `${what}: rebuilding from its snapshot`);
        task?.finish();
        return record(store, diffId, info, c, newLevel, curVersion(), opts.mediaType, 'rebuilt');
      } catch (e) {
        task?.finish();
        if (e instanceof DigestMismatchError) {
          failures.push(`snapshot rebuild: ${e.message}`);
        } else throw e;
      }
    }
  }

  // 4. Nothing can produce it.
  const known = store.variants.forDiffId(diffId).map((v) => `variant ${v.digest} (${v.compression}): ${store.content.has(v.digest) ? 'present' : 'absent'}`);
  throw new MissingContentError(
    `${what}: layer ${diffId} cannot be produced as ${c}: no usable blob of it is in the store and no snapshot rebuilds it`,
    [...known, ...failures],
  );
}

/**
 * Convert a stored variant: big blobs in a worker thread (see transcode.ts), small ones
 * in-process. Undefined when the source blob vanished before it could be read.
 */
async function convertBlob(
  store: Store, src: Candidate, diffId: Digest, outC: Compression, level: number | undefined, opts: EnsureLayerOptions,
  task: ProgressTask | undefined, what: string,
): Promise<BlobInfo | undefined> {
  const { WORKER_MIN_BYTES, transcodeInWorker } = transcode();
  if (src.size >= WORKER_MIN_BYTES && !process.env.IMGTOOL_TRANSCODE_INPROCESS) {
    if (!fs.existsSync(store.content.blobPath(src.digest))) return undefined;
    const r = await transcodeInWorker(store, src.digest, src.compression, outC, level, (n) => task?.update(n), { what, limits: opts.limits });
    // The source was hashed in the same pass: a stored file that is not its digest proves nothing.
    if (r.srcDigest !== src.digest || r.srcSize !== src.size) {
      await fs.promises.rm(r.tmp, { force: true });
      throw new DigestMismatchError(src.digest, r.srcSize !== src.size ? `${r.srcSize} bytes` : r.srcDigest, `${what}: stored blob ${src.digest} is corrupt (run imgtool fsck)`);
    }
    if (r.tarDigest !== diffId) {
      await fs.promises.rm(r.tmp, { force: true });
      throw new DigestMismatchError(diffId, r.tarDigest, `${what}: uncompressed tar`);
    }
    try {
      store.meta.write(() => store.content.commitLocked(r.tmp, r.outDigest, r.outSize, opts.lease, `${what}: ${outC} variant`));
    } catch (e) {
      await fs.promises.rm(r.tmp, { force: true });
      throw e;
    }
    return { digest: r.outDigest, size: r.outSize, createdAt: Date.now() };
  }
  let input: Readable;
  try {
    input = store.content.openRead(src.digest, { verify: true, what: `${what}: stored blob ${src.digest} is corrupt (run imgtool fsck)` });
  } catch {
    return undefined;
  }
  return produce(store, input, src.compression, diffId, outC, level, opts, task, what, src.size);
}

function isCodecError(e: unknown): boolean {
  // (a TranscodeError exists only once the worker module was loaded for a conversion)
  if (transcodeLoaded && e instanceof transcodeLoaded.TranscodeError) return true;
  // zlib errors carry Z_* codes; zstd-napi throws plain Errors from the binding.
  const err = e as { code?: string; message?: string };
  if (typeof err?.code === 'string' && err.code.startsWith('Z_')) return true;
  if (e instanceof ImgtoolError) return false;
  return e instanceof Error && /zstd|frame|corrupt|unknown compression|incorrect header|invalid/i.test(err.message ?? '');
}


/**
 * Present blobs of a layer with their real compression (by magic): proven variant rows,
 * the uncompressed blob itself, the caller's `prefer` blob, and unproven claims. A row
 * whose recorded compression disagrees with the bytes is warned about and corrected.
 */
async function presentCandidates(store: Store, diffId: Digest, prefer: Digest | undefined, warn: (m: string) => void): Promise<Candidate[]> {
  const out: Candidate[] = [];
  const seen = new Set<string>();
  const consider = async (digest: Digest, row: Variant | undefined, trusted: boolean) => {
    if (seen.has(digest)) return;
    seen.add(digest);
    const info = store.content.info(digest);
    if (!info) return;
    let actual: Compression;
    try {
      actual = await detectFileCompression(store.content.blobPath(digest));
    } catch {
      return; // file gone (pruned meanwhile)
    }
    if (row && row.compression !== actual) {
      warn(`blob ${digest} of layer ${diffId} is recorded as ${row.compression}${row.mediaType ? ` (${row.mediaType})` : ''} but its bytes are ${actual}; using ${actual} (the diffID check decides)`);
      store.variants.correctCompression(digest, actual);
      row = { ...row, compression: actual };
    }
    // An uncompressed blob named by the diffID proves itself (its digest is verified on read).
    if (digest === diffId && actual === 'none') trusted = true;
    out.push({ digest, size: info.size, compression: actual, row, trusted });
  };
  for (const v of store.variants.forDiffId(diffId)) await consider(v.digest, v, true);
  await consider(diffId, undefined, false);
  if (prefer) await consider(prefer, undefined, true);
  for (const v of store.variants.claimsFor(diffId)) await consider(v.digest, undefined, false);
  return out;
}

/** Counts bytes flowing through, for progress. */
class Counter extends Transform {
  n = 0;
  constructor(private readonly task?: ProgressTask) {
    super({ highWaterMark: 1024 * 1024 });
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.n += chunk.length;
    this.task?.update(this.n);
    cb(null, chunk);
  }
}

/**
 * One streamed pass: input (compression `inC`) → decode → hash (diffID check) → encode
 * (`outC`) → content writer (hash + store). Commits only when the tar hashes to diffId.
 */
async function produce(
  store: Store, input: Readable, inC: Compression, diffId: Digest, outC: Compression, level: number | undefined,
  opts: EnsureLayerOptions, task: ProgressTask | undefined, what: string, compressedSize?: number,
): Promise<BlobInfo> {
  const w = store.content.writer({ lease: opts.lease, what, digest: outC === 'none' ? diffId : undefined });
  const stages: NodeJS.ReadWriteStream[] = [];
  if (task) stages.push(new Counter(task));
  if (inC !== 'none') {
    const l = resolveLimits(opts.limits);
    stages.push(decompressStream(inC), new DecodeBound({ what, max: l.layerSize, maxFlag: LIMIT_FLAGS.layerSize, ratio: l.ratio, compressed: () => compressedSize ?? 0 }));
  }
  let tar: DigestStream | undefined;
  if (outC !== 'none') {
    tar = new DigestStream({ highWaterMark: 1024 * 1024 });
    stages.push(tar, compressStream(outC, level));
  }
  try {
    await pipeline([input, ...stages, w]);
  } catch (e) {
    await w.abort();
    throw e;
  }
  if (tar && tar.digest() !== diffId) {
    await w.abort();
    throw new DigestMismatchError(diffId, tar.digest(), `${what}: uncompressed tar`);
  }
  return w.commit();
}

function record(
  store: Store, diffId: Digest, info: BlobInfo, c: Compression, level: number | undefined, version: string | undefined,
  mediaType: string | undefined, source: EnsureSource, from?: Digest,
): EnsuredLayer {
  // `info` was just made from bytes hashed to diffId on the way: a proof.
  store.variants.recordProof({ digest: info.digest, diffId, compression: c, size: info.size, mediaType, level, codecVersion: version });
  // The row may already exist (same bytes made before): report what it says.
  const row = store.variants.get(info.digest)!;
  return {
    digest: info.digest, size: info.size, diffId, compression: c, mediaType: row.mediaType, level: row.level ?? level,
    codecVersion: row.codecVersion ?? version, source, from,
  };
}
