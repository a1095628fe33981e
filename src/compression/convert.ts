import * as os from 'node:os';
import type { Store } from '../store';
import { Digest, shortDigest } from '../digest';
import { ImgtoolError, InvalidArchiveError, InvalidArgumentError, MissingContentError, NotFoundError } from '../errors';
import { ResourceHolder } from '../content';
import { Progress } from '../progress';
import { Annotation, Descriptor, ImageConfig, Index, Manifest } from '../images/types';
import {
  Compression, MediaType, isConfigType, isDockerType, isIndexType, isLayerType, isManifestType, isNonDistributable, layerCompression, layerMediaType,
} from '../images/mediatypes';
import { isAttestation } from '../images/walk';
import { MAX_INDEX_NESTING, parseDocument, validateConfig, validateIndex, validateManifest } from '../images/schema';
import { Platform, PlatformMatcher, exactMatcher, formatPlatform, isUnknownPlatform, normalizePlatform, parsePlatform } from '../platform';
import { normalizeReference, parseReference } from '../reference';
import { effectiveLevel } from './codecs';
import { EnsureSource, LayerRebuilder, ensureLayer } from '../layers';

export interface ConvertOptions {
  compression: Compression;
  /** Codec level; default the codec's default (gzip 6, zstd 3). */
  level?: number;
  /** Convert Docker media types to OCI (zstd always does). */
  oci?: boolean;
  /** Only these platforms (`os/arch[/variant]`); default: every platform present in the store. */
  platforms?: Array<string | Platform>;
  /** Every platform of the index; an absent one is then an error. */
  allPlatforms?: boolean;
  /** Reuse only variants whose level and codec version match what imgtool makes now. */
  deterministic?: boolean;
  lease?: ResourceHolder;
  progress?: Progress;
  /** Layers converted at once (default: max(2, cores)). */
  concurrency?: number;
  /** Snapshot rebuilder for layers with no blob (default: the snapshots module's). */
  rebuild?: LayerRebuilder | null;
}

export interface ConvertedLayer {
  /** Digest of the source manifest. */
  manifest: Digest;
  platform?: string;
  index: number;
  diffId: Digest;
  from: Descriptor;
  to: Descriptor;
  /** How the new blob was obtained; `unchanged` = same blob and media type as before. */
  source: EnsureSource | 'unchanged';
}

export interface ConvertResult {
  /** Normalised name registered. */
  name: string;
  source: { name: string; digest: Digest };
  /** Descriptor the new name points at. */
  target: Descriptor;
  manifests: Array<{ platform?: string; attestation: boolean; from: Digest; to: Digest }>;
  layers: ConvertedLayer[];
  /** Index entries left out because their content is absent from the store. */
  dropped: Descriptor[];
}

type Node =
  | { kind: 'index'; desc: Descriptor; index: Index; children: Node[] }
  | { kind: 'manifest'; desc: Descriptor; manifest: Manifest; config?: ImageConfig; platform?: Platform; attestation: boolean }
  | { kind: 'opaque'; desc: Descriptor };

const DOCKER_TO_OCI: Record<string, string> = {
  [MediaType.DOCKER_LAYER]: MediaType.OCI_LAYER,
  [MediaType.DOCKER_LAYER_GZIP]: MediaType.OCI_LAYER_GZIP,
  [MediaType.DOCKER_LAYER_ZSTD]: MediaType.OCI_LAYER_ZSTD,
  [MediaType.DOCKER_FOREIGN_LAYER]: MediaType.OCI_LAYER_ND_GZIP,
  [MediaType.DOCKER_CONFIG]: MediaType.OCI_CONFIG,
  [MediaType.DOCKER_MANIFEST]: MediaType.OCI_MANIFEST,
  [MediaType.DOCKER_MANIFEST_LIST]: MediaType.OCI_INDEX,
};

/** OCI equivalent of a Docker media type (others unchanged). */
export function ociMediaType(mt: string): string {
  return DOCKER_TO_OCI[mt] ?? mt;
}

/** Layer media type for compression `c` standing in for `orig`, in an OCI or Docker manifest. */
export function convertedLayerType(orig: string, c: Compression, oci: boolean): string {
  const nd = isNonDistributable(orig);
  if (oci || c === 'zstd') {
    if (!nd) return layerMediaType(c, true);
    return c === 'zstd' ? MediaType.OCI_LAYER_ND_ZSTD : c === 'gzip' ? MediaType.OCI_LAYER_ND_GZIP : MediaType.OCI_LAYER_ND;
  }
  if (nd) return c === 'gzip' ? MediaType.DOCKER_FOREIGN_LAYER : MediaType.OCI_LAYER_ND;
  return layerMediaType(c, false);
}

/** Annotations that describe one particular compressed blob and are wrong for another. */
function blobSpecificAnnotation(k: string): boolean {
  return k.startsWith('containerd.io/snapshot/stargz') || k.startsWith('io.containers.zstd-chunked') || k.includes('estargz') || k.startsWith('containerd.io/snapshot/nydus');
}

/**
 * Write a new image `dst` from `src` whose layers use `opts.compression`, for every
 * selected platform. Config blobs are never changed (same diffIDs, same image ID); zstd
 * and `oci` switch manifests (and their descriptors' media types) to OCI. Layers are
 * obtained with `ensureLayer` (reuse a variant, convert another variant, rebuild from the
 * snapshot), several at once. Nothing is registered unless every layer was produced;
 * `dst` is registered at the end in one transaction.
 */
export async function convertImage(store: Store, src: string, dst: string, opts: ConvertOptions): Promise<ConvertResult> {
  const c = opts.compression;
  if (!['gzip', 'zstd', 'none'].includes(c)) throw new InvalidArgumentError(`unknown compression ${JSON.stringify(c)}: use gzip, zstd or none`);
  const level = c === 'none' ? undefined : opts.level === undefined ? undefined : effectiveLevel(c, opts.level);
  if (c === 'none' && opts.level !== undefined) throw new InvalidArgumentError('--level makes no sense with --compression none');
  if (opts.allPlatforms && opts.platforms?.length) throw new InvalidArgumentError('use either platforms or all platforms, not both');
  const rec = store.images.resolve(src);
  const dstRef = parseReference(dst);
  const dstName = normalizeReference(dst);
  const warn = (m: string) => opts.progress?.warn(m);
  const wanted = opts.platforms?.map((p) => (typeof p === 'string' ? parsePlatform(p) : normalizePlatform(p)));
  const matcher: PlatformMatcher | undefined = wanted?.length ? exactMatcher(wanted) : undefined;
  const strict = !!opts.allPlatforms || !!matcher;
  const content = store.content;

  // ---- plan: read the selected closure -----------------------------------
  const dropped: Descriptor[] = [];
  const absent: string[] = [];
  const readManifest = async (desc: Descriptor, attestation: boolean): Promise<Node & { kind: 'manifest' }> => {
    const mwhat = `image ${rec.name}: manifest ${desc.digest}`;
    const manifest: Manifest = validateManifest(parseDocument(await content.readBuffer(desc.digest), mwhat), mwhat);
    let config: ImageConfig | undefined;
    if (!attestation && isConfigType(manifest.config.mediaType)) {
      if (!content.has(manifest.config.digest)) {
        throw new MissingContentError(`image ${rec.name}: config ${manifest.config.digest} of manifest ${desc.digest} is not in the store; it cannot be converted`);
      }
      const cwhat = `image ${rec.name}: config ${manifest.config.digest}`;
      config = validateConfig(parseDocument(await content.readBuffer(manifest.config.digest), cwhat), cwhat);
    }
    let platform = desc.platform && !isUnknownPlatform(desc.platform) ? normalizePlatform(desc.platform) : undefined;
    if (!platform && config?.os && config.architecture) platform = normalizePlatform({ os: config.os, architecture: config.architecture, variant: config.variant });
    return { kind: 'manifest', desc, manifest, config, platform, attestation };
  };
  const visitIndex = async (desc: Descriptor, depth: number): Promise<Node & { kind: 'index' }> => {
    const iwhat = `image ${rec.name}: index ${desc.digest}`;
    if (depth > MAX_INDEX_NESTING) throw new InvalidArchiveError(`${iwhat}: indexes nested more than ${MAX_INDEX_NESTING} deep (the limit)`);
    const index: Index = validateIndex(parseDocument(await content.readBuffer(desc.digest), iwhat), iwhat);
    const children: Node[] = [];
    for (const m of index.manifests) {
      const present = content.has(m.digest);
      if (isIndexType(m.mediaType)) {
        if (present) {
          const sub = await visitIndex(m, depth + 1);
          if (sub.children.some((ch) => ch.kind !== 'opaque')) children.push(sub);
        } else missingEntry(m);
        continue;
      }
      if (!isManifestType(m.mediaType)) {
        if (present) children.push({ kind: 'opaque', desc: m });
        else {
          dropped.push(m);
          warn(`image ${rec.name}: index entry ${m.digest} (${m.mediaType}) is not in the store; left out`);
        }
        continue;
      }
      if (isAttestation(m)) {
        if (present) children.push(await readManifest(m, true));
        else dropped.push(m);
        continue;
      }
      if (matcher && m.platform && !matcher.matches(m.platform)) continue;
      if (!present) {
        missingEntry(m);
        continue;
      }
      const node = await readManifest(m, false);
      if (matcher && !m.platform && node.platform && !matcher.matches(node.platform)) continue;
      children.push(node);
    }
    return { kind: 'index', desc, index, children };
  };
  const missingEntry = (m: Descriptor) => {
    const p = m.platform ? formatPlatform(m.platform) : m.mediaType;
    if (strict) absent.push(`manifest ${m.digest} (${p})`);
    else {
      dropped.push(m);
      warn(`image ${rec.name}: ${p} (manifest ${m.digest}) is not in the store; left out of ${dstName}`);
    }
  };

  let root: Node;
  if (isIndexType(rec.target.mediaType)) root = await visitIndex(rec.target, 1);
  else if (isManifestType(rec.target.mediaType)) {
    const single = await readManifest(rec.target, false);
    if (matcher && single.platform && !matcher.matches(single.platform)) {
      throw new NotFoundError(`image ${rec.name} is ${formatPlatform(single.platform)}, not ${matcher.describe()}`);
    }
    root = single;
  } else throw new InvalidArchiveError(`image ${rec.name}: unsupported target media type ${rec.target.mediaType}`);
  if (absent.length) {
    throw new MissingContentError(`image ${rec.name}: ${absent.length} selected platform manifest(s) are not in the store; nothing converted`, absent);
  }

  // Attestations travel with the manifests they describe.
  const images: Array<Node & { kind: 'manifest' }> = [];
  const collect = (n: Node) => {
    if (n.kind === 'index') n.children.forEach(collect);
    else if (n.kind === 'manifest' && !n.attestation) images.push(n);
  };
  collect(root);
  const selected = new Set(images.map((m) => m.desc.digest));
  const pruneAttestations = (n: Node) => {
    if (n.kind !== 'index') return;
    n.children = n.children.filter((ch) => {
      if (ch.kind !== 'manifest' || !ch.attestation) return true;
      const target = ch.desc.annotations?.[Annotation.DOCKER_REFERENCE_DIGEST];
      return !target || selected.has(target);
    });
    n.children.forEach(pruneAttestations);
  };
  pruneAttestations(root);
  if (!images.length) throw new NotFoundError(`image ${rec.name}: no platform ${matcher ? `matching ${matcher.describe()} ` : ''}is in the store`);
  if (wanted) {
    for (const w of wanted) {
      if (!images.some((m) => m.platform && formatPlatform(m.platform) === formatPlatform(w))) {
        throw new NotFoundError(`image ${rec.name} has no platform ${formatPlatform(w)} in the store`);
      }
    }
  }

  // ---- layers -------------------------------------------------------------
  const ociFor = (m: Node & { kind: 'manifest' }) => !!opts.oci || c === 'zstd' || !isDockerType(m.desc.mediaType);
  interface Job { m: Node & { kind: 'manifest' }; i: number; diffId: Digest; from: Descriptor; to?: Descriptor; source?: ConvertedLayer['source'] }
  const jobs: Job[] = [];
  for (const m of images) {
    if (!m.config) continue; // not an image (artifact): kept as is
    const diffIds = m.config.rootfs?.diff_ids;
    if (!Array.isArray(diffIds) || diffIds.length !== m.manifest.layers.length) {
      throw new InvalidArchiveError(`image ${rec.name}: manifest ${m.desc.digest} has ${m.manifest.layers.length} layers but its config lists ${Array.isArray(diffIds) ? diffIds.length : 'no'} diff_ids`);
    }
    m.manifest.layers.forEach((l, i) => jobs.push({ m, i, diffId: diffIds[i], from: l }));
  }
  const failures: MissingContentError[] = [];
  const concurrency = Math.max(1, opts.concurrency ?? Math.max(2, os.availableParallelism?.() ?? os.cpus().length));
  // Largest layers first: the parallel conversions then finish closer together.
  const queue = [...jobs].sort((a, b) => b.from.size - a.from.size);
  let next = 0;
  const worker = async () => {
    while (next < queue.length) {
      const job = queue[next++];
      const { m, i, from } = job;
      const oci = ociFor(m);
      const plat = m.platform ? formatPlatform(m.platform) : undefined;
      if (!isLayerType(from.mediaType) || isNonDistributable(from.mediaType)) {
        // Foreign/unknown layers keep their blob (and URLs); only the media type family changes.
        const mt = oci ? ociMediaType(from.mediaType) : from.mediaType;
        job.to = { ...from, mediaType: mt };
        job.source = 'unchanged';
        if (isNonDistributable(from.mediaType) && layerCompression(from.mediaType) !== c) {
          warn(`image ${rec.name}${plat ? ` (${plat})` : ''}: layer ${i + 1} ${from.digest} is non-distributable; kept as it is`);
        }
        continue;
      }
      const mediaType = convertedLayerType(from.mediaType, c, oci);
      try {
        const r = await ensureLayer(store, job.diffId, {
          compression: c, level, deterministic: opts.deterministic, prefer: from.digest, mediaType, lease: opts.lease,
          progress: opts.progress, rebuild: opts.rebuild,
          label: `${plat ? plat.split('/').slice(1).join('/') + ' ' : ''}layer ${i + 1}/${m.manifest.layers.length} ${job.diffId.slice(7, 15)}`,
          what: `image ${rec.name}${plat ? ` (${plat})` : ''} layer ${i + 1}`,
        });
        const to: Descriptor = { mediaType, digest: r.digest, size: r.size };
        if (r.digest === from.digest) {
          if (from.annotations) to.annotations = from.annotations;
          if (from.urls) to.urls = from.urls;
        } else if (from.annotations) {
          const ann = Object.fromEntries(Object.entries(from.annotations).filter(([k]) => !blobSpecificAnnotation(k)));
          if (Object.keys(ann).length) to.annotations = ann;
        }
        job.to = to;
        job.source = r.source === 'existing' && r.digest === from.digest && mediaType === from.mediaType ? 'unchanged' : r.source;
      } catch (e) {
        if (e instanceof MissingContentError) failures.push(e);
        else throw e;
      }
    }
  };
  const results = await Promise.allSettled(Array.from({ length: Math.min(concurrency, jobs.length) }, worker));
  const thrown = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (thrown) throw thrown.reason;
  if (failures.length) {
    throw new MissingContentError(
      failures.length === 1 ? failures[0].message : `image ${rec.name}: ${failures.length} layers cannot be produced as ${c}; nothing converted`,
      failures.length === 1 ? failures[0].details : failures.map((f) => f.message),
    );
  }

  // ---- new documents, bottom up --------------------------------------------
  const byManifest = new Map<Node, Job[]>();
  for (const j of jobs) {
    if (!byManifest.has(j.m)) byManifest.set(j.m, []);
    byManifest.get(j.m)!.push(j);
  }
  const manifestsOut: ConvertResult['manifests'] = [];
  const putJSON = async (obj: unknown): Promise<{ digest: Digest; size: number }> => {
    const info = await content.ingestBuffer(Buffer.from(JSON.stringify(obj)), { lease: opts.lease });
    return { digest: info.digest, size: info.size };
  };
  const remap = new Map<Digest, Digest>(); // old manifest digest -> new
  const emitManifest = async (m: Node & { kind: 'manifest' }): Promise<Descriptor> => {
    const js = byManifest.get(m) ?? [];
    if (m.attestation || !m.config) {
      if (opts.lease) opts.lease.attach('content', m.desc.digest);
      return m.desc;
    }
    const oci = ociFor(m);
    const mt = oci ? ociMediaType(m.desc.mediaType) : m.desc.mediaType;
    const cfgMt = oci ? ociMediaType(m.manifest.config.mediaType) : m.manifest.config.mediaType;
    const layers = js.map((j) => j.to!);
    const same = mt === m.desc.mediaType && cfgMt === m.manifest.config.mediaType &&
      layers.every((l, i) => l.digest === m.manifest.layers[i].digest && l.mediaType === m.manifest.layers[i].mediaType);
    let desc: Descriptor;
    if (same) {
      desc = m.desc;
      if (opts.lease) store.meta.write(() => { opts.lease!.attach('content', m.desc.digest); opts.lease!.attach('content', m.manifest.config.digest); });
    } else {
      const doc: Manifest = { ...m.manifest, config: { ...m.manifest.config, mediaType: cfgMt }, layers };
      if (m.manifest.mediaType !== undefined || mt !== m.desc.mediaType) doc.mediaType = mt;
      if (opts.lease) opts.lease.attach('content', m.manifest.config.digest);
      const r = await putJSON(doc);
      desc = { mediaType: mt, digest: r.digest, size: r.size };
      if (m.desc.platform) desc.platform = m.desc.platform;
      if (m.desc.annotations) desc.annotations = m.desc.annotations;
      if (m.desc.artifactType) desc.artifactType = m.desc.artifactType;
    }
    remap.set(m.desc.digest, desc.digest);
    manifestsOut.push({ platform: m.platform ? formatPlatform(m.platform) : undefined, attestation: false, from: m.desc.digest, to: desc.digest });
    return desc;
  };
  const emit = async (n: Node): Promise<Descriptor> => {
    if (n.kind === 'opaque') {
      if (opts.lease) opts.lease.attach('content', n.desc.digest);
      return n.desc;
    }
    if (n.kind === 'manifest') return emitManifest(n);
    // Image manifests first (attestations need their new digests), in original order.
    const out = new Map<Node, Descriptor>();
    for (const ch of n.children) if (!(ch.kind === 'manifest' && ch.attestation)) out.set(ch, await emit(ch));
    for (const ch of n.children) {
      if (ch.kind === 'manifest' && ch.attestation) {
        const d = { ...ch.desc };
        const target = d.annotations?.[Annotation.DOCKER_REFERENCE_DIGEST];
        if (target && remap.has(target) && remap.get(target) !== target) {
          d.annotations = { ...d.annotations, [Annotation.DOCKER_REFERENCE_DIGEST]: remap.get(target)! };
        }
        if (opts.lease) opts.lease.attach('content', ch.desc.digest);
        manifestsOut.push({ attestation: true, from: ch.desc.digest, to: ch.desc.digest });
        out.set(ch, d);
      }
    }
    const entries = n.children.map((ch) => out.get(ch)!);
    const anyToOci = n.children.some((ch, i) => isDockerType(ch.desc.mediaType) && !isDockerType(entries[i].mediaType));
    const mt = opts.oci || (anyToOci && isDockerType(n.desc.mediaType)) ? ociMediaType(n.desc.mediaType) : n.desc.mediaType;
    const same = mt === n.desc.mediaType && entries.length === n.index.manifests.length &&
      entries.every((e, i) => JSON.stringify(e) === JSON.stringify(n.index.manifests[i]));
    if (same) {
      if (opts.lease) opts.lease.attach('content', n.desc.digest);
      return n.desc;
    }
    const doc: Index = { ...n.index, manifests: entries };
    if (doc.mediaType !== undefined || mt !== n.desc.mediaType) doc.mediaType = mt as Index['mediaType'];
    const r = await putJSON(doc);
    const desc: Descriptor = { mediaType: mt, digest: r.digest, size: r.size };
    if (n.desc.platform) desc.platform = n.desc.platform;
    if (n.desc.annotations) desc.annotations = n.desc.annotations;
    return desc;
  };
  const newRoot = await emit(root);
  const target: Descriptor = { mediaType: newRoot.mediaType, digest: newRoot.digest, size: newRoot.size };
  if (dstRef.digest && dstRef.digest !== target.digest) {
    throw new InvalidArgumentError(`cannot name the converted image ${dstName}: its digest is ${target.digest}`);
  }
  // Register in one transaction, re-checking that every blob is still there.
  store.meta.write(() => {
    const gone: string[] = [];
    for (const j of jobs) if (j.to && isLayerType(j.to.mediaType) && !isNonDistributable(j.to.mediaType) && !content.has(j.to.digest)) gone.push(j.to.digest);
    if (gone.length) throw new ImgtoolError('INTERNAL', `image ${rec.name}: converted layers vanished before ${dstName} was registered (concurrent prune without a lease?)`, gone);
    store.images.put(dstName, target, opts.lease);
  });

  return {
    name: dstName,
    source: { name: rec.name, digest: rec.target.digest },
    target,
    manifests: manifestsOut,
    layers: jobs.map((j) => ({
      manifest: j.m.desc.digest, platform: j.m.platform ? formatPlatform(j.m.platform) : undefined, index: j.i, diffId: j.diffId,
      from: j.from, to: j.to!, source: j.source!,
    })),
    dropped,
  };
}
