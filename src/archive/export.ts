import { Writable } from 'node:stream';
import { Store } from '../store';
import { Descriptor, Index, Manifest, Annotation } from '../images/types';
import {
  MediaType, isIndexType, isManifestType, isLayerType, isDockerType, layerCompression, isNonDistributable,
} from '../images/mediatypes';
import { walkImage, ImageWalk, ImageManifestInfo, stripDesc, isAttestation } from '../images/walk';
import { contentSource } from '../images/source';
import {
  Platform, exactMatcher, formatPlatform, hostPlatform, normalizePlatform,
} from '../platform';
import {
  parseReference, repositoryName, familiarName, familiarRepository, normalizeReference,
} from '../reference';
import { digestHex, sha256, shortDigest } from '../digest';
import { ImgtoolError, InvalidArgumentError, MissingContentError, NotFoundError } from '../errors';
import { ResourceHolder } from '../content';
import { Progress, silentProgress } from '../progress';
import { ImageRecord } from '../images/store';
import { LayerResolver, SaveCompression, replacementMediaType } from './export-resolver';
import { variantResolver } from '../compression/resolver';
import { ArchiveOutput, archiveOutput, FileOutput } from './output';
import { TarWriter, BLOB_MODE, FILE_MODE } from './writer';

export type { LayerResolver, LayerRequest, SaveCompression } from './export-resolver';

/** Archive layout: OCI layout + Docker manifest.json (default), OCI only, or Docker only. */
export type SaveFormat = 'oci+docker' | 'oci' | 'docker';

export const SAVE_FORMATS: readonly SaveFormat[] = ['oci+docker', 'oci', 'docker'];
export const SAVE_COMPRESSIONS: readonly SaveCompression[] = ['keep', 'gzip', 'zstd', 'none'];

export interface SaveOptions {
  /** Only these platforms (a new index is written when that is a subset). */
  platforms?: Platform[];
  /** Every platform of each index must be in the archive; an absent one is an error. */
  allPlatforms?: boolean;
  format?: SaveFormat;
  compression?: SaveCompression;
  /**
   * A file path (temp + fsync + rename; a symlink is followed, a FIFO or device written in
   * place), `-` for stdout, a stream (ended when done), or an ArchiveOutput (used as is).
   */
  output: string | Writable | ArchiveOutput;
  /** Holds every blob the save reads or produces against GC while it runs. */
  lease?: ResourceHolder;
  progress?: Progress;
  /** Digests to leave out of the tar (delta loads). The archive is partial by design. */
  omitBlobs?: Set<string>;
  /**
   * Produces absent or re-compressed layers. Default: `variantResolver` — a proven variant,
   * a conversion, or a rebuild from a snapshot (every exporter gets the same strength).
   */
  layerResolver?: LayerResolver;
  /**
   * `--skip-non-distributable`: an absent non-distributable (foreign) layer is left out of
   * the archive (its descriptor stays; the receiver fetches it from its URLs). Without it,
   * such a layer is missing like any other and the save fails naming it.
   */
  skipNonDistributable?: boolean;
  /** Platform whose manifest manifest.json prefers (default: this machine's). */
  host?: Platform;
  /** Re-verify each blob's digest while copying it (default true). */
  verify?: boolean;
}

/** A digest that changed between the store and the archive. */
export interface DigestChange {
  image: string;
  kind: 'index' | 'manifest';
  platform?: string;
  from: string;
  to: string;
  reason: string;
}

export interface SavedImage {
  /** Name written into the archive (full normalised). */
  name: string;
  /** As the caller gave it. */
  requested: string;
  /** Target written (equals `storeDigest` unless the index/manifest was rewritten). */
  digest: string;
  mediaType: string;
  size: number;
  storeDigest: string;
  /** Platforms in the archive. */
  platforms: string[];
  /** Platforms of the stored index that are not in the archive (absent or not selected). */
  leftOut: string[];
  /** The manifest that manifest.json describes for this image. */
  dockerManifest?: string;
}

export interface PlannedBlob {
  digest: string;
  size: number;
  mediaType: string;
  /** Documents produced by the save (new manifests/indexes), written from memory. */
  data?: Buffer;
  /** Listed in `omitBlobs`: referenced but not written. */
  omitted: boolean;
}

export interface SavePlan {
  format: SaveFormat;
  compression: SaveCompression;
  images: SavedImage[];
  changes: DigestChange[];
  /** Every blob the archive references, in the order they are written (omitted ones included). */
  blobs: PlannedBlob[];
  /** Metadata files (oci-layout, index.json, manifest.json, repositories) in write order. */
  files: Array<{ name: string; data: Buffer }>;
  warnings: string[];
}

export interface SaveResult {
  output: string;
  format: SaveFormat;
  compression: SaveCompression;
  images: SavedImage[];
  changes: DigestChange[];
  /** Blob entries written. */
  blobs: number;
  /** Digests referenced but left out (omitBlobs). */
  omitted: string[];
  /** Bytes of the archive. */
  bytes: number;
  warnings: string[];
}

const BLOB_DIR = 'blobs/sha256/';
const blobPath = (digest: string) => BLOB_DIR + digestHex(digest);

interface Named {
  requested: string;
  name: string;
  rec: ImageRecord;
  /** Named by digest: its target must not change. */
  pinned: boolean;
}

interface MissingItem {
  image: string;
  line: string;
}

/** Resolve what the user typed to a stored image and the name to write into the archive. */
function resolveName(store: Store, input: string): Named {
  let rec: ImageRecord;
  try {
    rec = store.images.resolve(input);
  } catch (e) {
    // `repo@sha256:…` (or `repo:tag@sha256:…`) for content stored under another name of
    // the same repository: that digest-pinned name is what goes into the archive.
    let ref;
    try {
      ref = parseReference(input);
    } catch {
      throw e;
    }
    if (!ref.digest) throw e;
    const repo = repositoryName(ref);
    const recs = store.images.list().filter((r) => r.target.digest === ref.digest);
    const same = recs.find((r) => {
      try {
        return repositoryName(parseReference(r.name)) === repo;
      } catch {
        return false;
      }
    });
    const found = same ?? recs[0];
    if (!found) throw e;
    return { requested: input, name: normalizeReference(input), rec: found, pinned: true };
  }
  let byName = !!store.images.get(input);
  if (!byName) {
    try {
      byName = !!store.images.get(normalizeReference(input));
    } catch {
      /* not a reference: looked up by digest */
    }
  }
  if (byName) return { requested: input, name: rec.name, rec, pinned: rec.name.includes('@') };
  // Found by digest: name it `repository@digest`, which pins exactly that content.
  let name: string;
  try {
    name = `${repositoryName(parseReference(rec.name))}@${rec.target.digest}`;
  } catch {
    name = rec.name;
  }
  return { requested: input, name, rec, pinned: true };
}

const platformLabel = (p?: Platform) => (p ? formatPlatform(p) : 'unknown platform');

function sameDesc(a: Descriptor, b: Descriptor): boolean {
  return a.digest === b.digest && a.mediaType === b.mediaType && a.size === b.size;
}

function dockerToOci(mt: string): string {
  switch (mt) {
    case MediaType.DOCKER_MANIFEST: return MediaType.OCI_MANIFEST;
    case MediaType.DOCKER_MANIFEST_LIST: return MediaType.OCI_INDEX;
    case MediaType.DOCKER_CONFIG: return MediaType.OCI_CONFIG;
    case MediaType.DOCKER_LAYER: return MediaType.OCI_LAYER;
    case MediaType.DOCKER_LAYER_GZIP: return MediaType.OCI_LAYER_GZIP;
    case MediaType.DOCKER_LAYER_ZSTD: return MediaType.OCI_LAYER_ZSTD;
    case MediaType.DOCKER_FOREIGN_LAYER: return MediaType.OCI_LAYER_ND_GZIP;
    default: return mt;
  }
}

const jsonBuf = (v: unknown) => Buffer.from(JSON.stringify(v), 'utf8');

/** One image root (several names may share it) being planned. */
interface RootPlan {
  root: Descriptor;
  names: Named[];
  walk: ImageWalk;
  /** Final descriptor per stored manifest digest (kept manifests only). */
  manifestMap: Map<string, Descriptor>;
  /** Kept manifests in platform order with their final layers. */
  kept: Array<{ info: ImageManifestInfo; finalDesc: Descriptor; layers: Descriptor[]; config: Descriptor }>;
  finalRoot?: Descriptor;
  leftOut: string[];
}

/**
 * Work out the whole archive before writing anything: every blob with its size, every
 * rewritten manifest/index, the Docker manifest.json. Missing blobs are asked of the
 * layer resolver; whatever still cannot be produced fails the plan, listing every one.
 */
export async function planSave(store: Store, refs: string[], opts: Omit<SaveOptions, 'output'> = {}): Promise<SavePlan> {
  const format = opts.format ?? 'oci+docker';
  const compression = opts.compression ?? 'keep';
  if (!SAVE_FORMATS.includes(format)) throw new InvalidArgumentError(`unknown format ${JSON.stringify(format)}: expected ${SAVE_FORMATS.join(', ')}`);
  if (!SAVE_COMPRESSIONS.includes(compression)) throw new InvalidArgumentError(`unknown compression ${JSON.stringify(compression)}: expected ${SAVE_COMPRESSIONS.join(', ')}`);
  if (format === 'docker' && compression === 'zstd') {
    throw new InvalidArgumentError('Docker archives cannot hold zstd layers (schema2 has no zstd media type): use --format oci or oci+docker');
  }
  if (opts.platforms?.length && opts.allPlatforms) throw new InvalidArgumentError('--platform and --all-platforms are mutually exclusive');
  if (!refs.length) throw new InvalidArgumentError('no image to save');
  const withOci = format !== 'docker';
  const withDocker = format !== 'oci';
  const host = normalizePlatform(opts.host ?? hostPlatform());
  const progress = opts.progress ?? silentProgress;
  const resolver = opts.layerResolver ?? variantResolver(store);
  const omit = new Set<string>(opts.omitBlobs ?? []);
  const src = contentSource(store.content);
  const wanted = opts.platforms?.map(normalizePlatform);
  const matcher = wanted?.length ? exactMatcher(wanted) : undefined;

  // Names, sorted and de-duplicated, so argument order does not change the archive.
  const byName = new Map<string, Named>();
  for (const r of refs) {
    const n = resolveName(store, r);
    const prev = byName.get(n.name);
    if (!prev || prev.rec.target.digest === n.rec.target.digest) byName.set(n.name, prev ?? n);
  }
  const named = [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const roots = new Map<string, RootPlan>();
  for (const n of named) {
    const key = n.rec.target.digest;
    let rp = roots.get(key);
    if (!rp) {
      rp = { root: stripDesc(n.rec.target), names: [], walk: undefined as unknown as ImageWalk, manifestMap: new Map(), kept: [], leftOut: [] };
      roots.set(key, rp);
    }
    rp.names.push(n);
  }

  const missing: MissingItem[] = [];
  const problems: string[] = [];
  const warnings: string[] = [];
  const warn = (m: string) => {
    warnings.push(m);
    progress.warn(m);
  };
  const generated = new Map<string, Buffer>();
  const changes: DigestChange[] = [];
  const resolved = new Map<string, Promise<Descriptor | undefined>>();

  for (const rp of roots.values()) {
    const image = rp.names[0].name;
    const rootKind = isIndexType(rp.root.mediaType) ? 'index' : 'manifest';
    if (!store.content.has(rp.root.digest)) {
      missing.push({ image, line: `image ${image}: ${rootKind} ${rp.root.digest} not in the store` });
      continue;
    }
    const walk = await walkImage(src, rp.root, { platforms: matcher, host });
    rp.walk = walk;

    // Selected index entries that are absent from the store.
    for (const a of walk.absent) {
      if (isAttestation(a)) continue; // attestations of absent content travel only when present
      const what = isIndexType(a.mediaType) ? `nested index ${a.digest}` : `${platformLabel(a.platform)} manifest ${a.digest}`;
      if (matcher || opts.allPlatforms) {
        missing.push({ image, line: `image ${image}: ${what} not in the store` });
      } else {
        rp.leftOut.push(a.platform ? formatPlatform(a.platform) : a.digest);
        warn(`image ${image}: ${what} is not in the store; left out of the archive${withOci ? ' (a new index is written)' : ''}`);
      }
    }
    for (const s of walk.skipped) if (s.platform && s.platform.os !== 'unknown') rp.leftOut.push(formatPlatform(s.platform));

    let manifests = walk.manifests;
    const images = manifests.filter((m) => !m.attestation);
    if (wanted?.length) {
      for (const p of wanted) {
        const f = formatPlatform(p);
        if (images.some((m) => m.platform && formatPlatform(m.platform) === f)) continue;
        if (walk.absent.some((a) => a.platform && formatPlatform(a.platform) === f)) continue; // reported as missing
        problems.push(`image ${image} has no platform ${f}`);
      }
    }
    if (!images.length) {
      if (!walk.absent.length || !(matcher || opts.allPlatforms)) {
        problems.push(wanted?.length
          ? `image ${image} has no manifest for ${wanted.map(formatPlatform).join(', ')}`
          : `image ${image}: no platform of it is in the store`);
      }
      continue;
    }
    if (!withOci) {
      // Docker archives hold one manifest per image: the host's, else the first in platform order.
      manifests = [images[0]];
    }

    for (const m of manifests) {
      const mdigest = m.desc.digest;
      const missingHere = walk.missing.filter((x) => x.manifest === mdigest);
      const plat = platformLabel(m.platform);
      if (m.attestation) {
        if (missingHere.length) {
          warn(`image ${image}: attestation manifest ${mdigest} has ${missingHere.length} blob(s) not in the store; left out of the archive`);
          continue;
        }
        rp.manifestMap.set(mdigest, m.desc);
        rp.kept.push({ info: m, finalDesc: m.desc, layers: m.manifest.layers.map(stripDesc), config: stripDesc(m.manifest.config) });
        continue;
      }
      const cfgMissing = missingHere.find((x) => x.role === 'config');
      if (cfgMissing) missing.push({ image, line: `image ${image} (${plat}, manifest ${mdigest}): config ${cfgMissing.desc.digest} not in the store` });
      const diffIds = Array.isArray(m.config?.rootfs?.diff_ids) ? m.config!.rootfs.diff_ids : [];
      const layers: Descriptor[] = [];
      let complete = !cfgMissing;
      for (let i = 0; i < m.manifest.layers.length; i++) {
        const l = m.manifest.layers[i];
        const info = store.content.info(l.digest);
        const present = !!info && info.size === l.size;
        if (info && info.size !== l.size) {
          problems.push(`image ${image} (${plat}): layer ${i + 1} ${l.digest} is ${info.size} bytes in the store but the manifest says ${l.size}`);
        }
        const own = layerCompression(l.mediaType);
        if (!present && opts.skipNonDistributable && isNonDistributable(l.mediaType)) {
          omit.add(l.digest);
          warn(`image ${image} (${plat}): non-distributable layer ${i + 1} ${l.digest} is not in the store; left out of the archive (--skip-non-distributable)`);
          layers.push(l);
          continue;
        }
        const keepAsIs =
          (compression === 'keep' && (present || omit.has(l.digest))) ||
          (!isLayerType(l.mediaType) && present) ||
          (compression === own && present);
        if (keepAsIs) {
          layers.push(l);
          continue;
        }
        const key = `${l.digest}|${compression}`;
        let p = resolved.get(key);
        if (!p) {
          p = resolver.resolveLayer({
            image, manifest: mdigest, platform: m.platform, index: i, layer: l, diffId: diffIds[i],
            compression, lease: opts.lease, progress,
          });
          resolved.set(key, p);
        }
        const r = await p;
        if (!r) {
          complete = false;
          const why = present ? `not available as ${compression}` : 'not in the store and cannot be produced';
          missing.push({ image, line: `image ${image} (${plat}, manifest ${mdigest}): layer ${i + 1} ${l.digest} (${l.mediaType}) ${why}` });
          continue;
        }
        const rinfo = store.content.info(r.digest);
        if (!rinfo || rinfo.size !== r.size) {
          complete = false;
          missing.push({ image, line: `image ${image} (${plat}, manifest ${mdigest}): layer ${i + 1} ${l.digest}: the layer resolver gave ${r.digest}, which is not in the store with size ${r.size}` });
          continue;
        }
        const rc = layerCompression(r.mediaType);
        if (compression !== 'keep' && rc !== compression) {
          throw new ImgtoolError('INTERNAL', `layer resolver returned ${r.mediaType} (${r.digest}) for layer ${i + 1} of ${image} when ${compression} was wanted`);
        }
        if (r.digest === l.digest && r.mediaType === l.mediaType) layers.push(l);
        else {
          const d: Descriptor = { mediaType: rc ? replacementMediaType(l.mediaType, rc) : r.mediaType, digest: r.digest, size: r.size };
          if (r.annotations && r.digest !== l.digest) d.annotations = r.annotations;
          else if (l.annotations && r.digest === l.digest) d.annotations = l.annotations;
          if (l.urls && r.digest === l.digest) d.urls = l.urls;
          layers.push(d);
        }
      }
      if (!complete) continue;

      // Rewrite the manifest when any layer changed; zstd forces OCI media types.
      const changedLayers = layers.some((d, i) => !sameDesc(d, m.manifest.layers[i]));
      const manifestType = m.manifest.mediaType ?? m.desc.mediaType;
      // (A stored manifest kept as it is stays byte-identical, whatever its media types.)
      const needsOci = changedLayers && isDockerType(manifestType) && layers.some((d) => layerCompression(d.mediaType) === 'zstd');
      let finalDesc = m.desc;
      let config = stripDesc(m.manifest.config);
      let finalLayers = layers;
      if (changedLayers || needsOci) {
        const doc: Manifest = { ...m.manifest };
        if (needsOci) {
          finalLayers = layers.map((d) => ({ ...d, mediaType: dockerToOci(d.mediaType) }));
          config = { ...config, mediaType: dockerToOci(config.mediaType) };
          doc.mediaType = MediaType.OCI_MANIFEST;
          doc.config = { ...m.manifest.config, mediaType: config.mediaType };
        } else if (doc.mediaType === undefined) {
          doc.mediaType = manifestType;
        }
        doc.layers = finalLayers;
        const buf = jsonBuf(doc);
        finalDesc = { mediaType: doc.mediaType!, digest: sha256(buf), size: buf.length };
        generated.set(finalDesc.digest, buf);
        const reasons: string[] = [];
        if (changedLayers) reasons.push(compression === 'keep' ? 'layers rebuilt or replaced' : `layers as ${compression}`);
        if (needsOci) reasons.push('zstd needs OCI media types');
        // Docker-only archives hold no manifests: only manifest.json's layer paths change.
        if (withOci) changes.push({ image, kind: 'manifest', platform: m.platform ? formatPlatform(m.platform) : undefined, from: mdigest, to: finalDesc.digest, reason: reasons.join('; ') });
      }
      if (format === 'docker') {
        const z = finalLayers.map((d, i) => ({ d, i })).filter((x) => layerCompression(x.d.mediaType) === 'zstd');
        for (const x of z) {
          problems.push(`image ${image} (${plat}): layer ${x.i + 1} ${x.d.digest} is zstd, which Docker archives cannot hold; use --compression gzip or --format oci`);
        }
      }
      rp.manifestMap.set(mdigest, finalDesc);
      rp.kept.push({ info: m, finalDesc, layers: finalLayers, config });
    }
  }

  if (missing.length) {
    const first = missing[0].line;
    throw new MissingContentError(
      missing.length === 1
        ? `cannot save: ${first}`
        : `cannot save: ${missing.length} blobs are missing and cannot be produced (first: ${first})`,
      missing.map((m) => m.line),
    );
  }
  if (problems.length) {
    throw new ImgtoolError(problems.some((p) => /has no (platform|manifest)|no platform of it/.test(p)) ? 'NOT_FOUND' : 'PRECONDITION',
      problems.length === 1 ? problems[0] : `cannot save: ${problems.length} problems (first: ${problems[0]})`, problems.length > 1 ? problems : []);
  }

  // Indexes: unchanged when complete and untouched, else a new one with only what is kept.
  const blobMap = new Map<string, PlannedBlob>();
  const addBlob = (d: Descriptor, data?: Buffer) => {
    if (blobMap.has(d.digest)) return;
    blobMap.set(d.digest, { digest: d.digest, size: d.size, mediaType: d.mediaType, data, omitted: omit.has(d.digest) });
  };
  const pinnedErrors: string[] = [];
  for (const rp of roots.values()) {
    const image = rp.names[0].name;
    if (!rp.kept.length) continue;
    if (withOci) {
      if (isIndexType(rp.root.mediaType)) {
        const rebuilt = rebuildIndex(rp, rp.root, 0, generated, changes, image);
        if (!rebuilt) throw new NotFoundError(`image ${image}: nothing of it is left to save`);
        rp.finalRoot = rebuilt;
      } else {
        rp.finalRoot = rp.manifestMap.get(rp.root.digest) ?? rp.root;
      }
      if (rp.finalRoot.digest !== rp.root.digest) {
        for (const n of rp.names) {
          if (n.pinned) {
            pinnedErrors.push(`image ${n.name} is named by digest, but saving it would change its ${isIndexType(rp.root.mediaType) ? 'index' : 'manifest'} (${rp.root.digest} -> ${rp.finalRoot.digest}); save it by a tag name instead`);
          }
        }
      }
      collectTree(rp, rp.finalRoot, generated, addBlob, store);
    } else {
      const k = rp.kept.find((x) => !x.info.attestation)!;
      addBlob(k.config);
      for (const l of k.layers) addBlob(l);
    }
  }
  if (pinnedErrors.length) {
    throw new ImgtoolError('PRECONDITION', pinnedErrors[0], pinnedErrors.length > 1 ? pinnedErrors : []);
  }

  // Sizes of stored blobs are what the tar headers declare: they must match the descriptors.
  for (const b of blobMap.values()) {
    if (b.data || b.omitted) continue;
    const info = store.content.info(b.digest);
    if (!info) throw new MissingContentError(`cannot save: ${b.mediaType} ${b.digest} not in the store`);
    if (info.size !== b.size) {
      throw new ImgtoolError('SIZE_MISMATCH', `${b.mediaType} ${b.digest}: descriptor says ${b.size} bytes, the store has ${info.size}`);
    }
  }

  // Metadata documents.
  const files: Array<{ name: string; data: Buffer }> = [];
  const images: SavedImage[] = [];
  const dockerEntries: Array<{ Config: string; RepoTags: string[]; Layers: string[] }> = [];
  const dockerByConfig = new Map<string, { Config: string; RepoTags: string[]; Layers: string[] }>();
  const repositories = new Map<string, Map<string, string>>();
  const indexEntries: Descriptor[] = [];
  for (const n of named) {
    const rp = roots.get(n.rec.target.digest)!;
    const main = rp.kept.find((k) => !k.info.attestation)!;
    const final = withOci ? rp.finalRoot! : main.finalDesc;
    images.push({
      name: n.name,
      requested: n.requested,
      digest: final.digest,
      mediaType: final.mediaType,
      size: final.size,
      storeDigest: rp.root.digest,
      platforms: rp.kept.filter((k) => !k.info.attestation && k.info.platform).map((k) => formatPlatform(k.info.platform!)),
      leftOut: [...new Set(rp.leftOut)].sort(),
      dockerManifest: withDocker ? main.finalDesc.digest : undefined,
    });
    if (withOci) {
      indexEntries.push({
        mediaType: final.mediaType, digest: final.digest, size: final.size,
        annotations: { [Annotation.CONTAINERD_NAME]: n.name, [Annotation.REF_NAME]: n.name },
      });
    }
    if (withDocker) {
      const cfg = main.config.digest;
      let e = dockerByConfig.get(cfg);
      if (!e) {
        e = { Config: blobPath(cfg), RepoTags: [], Layers: main.layers.map((l) => blobPath(l.digest)) };
        dockerByConfig.set(cfg, e);
        dockerEntries.push(e);
      }
      let ref;
      try {
        ref = parseReference(n.name);
      } catch {
        ref = undefined;
      }
      if (ref && ref.tag && !ref.digest) {
        const tagged = familiarName(n.name);
        if (!e.RepoTags.includes(tagged)) e.RepoTags.push(tagged);
        const diffIds = main.info.config?.rootfs?.diff_ids ?? [];
        if (diffIds.length) {
          const repo = familiarRepository(n.name);
          if (!repositories.has(repo)) repositories.set(repo, new Map());
          repositories.get(repo)!.set(ref.tag, digestHex(diffIds[diffIds.length - 1]));
        }
      }
    }
  }
  if (withOci) {
    files.push({ name: 'oci-layout', data: jsonBuf({ imageLayoutVersion: '1.0.0' }) });
    files.push({ name: 'index.json', data: jsonBuf({ schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: indexEntries }) });
  }
  if (withDocker) {
    files.push({ name: 'manifest.json', data: jsonBuf(dockerEntries) });
    if (repositories.size) {
      const repos: Record<string, Record<string, string>> = {};
      for (const r of [...repositories.keys()].sort()) {
        const tags: Record<string, string> = {};
        const m = repositories.get(r)!;
        for (const t of [...m.keys()].sort()) tags[t] = m.get(t)!;
        repos[r] = tags;
      }
      files.push({ name: 'repositories', data: jsonBuf(repos) });
    }
  }

  // Blob order: small documents first (a streaming reader learns the structure before
  // any layer arrives), then layers; each group sorted by digest.
  const all = [...blobMap.values()];
  const isDoc = (b: PlannedBlob) => !isLayerType(b.mediaType);
  const byDigest = (a: PlannedBlob, b: PlannedBlob) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0);
  const blobs = [...all.filter(isDoc).sort(byDigest), ...all.filter((b) => !isDoc(b)).sort(byDigest)];
  return { format, compression, images, changes, blobs, files, warnings };
}

/** New descriptor for an index (or the original when nothing in it changes). */
function rebuildIndex(rp: RootPlan, desc: Descriptor, depth: number, generated: Map<string, Buffer>, changes: DigestChange[], image: string): Descriptor | undefined {
  const entry = rp.walk.indexes.find((i) => i.desc.digest === desc.digest);
  if (!entry) return undefined;
  const idx = entry.index;
  const present = new Set(rp.walk.blobs.map((b) => b.digest));
  const out: Descriptor[] = [];
  for (const e of idx.manifests) {
    if (isIndexType(e.mediaType)) {
      const r = depth < 8 ? rebuildIndex(rp, e, depth + 1, generated, changes, image) : undefined;
      if (r) out.push({ ...e, mediaType: r.mediaType, digest: r.digest, size: r.size });
      continue;
    }
    if (isManifestType(e.mediaType)) {
      const f = rp.manifestMap.get(e.digest);
      if (!f) continue;
      const ne: Descriptor = { ...e, mediaType: f.mediaType, digest: f.digest, size: f.size };
      const ref = e.annotations?.[Annotation.DOCKER_REFERENCE_DIGEST];
      if (ref) {
        const to = rp.manifestMap.get(ref);
        if (!to) continue; // attestation of a manifest that is not in the archive
        if (to.digest !== ref) ne.annotations = { ...e.annotations, [Annotation.DOCKER_REFERENCE_DIGEST]: to.digest };
      }
      out.push(ne);
      continue;
    }
    // Artifacts / unknown types travel as opaque blobs when present.
    if (present.has(e.digest)) out.push(e);
  }
  if (!out.some((e) => isManifestType(e.mediaType) || isIndexType(e.mediaType))) return undefined;
  const same = out.length === idx.manifests.length && out.every((e, i) => sameDesc(e, idx.manifests[i]) && JSON.stringify(e.annotations ?? null) === JSON.stringify(idx.manifests[i].annotations ?? null));
  if (same) return stripDesc(entry.desc);
  const doc: Index = { ...idx, manifests: out };
  let mt = idx.mediaType ?? desc.mediaType;
  if (mt === MediaType.DOCKER_MANIFEST_LIST && out.some((e) => e.mediaType === MediaType.OCI_MANIFEST || e.mediaType === MediaType.OCI_INDEX)) mt = MediaType.OCI_INDEX;
  doc.mediaType = mt;
  const buf = jsonBuf(doc);
  const nd: Descriptor = { mediaType: mt, digest: sha256(buf), size: buf.length };
  generated.set(nd.digest, buf);
  const dropped = idx.manifests.length - out.length;
  const rewritten = out.filter((e) => !idx.manifests.some((o) => o.digest === e.digest)).length;
  const reasons: string[] = [];
  if (dropped) reasons.push(`${dropped} of ${idx.manifests.length} entries left out`);
  if (rewritten) reasons.push(`${rewritten} manifest(s) rewritten`);
  changes.push({ image, kind: 'index', from: desc.digest, to: nd.digest, reason: reasons.join('; ') || 'entries changed' });
  return nd;
}

/** Every blob of the final tree under `desc`. */
function collectTree(rp: RootPlan, desc: Descriptor, generated: Map<string, Buffer>, add: (d: Descriptor, data?: Buffer) => void, store: Store): void {
  const data = generated.get(desc.digest);
  add(stripDesc(desc), data);
  if (isIndexType(desc.mediaType)) {
    const doc: Index = data ? JSON.parse(data.toString('utf8')) : rp.walk.indexes.find((i) => i.desc.digest === desc.digest)!.index;
    for (const e of doc.manifests) {
      if (isIndexType(e.mediaType) || isManifestType(e.mediaType)) collectTree(rp, e, generated, add, store);
      else add(stripDesc(e));
    }
    return;
  }
  const k = rp.kept.find((x) => x.finalDesc.digest === desc.digest);
  if (!k) throw new ImgtoolError('INTERNAL', `planned manifest ${desc.digest} not found in the plan`);
  add(k.config);
  for (const l of k.layers) add(stripDesc(l));
  void store;
}

/**
 * Save images to one tar. Plans everything first (nothing is created when the plan
 * fails), then writes deterministic entries, re-verifying each blob while copying.
 */
export async function saveImages(store: Store, refs: string[], opts: SaveOptions): Promise<SaveResult> {
  if (opts.output === undefined || opts.output === '') throw new InvalidArgumentError('no output given (a file path, - for stdout, or a stream)');
  if (typeof opts.output === 'string' && opts.output !== '-') FileOutput.checkTarget(opts.output);
  const progress = opts.progress ?? silentProgress;
  const plan = await planSave(store, refs, opts);

  // Hold every stored blob for the lease and check it is still there, under the write
  // lock GC takes, so nothing planned can vanish before it is copied.
  const fromStore = plan.blobs.filter((b) => !b.data && !b.omitted);
  store.meta.write(() => {
    const gone = fromStore.filter((b) => !store.content.has(b.digest));
    if (gone.length) {
      throw new MissingContentError(`cannot save: ${gone.length} blob(s) disappeared from the store while planning (first: ${gone[0].digest})`, gone.map((b) => `${b.mediaType} ${b.digest}`));
    }
    if (opts.lease) for (const b of fromStore) opts.lease.attach('content', b.digest);
  });

  const out = archiveOutput(opts.output);
  const verify = opts.verify !== false;
  const toWrite = plan.blobs.filter((b) => !b.omitted);
  const total = toWrite.reduce((s, b) => s + b.size, 0);
  const overall = progress.task(`saving ${plan.images.length} image${plan.images.length === 1 ? '' : 's'}`, total);
  let done = 0;
  await out.open();
  const tw = new TarWriter(out);
  try {
    for (const f of plan.files) await tw.addBuffer(f.name, f.data, FILE_MODE);
    if (toWrite.length) {
      await tw.addDir('blobs/');
      await tw.addDir(BLOB_DIR);
    }
    for (const b of toWrite) {
      const name = blobPath(b.digest);
      if (b.data) {
        await tw.addBuffer(name, b.data, BLOB_MODE);
        done += b.size;
        overall.update(done);
        continue;
      }
      const big = b.size >= 1024 * 1024;
      const t = big ? progress.task(`${isLayerType(b.mediaType) ? 'layer' : 'blob'} ${shortDigest(b.digest).slice(7)}`, b.size) : undefined;
      const base = done;
      const what = `${b.mediaType} ${b.digest}`;
      const onBytes = (n: number) => {
        t?.update(n);
        overall.update(base + n);
      };
      // Files: reused buffers + positional writes; streams: the store's (verifying) read stream.
      await tw.addFile(name, b.size, store.content.blobPath(b.digest), BLOB_MODE, { digest: verify ? b.digest : undefined, what, onBytes },
        () => store.content.openRead(b.digest, { verify, what }));
      t?.finish();
      done += b.size;
    }
    await tw.finish();
    await out.commit();
  } catch (e) {
    tw.destroy(e);
    await out.abort(e);
    throw e;
  } finally {
    overall.finish();
  }
  return {
    output: typeof opts.output === 'string' ? opts.output : out.label,
    format: plan.format,
    compression: plan.compression,
    images: plan.images,
    changes: plan.changes,
    blobs: toWrite.length,
    omitted: plan.blobs.filter((b) => b.omitted).map((b) => b.digest),
    bytes: tw.bytes,
    warnings: plan.warnings,
  };
}
