/**
 * Snapshot operations over a Store: unpack an image into its snapshot chain, rebuild
 * a layer's exact tar from a snapshot, discard compressed blobs that can be rebuilt,
 * list snapshots, load merged views.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable, Transform, TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Store } from '../store';
import { ResourceHolder, VerifyStream } from '../content';
import { Progress, silentProgress } from '../progress';
import { Descriptor, ImageConfig, Manifest } from '../images/types';
import { walkImage } from '../images/walk';
import { contentSource } from '../images/source';
import { Compression, isIndexType, layerCompression } from '../images/mediatypes';
import { Platform, exactMatcher, formatPlatform, hostPlatform, parsePlatform } from '../platform';
import { AutoDecompressStream, codecVersion, compressStream, DEFAULT_LEVEL, describeCodecError } from '../compression/codecs';
import { hashDecompressed, proveVariant } from '../layers/prove';
import { DigestStream, Digester, shortDigest } from '../digest';
import { DigestMismatchError, ImgtoolError, InvalidArchiveError, MissingContentError, NotFoundError } from '../errors';
import { TarParser } from '../tar';
import { LayerApplier, showName } from './apply';
import { Node, newRoot, mergeSnapshot, writeIndex } from './tree';
import { finalizeRecord, readRecord, removeTree } from '../tar';
import { SnapshotStore, chainIds } from './store';
import { markOthers } from '../gc/prune';
import { DecodeBound, LIMIT_FLAGS, Limits, resolveLimits } from '../limits';
import { CodecError } from '../compression/codecs';

// ---------------------------------------------------------------------------
// Resolving an image to its layers

export interface ImageLayers {
  /** The image's name in the store. */
  name: string;
  manifestDesc: Descriptor;
  manifest: Manifest;
  config: ImageConfig;
  platform?: Platform;
  layers: Array<{ desc: Descriptor; diffId: string; chainId: string; parent?: string }>;
}

/**
 * The manifest of `ref` for a platform (`platform` as `os/arch[/variant]`, default the
 * host's) and its layers with diffIDs and chainIDs. A single-manifest image is used
 * whatever its platform unless `platform` is given.
 */
export async function resolveImageLayers(store: Store, ref: string, platform?: string, target?: Descriptor): Promise<ImageLayers> {
  const rec = target ? { name: ref, target } : store.images.resolve(ref);
  const want = platform ? parsePlatform(platform) : hostPlatform();
  const filter = platform !== undefined || isIndexType(rec.target.mediaType);
  const w = await walkImage(contentSource(store.content), rec.target, { platforms: filter ? exactMatcher([want]) : undefined });
  const candidates = w.manifests.filter((m) => !m.attestation);
  if (!candidates.length) {
    const all = await walkImage(contentSource(store.content), rec.target);
    const avail = all.manifests.filter((m) => !m.attestation && m.platform).map((m) => formatPlatform(m.platform!));
    throw new NotFoundError(`image ${rec.name}: no manifest for platform ${formatPlatform(want)} in the store${avail.length ? ` (present: ${[...new Set(avail)].join(', ')})` : ''}`);
  }
  const m = candidates[0];
  if (!m.config) throw new MissingContentError(`image ${rec.name}: config ${m.manifest.config.digest} of manifest ${m.desc.digest} is not in the store`);
  const diffIds = m.config.rootfs?.diff_ids;
  if (!Array.isArray(diffIds)) throw new InvalidArchiveError(`image ${rec.name}: config ${m.manifest.config.digest} has no rootfs.diff_ids`);
  if (diffIds.length !== m.manifest.layers.length) {
    throw new InvalidArchiveError(`image ${rec.name}: manifest ${m.desc.digest} has ${m.manifest.layers.length} layers but its config lists ${diffIds.length} diff_ids`);
  }
  const cids = chainIds(diffIds);
  return {
    name: rec.name,
    manifestDesc: m.desc,
    manifest: m.manifest,
    config: m.config,
    platform: m.platform,
    layers: m.manifest.layers.map((desc, i) => ({ desc, diffId: diffIds[i], chainId: cids[i], parent: i ? cids[i - 1] : undefined })),
  };
}

// ---------------------------------------------------------------------------
// Merged views

export interface MergedView {
  tree: Node;
  /** File data directory of each layer of the chain, bottom first. */
  fsRoots: string[];
}

/** Merged view of a committed snapshot chain. */
export async function loadMergedView(snapshots: SnapshotStore, chainId: string): Promise<MergedView> {
  const tree = newRoot();
  const fsRoots: string[] = [];
  const chain = snapshots.chain(chainId);
  for (let i = 0; i < chain.length; i++) {
    await mergeSnapshot(tree, snapshots.indexFile(chain[i].chainId), i);
    fsRoots[i] = snapshots.fsDir(chain[i].chainId);
  }
  return { tree, fsRoots };
}

// ---------------------------------------------------------------------------
// Applying a layer

export interface ApplyLayerOptions {
  view: MergedView;
  /** Index of the layer in the chain (owner index in the view). */
  index: number;
  source: Readable;
  diffId: string;
  chainId: string;
  parent?: string;
  /** Work directory from `SnapshotStore.prepare()`. */
  work: string;
  record: boolean;
  what: string;
  onBytes?: (n: number) => void;
  /** Warnings about the layer (e.g. clamped mtimes), once it is applied and verified. */
  warn?: (message: string) => void;
  /** Hostile-input limits (src/limits); defaults for the rest. */
  limits?: Partial<Limits>;
  /** Compressed size of `source` when known (the blob's size): the ratio limit's base. */
  compressedSize?: number;
}

export interface AppliedLayer {
  size: number;
  reproducible: boolean;
}

/**
 * Apply a (possibly compressed) layer stream into `work`, verifying its diffID. On
 * success the view includes the layer, with `fsRoots[index]` = `work/fs`; on failure
 * the view is unusable and the caller discards `work`.
 */
export async function applyLayerStream(o: ApplyLayerOptions): Promise<AppliedLayer> {
  o.view.fsRoots[o.index] = path.join(o.work, 'fs');
  const limits = resolveLimits(o.limits);
  const applier = new LayerApplier({ tree: o.view.tree, layer: o.index, fsRoots: o.view.fsRoots, workDir: o.work, record: o.record, what: o.what, maxEntries: limits.entries });
  const dig = new DigestStream();
  let n = 0;
  const bound = new DecodeBound({ what: o.what, max: limits.layerSize, maxFlag: LIMIT_FLAGS.layerSize, ratio: limits.ratio, compressed: () => o.compressedSize ?? n });
  const count = new Transform({
    transform(chunk: Buffer, _e, cb: TransformCallback) {
      n += chunk.length;
      o.onBytes?.(n);
      cb(null, chunk);
    },
  });
  const decoder = new AutoDecompressStream();
  try {
    await pipeline(o.source, count, decoder, bound, dig, new TarParser(applier));
  } catch (e) {
    throw layerError(e, o.what, applier.current, decoder.detected);
  } finally {
    applier.close();
  }
  const actual = dig.digest();
  if (actual !== o.diffId) throw new DigestMismatchError(o.diffId, actual, `${o.what}: uncompressed layer (diffID)`);
  for (const w of applier.warnings()) o.warn?.(w);
  let recordSize = 0;
  if (o.record) {
    const tmp = path.join(o.work, 'tarsplit.tmp');
    recordSize = await finalizeRecord(tmp, path.join(o.work, 'tarsplit.gz'), (id) => applier.locate(id));
    fs.rmSync(tmp, { force: true });
  }
  removeTree(path.join(o.work, 'aside'));
  const indexSize = await writeIndex(path.join(o.work, 'index.gz'), { v: 1, chainId: o.chainId, parent: o.parent, diffId: o.diffId }, applier.removed, applier.opaque, applier.ownEntries());
  return { size: applier.dataSize() + recordSize + indexSize, reproducible: o.record };
}

/**
 * One line naming the layer (and the entry being applied) for any failure while applying:
 * errors that already name the layer pass; tar format errors and decoder errors get the
 * layer prefixed; raw system errors (ENAMETOOLONG, EACCES, ENOSPC…) are described without
 * store-internal paths.
 */
export function layerError(e: unknown, what: string, entry: string | undefined, compression: string | undefined): Error {
  if (e instanceof ImgtoolError) {
    if (e.message.startsWith(what)) return e;
    if (e instanceof CodecError) return new InvalidArchiveError(`${what}: ${e.message}`);
    const err = new ImgtoolError(e.code, `${what}: ${e.message.replace(/^tar: /, '')}`, e.details, { cause: e });
    return err;
  }
  const at = entry !== undefined ? `: entry ${showName(entry)}` : '';
  const ne = e as NodeJS.ErrnoException;
  if (typeof ne?.code === 'string' && /^Z_|^ERR_ZLIB/.test(ne.code)) {
    return new InvalidArchiveError(`${what}: ${describeCodecError(compression && compression !== 'none' ? (compression as Compression) : 'gzip', ne)}`);
  }
  if (typeof ne?.code === 'string' && /^E[A-Z]+$/.test(ne.code)) {
    return new ImgtoolError('PRECONDITION', `${what}${at}: cannot write it into the snapshot: ${ne.code} (${systemReason(ne.code)})`, [], { cause: e });
  }
  const msg = e instanceof Error ? e.message : String(e);
  return new ImgtoolError('INTERNAL', `${what}${at}: ${/call stack/i.test(msg) ? 'the layer is too deeply nested to apply' : msg.split('\n')[0]}`, [], { cause: e });
}

function systemReason(code: string): string {
  switch (code) {
    case 'ENAMETOOLONG': return 'name too long for the filesystem';
    case 'ENOSPC': return 'no space left on the device';
    case 'EDQUOT': return 'disk quota exceeded';
    case 'EACCES': case 'EPERM': return 'permission denied in the store';
    case 'EMFILE': case 'ENFILE': return 'too many open files';
    case 'EROFS': return 'the store is on a read-only filesystem';
    default: return 'system error';
  }
}

// ---------------------------------------------------------------------------
// Unpack

export interface UnpackOptions {
  /** `os/arch[/variant]`; default the host platform. */
  platform?: string;
  /** Attach every snapshot of the chain (and blobs used) to this holder. */
  lease?: ResourceHolder;
  progress?: Progress;
  /** Hostile-input limits (`--max-layer-size`, `--max-ratio`, `--max-entries`). */
  limits?: Partial<Limits>;
  /** Unpack this (not yet registered) image, `ref` being its name for messages (load). */
  target?: Descriptor;
}

export interface UnpackedLayer {
  index: number;
  digest: string;
  diffId: string;
  chainId: string;
  /** False when the snapshot existed already. */
  applied: boolean;
  /** Where the layer came from when applied: the image's blob, another variant, or a rebuild. */
  source?: { kind: 'blob' | 'variant' | 'snapshot'; digest?: string; chainId?: string };
}

export interface UnpackResult {
  image: string;
  manifest: string;
  platform?: string;
  /** chainID of the top layer (the image's root filesystem). */
  chainId: string | undefined;
  layers: UnpackedLayer[];
}

/**
 * Create an image's snapshot chain: one snapshot per layer keyed by chainID. Existing
 * snapshots are not re-applied, but the image's own layer blob, when present and not yet
 * proven to be that diffID, gets a checking pass (decompress + hash): a snapshot with the
 * claimed chainID existing says nothing about this image's blob. Every blob whose
 * decompressed bytes hashed to its diffID (applied or checked) is recorded as a proven
 * variant when the whole unpack succeeds; a failed unpack records none. Each blob read and
 * each snapshot used is attached to `opts.lease` (under the write lock) before it is read.
 */
export async function unpackImage(store: Store, ref: string, opts: UnpackOptions = {}): Promise<UnpackResult> {
  const snaps = store.snapshots;
  const progress = opts.progress ?? silentProgress;
  const img = await resolveImageLayers(store, ref, opts.platform, opts.target);
  const proofs: Array<Parameters<Store['variants']['recordProof']>[0]> = [];
  const result: UnpackResult = {
    image: img.name,
    manifest: img.manifestDesc.digest,
    platform: img.platform ? formatPlatform(img.platform) : undefined,
    chainId: img.layers.length ? img.layers[img.layers.length - 1].chainId : undefined,
    layers: [],
  };
  let view: MergedView | undefined;
  const total = img.layers.length;
  for (let i = 0; i < total; i++) {
    const l = img.layers[i];
    const what = `image ${img.name} layer ${i + 1}/${total} (${l.desc.digest})`;
    if (snaps.has(l.chainId)) {
      if (opts.lease && !snaps.attach(l.chainId, opts.lease)) throw new ImgtoolError('PRECONDITION', `${what}: snapshot ${l.chainId} was removed while unpacking; retry`);
      if (!store.variants.get(l.desc.digest) && store.content.attachIfPresent(l.desc.digest, opts.lease)) {
        // The snapshot proves nothing about this image's blob: check it once.
        await checkLayerBlob(store, l.desc, l.diffId, what, opts.limits);
        const c = layerCompression(l.desc.mediaType);
        if (c) proofs.push({ digest: l.desc.digest, diffId: l.diffId, compression: c, size: l.desc.size, mediaType: l.desc.mediaType });
      }
      if (view) {
        await mergeSnapshot(view.tree, snaps.indexFile(l.chainId), i);
        view.fsRoots[i] = snaps.fsDir(l.chainId);
      }
      result.layers.push({ index: i, digest: l.desc.digest, diffId: l.diffId, chainId: l.chainId, applied: false });
      continue;
    }
    if (!view) view = i > 0 ? await loadMergedView(snaps, img.layers[i - 1].chainId) : { tree: newRoot(), fsRoots: [] };
    const src = openLayerSource(store, l.desc, l.diffId, what, opts.lease);
    const task = progress.task(`unpack ${shortDigest(l.desc.digest)} (${i + 1}/${total})`, src.size);
    const work = snaps.prepare();
    try {
      const applied = await applyLayerStream({ view, index: i, source: src.stream, diffId: l.diffId, chainId: l.chainId, parent: l.parent, work, record: true, what, onBytes: (b) => task.update(b), warn: (m) => progress.warn(m), limits: opts.limits, compressedSize: src.source?.kind === 'snapshot' ? undefined : src.size });
      snaps.commit(work, { chainId: l.chainId, parent: l.parent, diffId: l.diffId, size: applied.size, reproducible: applied.reproducible }, opts.lease);
      view.fsRoots[i] = snaps.fsDir(l.chainId);
    } catch (e) {
      src.stream.destroy();
      snaps.discard(work);
      throw e;
    } finally {
      task.finish();
    }
    result.layers.push({ index: i, digest: l.desc.digest, diffId: l.diffId, chainId: l.chainId, applied: true, source: src.source });
    // Applying hashed the blob's decompressed bytes to the diffID: a proof.
    if (src.source?.kind === 'blob' && src.compression) {
      proofs.push({ digest: l.desc.digest, diffId: l.diffId, compression: src.compression, size: l.desc.size, mediaType: l.desc.mediaType });
    }
  }
  store.meta.write(() => {
    for (const p of proofs) if (store.content.has(p.digest)) store.variants.recordProof(p);
  });
  return result;
}

/**
 * A checking pass over an image's own layer blob: decompress, hash, compare with the
 * diffID its config claims. Throws naming the image, layer, blob and both diffIDs.
 */
async function checkLayerBlob(store: Store, desc: Descriptor, diffId: string, what: string, limits?: Partial<Limits>): Promise<void> {
  const got = await hashDecompressed(store, desc.digest, what, limits);
  if (got.diffId !== diffId) {
    throw new DigestMismatchError(diffId, got.diffId, `${what}: blob ${desc.digest} does not decompress to the diffID its config claims; uncompressed layer (diffID)`);
  }
}

export interface LayerSource {
  stream: Readable;
  size?: number;
  source: UnpackedLayer['source'];
  /** Compression of a blob source, by its media type. */
  compression?: Compression;
}

/**
 * The image's blob; else a PROVEN variant of the diffID; else a rebuild from another
 * snapshot. The blob or snapshot is attached to `lease` before it is opened. The caller
 * checks the diffID of what it reads (the image's own blob is only claimed to be it).
 */
export function openLayerSource(store: Store, desc: Descriptor, diffId: string, what: string, lease?: ResourceHolder): LayerSource {
  if (store.content.attachIfPresent(desc.digest, lease)) {
    const compression = layerCompression(desc.mediaType);
    return { stream: store.content.openRead(desc.digest, { verify: true, what }), size: desc.size, source: { kind: 'blob', digest: desc.digest }, compression };
  }
  for (const v of store.variants.forDiffId(diffId)) {
    if (store.content.attachIfPresent(v.digest, lease)) {
      return { stream: store.content.openRead(v.digest, { verify: true, what }), size: v.size, source: { kind: 'variant', digest: v.digest } };
    }
  }
  for (const s of store.snapshots.forDiffId(diffId)) {
    if (!s.reproducible) continue;
    if (lease && !store.snapshots.attach(s.chainId, lease)) continue;
    const r = rebuildFrom(store.snapshots, s.chainId);
    if (r) return { stream: r, source: { kind: 'snapshot', chainId: s.chainId } };
  }
  throw new MissingContentError(`${what}: blob ${desc.digest} is not in the store and no variant or snapshot of diffID ${diffId} can replace it`);
}

// ---------------------------------------------------------------------------
// Rebuild

function rebuildFrom(snaps: SnapshotStore, chainId: string): Readable | undefined {
  const rec = snaps.recordFile(chainId);
  if (!fs.existsSync(rec)) return undefined;
  return readRecord(rec, snaps.fsDir(chainId));
}

/**
 * The exact uncompressed tar of layer `diffId`, regenerated (streaming) from any
 * reproducible snapshot with that diffID; undefined when there is none. Callers must
 * verify that its sha256 is `diffId` (the stream itself does not).
 */
export function rebuildLayer(store: Store, diffId: string): Readable | undefined {
  for (const s of store.snapshots.forDiffId(diffId)) {
    if (!s.reproducible) continue;
    const r = rebuildFrom(store.snapshots, s.chainId);
    if (r) return r;
  }
  return undefined;
}

/** Rebuild layer `diffId` and check that it hashes to it. Returns the uncompressed size. */
export async function verifyRebuild(store: Store, diffId: string): Promise<number> {
  const r = rebuildLayer(store, diffId);
  if (!r) throw new MissingContentError(`layer ${diffId}: no reproducible snapshot to rebuild it from`);
  const d = new Digester();
  for await (const c of r) d.update(c as Buffer);
  const actual = d.digest();
  if (actual !== diffId) throw new DigestMismatchError(diffId, actual, `layer rebuilt from its snapshot`);
  return d.size;
}

// ---------------------------------------------------------------------------
// Discard

export interface DiscardOptions {
  platform?: string;
  lease?: ResourceHolder;
  progress?: Progress;
  /** Hostile-input limits for proving a layer blob (src/limits). */
  limits?: Partial<Limits>;
}

export interface DiscardedLayer {
  digest: string;
  diffId: string;
  chainId: string;
  /** Bytes freed (0 when the blob was already absent, or kept). */
  freed: number;
  /** Why the blob was kept: what else references it (another image, a lease). */
  kept?: string;
}

/**
 * For `load --discard-layers`: for each layer of the unpacked image, rebuild it from
 * its committed snapshot and verify sha256 == diffID; nothing is deleted unless every
 * layer verifies. Then, in one write transaction (after re-checking each snapshot still
 * exists), delete each compressed blob that nothing else references: no other manifest
 * and no lease other than this operation's own (`opts.lease`), as the GC marker answers
 * it (`markOthers`). The variant row stays: the blob is known, not present.
 */
export async function discardLayers(store: Store, ref: string, opts: DiscardOptions = {}): Promise<DiscardedLayer[]> {
  const img = await resolveImageLayers(store, ref, opts.platform);
  for (const l of img.layers) {
    const what = `image ${img.name} layer ${l.desc.digest}`;
    const s = store.snapshots.get(l.chainId);
    if (!s) throw new ImgtoolError('PRECONDITION', `${what}: not unpacked (snapshot ${l.chainId} missing); nothing discarded for it`);
    if (opts.lease && !store.snapshots.attach(l.chainId, opts.lease)) throw new ImgtoolError('PRECONDITION', `${what}: snapshot ${l.chainId} vanished`);
    if (!s.reproducible) throw new ImgtoolError('PRECONDITION', `${what}: snapshot ${l.chainId} cannot rebuild the layer; blob kept`);
    const r = rebuildFrom(store.snapshots, l.chainId);
    if (!r) throw new ImgtoolError('PRECONDITION', `${what}: snapshot ${l.chainId} has no rebuild record; blob kept`);
    const d = new Digester();
    for await (const c of r) d.update(c as Buffer);
    const actual = d.digest();
    if (actual !== l.diffId) throw new DigestMismatchError(l.diffId, actual, `${what}: rebuild from snapshot ${l.chainId} (blob kept)`);
    // The row kept after the blob goes must be a proof, not the config's claim.
    if (store.content.has(l.desc.digest)) await proveVariant(store, l.desc.digest, l.diffId, { mediaType: l.desc.mediaType, what, limits: opts.limits });
  }
  const others = markOthers(store, img.manifestDesc.digest, opts.lease);
  const out = store.meta.write(() => {
    others.update();
    return img.layers.map((l): DiscardedLayer => {
      const what = `image ${img.name} layer ${l.desc.digest}`;
      const snap = store.snapshots.get(l.chainId);
      if (!snap || !snap.reproducible) throw new ImgtoolError('PRECONDITION', `${what}: snapshot ${l.chainId} removed meanwhile; nothing discarded`);
      const base = { digest: l.desc.digest, diffId: l.diffId, chainId: l.chainId };
      const by = others.retainer(l.desc.digest);
      if (by) return { ...base, freed: 0, kept: `still referenced by ${by}` };
      const info = store.content.info(l.desc.digest);
      if (!info) return { ...base, freed: 0 };
      store.content.forgetLocked(l.desc.digest);
      return { ...base, freed: info.size };
    });
  });
  for (const o of out) if (o.freed) store.content.removeFileIfUnrecorded(o.digest);
  return out;
}

// ---------------------------------------------------------------------------
// Listing

export interface SnapshotSummary {
  chainId: string;
  parent?: string;
  diffId: string;
  size: number;
  reproducible: boolean;
  created: string;
  /** Image names whose layers use this snapshot (for any of their platforms). */
  images: string[];
}

export async function listSnapshots(store: Store): Promise<SnapshotSummary[]> {
  const users = new Map<string, Set<string>>();
  for (const rec of store.images.list()) {
    let w;
    try {
      w = await walkImage(contentSource(store.content), rec.target);
    } catch {
      continue;
    }
    for (const m of w.manifests) {
      const ids = m.config?.rootfs?.diff_ids;
      if (!Array.isArray(ids) || !ids.length) continue;
      let cids: string[];
      try {
        cids = chainIds(ids);
      } catch {
        continue;
      }
      for (const c of cids) {
        if (!users.has(c)) users.set(c, new Set());
        users.get(c)!.add(rec.name);
      }
    }
  }
  return store.snapshots.list().map((s) => ({
    chainId: s.chainId,
    parent: s.parent,
    diffId: s.diffId,
    size: s.size,
    reproducible: s.reproducible,
    created: new Date(s.createdAt).toISOString(),
    images: [...(users.get(s.chainId) ?? [])].sort(),
  }));
}
