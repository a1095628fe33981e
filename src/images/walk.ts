import { Descriptor, Index, Manifest, ImageConfig, Annotation } from './types';
import { isIndexType, isManifestType, isLayerType, isConfigType } from './mediatypes';
import { Platform, PlatformMatcher, isUnknownPlatform, normalizePlatform, comparePlatforms, formatPlatform } from '../platform';
import { InvalidArchiveError } from '../errors';
import { MAX_INDEX_NESTING, validateConfig, validateIndex, validateManifest } from './schema';

/** Where documents come from: the store, an archive being verified, a registry. */
export interface BlobSource {
  /** True when the blob is available. */
  has(desc: Descriptor): boolean | Promise<boolean>;
  /**
   * Read and parse a JSON document (index, manifest, config), verifying its digest; `what`
   * names it in errors. Parse with `parseDocument` (bounded depth); `walkImage` validates the
   * shape (src/images/schema.ts) before using anything in it.
   */
  readJSON<T = unknown>(desc: Descriptor, what?: string): Promise<T>;
}

export interface ImageManifestInfo {
  /** Descriptor of the manifest (from its index, or the image target). */
  desc: Descriptor;
  manifest: Manifest;
  config: ImageConfig | undefined;
  /** Platform from the index entry, else from the config. */
  platform: Platform | undefined;
  /** True for attestation manifests (`unknown/unknown`, vnd.docker.reference.type). */
  attestation: boolean;
  /** For attestations: the manifest digest they describe. */
  describes?: string;
}

export interface ImageWalk {
  /** Every index visited (root first, nested after). */
  indexes: Array<{ desc: Descriptor; index: Index }>;
  /** Selected manifests, platform order (attestations after the manifest they describe). */
  manifests: ImageManifestInfo[];
  /** Index entries not selected by the platform filter. */
  skipped: Descriptor[];
  /** Index entries that are selected but absent (the index is partial). */
  absent: Descriptor[];
  /** Every blob the selected closure needs, de-duplicated, in walk order. */
  blobs: Descriptor[];
  /** Blobs needed but not available: config and layers of present manifests. */
  missing: Array<{ desc: Descriptor; manifest: string; role: 'config' | 'layer'; index?: number }>;
  /** Descriptors with media types not understood (kept as opaque blobs). */
  unknown: Descriptor[];
}

export interface WalkOptions {
  platforms?: PlatformMatcher;
  /** Descend into index entries of unknown media type? (they are kept as blobs only) */
  host?: Platform;
}

export function isAttestation(d: Descriptor): boolean {
  return d.annotations?.[Annotation.DOCKER_REFERENCE_TYPE] === 'attestation-manifest' || isUnknownPlatform(d.platform);
}

/**
 * Walk an image's closure from its root descriptor. Absent index entries are reported,
 * not thrown: the caller decides whether partial is acceptable. Missing config/layers of
 * a present manifest are reported in `missing`.
 */
export async function walkImage(src: BlobSource, root: Descriptor, opts: WalkOptions = {}): Promise<ImageWalk> {
  const out: ImageWalk = { indexes: [], manifests: [], skipped: [], absent: [], blobs: [], missing: [], unknown: [] };
  const seen = new Set<string>();
  const addBlob = (d: Descriptor) => {
    if (seen.has(d.digest)) return;
    seen.add(d.digest);
    out.blobs.push(stripDesc(d));
  };
  const attestations: Descriptor[] = [];

  const visitManifest = async (desc: Descriptor, platformHint: Platform | undefined, attestation: boolean) => {
    const what = `manifest ${desc.digest}`;
    const manifest: Manifest = validateManifest(await src.readJSON<unknown>(desc, what), what);
    addBlob(desc);
    let config: ImageConfig | undefined;
    const cfgPresent = await src.has(manifest.config);
    if (cfgPresent) {
      addBlob(manifest.config);
      if (isConfigType(manifest.config.mediaType)) {
        const cwhat = `config ${manifest.config.digest}`;
        // An attestation's config need not describe a root filesystem.
        config = validateConfig(await src.readJSON<unknown>(manifest.config, cwhat), cwhat, { image: !attestation });
      }
    } else {
      out.missing.push({ desc: manifest.config, manifest: desc.digest, role: 'config' });
    }
    if (!isConfigType(manifest.config.mediaType) && !attestation) out.unknown.push(manifest.config);
    for (let i = 0; i < manifest.layers.length; i++) {
      const l = manifest.layers[i];
      if (!isLayerType(l.mediaType) && !attestation) out.unknown.push(l);
      if (await src.has(l)) addBlob(l);
      else out.missing.push({ desc: l, manifest: desc.digest, role: 'layer', index: i });
    }
    let platform = platformHint && !isUnknownPlatform(platformHint) ? normalizePlatform(platformHint) : undefined;
    if (!platform && config && config.os && config.architecture && !attestation) {
      platform = normalizePlatform({ os: config.os, architecture: config.architecture, variant: config.variant });
    }
    out.manifests.push({
      desc: stripDesc(desc), manifest, config, platform, attestation,
      describes: attestation ? desc.annotations?.[Annotation.DOCKER_REFERENCE_DIGEST] : undefined,
    });
  };

  /** `depth`: how many indexes lead here, this one included (the root is 1). */
  const visitIndex = async (desc: Descriptor, depth: number) => {
    const what = `index ${desc.digest}`;
    if (depth > MAX_INDEX_NESTING) throw new InvalidArchiveError(`${what}: indexes nested more than ${MAX_INDEX_NESTING} deep (the limit)`);
    const index: Index = validateIndex(await src.readJSON<unknown>(desc, what), what);
    addBlob(desc);
    out.indexes.push({ desc: stripDesc(desc), index });
    for (const m of index.manifests) {
      if (isIndexType(m.mediaType)) {
        if (await src.has(m)) await visitIndex(m, depth + 1);
        else out.absent.push(m);
        continue;
      }
      if (!isManifestType(m.mediaType)) {
        // Artifacts and unknown types travel as opaque blobs when present.
        out.unknown.push(m);
        if (await src.has(m)) addBlob(m);
        continue;
      }
      if (isAttestation(m)) {
        attestations.push(m);
        continue;
      }
      if (opts.platforms && m.platform && !opts.platforms.matches(m.platform)) {
        out.skipped.push(m);
        continue;
      }
      if (!(await src.has(m))) {
        out.absent.push(m);
        continue;
      }
      await visitManifest(m, m.platform, false);
    }
  };

  if (isIndexType(root.mediaType)) await visitIndex(root, 1);
  else if (isManifestType(root.mediaType)) await visitManifest(root, root.platform, false);
  else throw new InvalidArchiveError(`unsupported image target media type ${root.mediaType} (${root.digest})`);

  // Platform filter for manifests without an index platform (decided by config).
  if (opts.platforms) {
    out.manifests = out.manifests.filter((m) => !m.platform || opts.platforms!.matches(m.platform));
  }
  // Attestations travel with the manifest they describe.
  const selected = new Set(out.manifests.map((m) => m.desc.digest));
  for (const a of attestations) {
    const target = a.annotations?.[Annotation.DOCKER_REFERENCE_DIGEST];
    if (target && !selected.has(target)) {
      out.skipped.push(a);
      continue;
    }
    if (!(await src.has(a))) {
      out.absent.push(a);
      continue;
    }
    await visitManifest(a, a.platform, true);
  }
  out.manifests = orderManifests(out.manifests, opts.host);
  // Re-derive blobs for the final selection (the platform filter may have dropped some).
  if (opts.platforms) {
    const keep = new Set<string>();
    for (const i of out.indexes) keep.add(i.desc.digest);
    for (const m of out.manifests) {
      keep.add(m.desc.digest);
      keep.add(m.manifest.config.digest);
      for (const l of m.manifest.layers) keep.add(l.digest);
    }
    for (const u of out.unknown) keep.add(u.digest);
    out.blobs = out.blobs.filter((b) => keep.has(b.digest));
    out.missing = out.missing.filter((x) => selectedManifest(out, x.manifest));
  }
  return out;
}

function selectedManifest(w: ImageWalk, digest: string): boolean {
  return w.manifests.some((m) => m.desc.digest === digest);
}

/** Platform order; each attestation right after the manifest it describes, unattached ones last. */
function orderManifests(ms: ImageManifestInfo[], host?: Platform): ImageManifestInfo[] {
  const images = ms.filter((m) => !m.attestation);
  images.sort((a, b) => (a.platform && b.platform ? comparePlatforms(a.platform, b.platform, host) : 0));
  const att = ms.filter((m) => m.attestation);
  const out: ImageManifestInfo[] = [];
  for (const m of images) {
    out.push(m);
    for (const a of att) if (a.describes === m.desc.digest) out.push(a);
  }
  for (const a of att) if (!out.includes(a)) out.push(a);
  return out;
}

/** Descriptor fields that identify a blob (drop platform/annotations for blob lists). */
export function stripDesc(d: Descriptor): Descriptor {
  return { mediaType: d.mediaType, digest: d.digest, size: d.size };
}

export function platformsOf(w: ImageWalk): string[] {
  return w.manifests.filter((m) => !m.attestation && m.platform).map((m) => formatPlatform(m.platform!));
}
