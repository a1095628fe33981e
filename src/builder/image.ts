import { Digest } from '../digest';
import { InvalidArgumentError } from '../errors';
import { MediaType, layerMediaType } from '../images/mediatypes';
import { Annotation, Descriptor, ImageConfig, Index, Manifest } from '../images/types';
import { Platform, normalizePlatform, parsePlatform } from '../platform';
import { BlobDir } from './blobdir';
import { BuiltLayer, buildLayer } from './layer';

/** Fixed default `created` time of configs built here. */
export const DEFAULT_CREATED = '1970-01-01T00:00:00Z';

export type ManifestFormat = 'oci' | 'docker';

export interface ImageOptions {
  layers: BuiltLayer[];
  /** `linux/amd64`, `linux/arm64/v8`, … or a Platform; default linux/amd64. */
  platform?: string | Platform;
  /** Media types (default 'docker'). zstd layers force 'oci'. */
  format?: ManifestFormat;
  /** Config `created` (ISO string); default DEFAULT_CREATED. */
  created?: string;
  /** Config `config` section (Env, Cmd, Labels, …). */
  config?: Record<string, unknown>;
  /** Extra top-level config fields (author, os.version, …). */
  extraConfig?: Record<string, unknown>;
  /** History; default one entry per layer (created_by from the layer, or `layer <i>`). */
  history?: Array<Record<string, unknown>>;
  /** Manifest annotations (OCI only). */
  annotations?: Record<string, string>;
  /** Annotations on the returned manifest descriptor (e.g. for an index). */
  descriptorAnnotations?: Record<string, string>;
}

/** A single-platform image written to a BlobDir. */
export interface BuiltImage {
  kind: 'image';
  /** Manifest descriptor (with platform). */
  descriptor: Descriptor;
  manifest: Manifest;
  config: Descriptor;
  configJson: ImageConfig;
  layers: BuiltLayer[];
  platform: Platform;
  format: ManifestFormat;
}

/** An index written to a BlobDir. */
export interface BuiltIndex {
  kind: 'index';
  descriptor: Descriptor;
  index: Index;
  images: BuiltImage[];
  /** Attestation manifests, one per image when requested. */
  attestations: BuiltImage[];
  format: ManifestFormat;
}

export type Built = BuiltImage | BuiltIndex;

function toPlatform(p: string | Platform | undefined): Platform {
  if (p === undefined) return { os: 'linux', architecture: 'amd64' };
  if (typeof p === 'string') {
    // keep an explicit arm64 variant (v8) the way registries publish it
    const parts = p.split('/');
    const n = parsePlatform(p);
    if (parts.length === 3 && !n.variant) return { ...n, variant: parts[2] };
    return n;
  }
  return p.os === 'unknown' ? { ...p } : { ...normalizePlatform(p), ...(p.variant ? { variant: p.variant } : {}) };
}

/** Build a config and manifest over `layers` and store both. */
export function buildImage(blobs: BlobDir, opts: ImageOptions): BuiltImage {
  const platform = toPlatform(opts.platform);
  const hasZstd = opts.layers.some((l) => l.compression === 'zstd');
  const format: ManifestFormat = hasZstd ? 'oci' : opts.format ?? 'docker';
  const oci = format === 'oci';
  const created = opts.created ?? DEFAULT_CREATED;
  const history = opts.history ?? opts.layers.map((l, i) => ({ created, created_by: l.createdBy ?? `imgtool-builder layer ${i}` }));
  const configJson: ImageConfig = {
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    ...(opts.extraConfig ?? {}),
    created,
    config: opts.config ?? {},
    rootfs: { type: 'layers', diff_ids: opts.layers.map((l) => l.diffId) },
    history,
  };
  const cfgRef = blobs.putJson(configJson);
  const config: Descriptor = { mediaType: oci ? MediaType.OCI_CONFIG : MediaType.DOCKER_CONFIG, digest: cfgRef.digest, size: cfgRef.size };
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: oci ? MediaType.OCI_MANIFEST : MediaType.DOCKER_MANIFEST,
    config,
    layers: opts.layers.map((l) => ({
      mediaType: l.mediaType ?? layerMediaType(l.compression, oci),
      digest: l.digest,
      size: l.size,
      ...(l.urls ? { urls: l.urls } : {}),
      ...(l.annotations ? { annotations: l.annotations } : {}),
    })),
  };
  if (opts.annotations) {
    if (!oci) throw new InvalidArgumentError('manifest annotations need the OCI format');
    manifest.annotations = opts.annotations;
  }
  const mRef = blobs.putJson(manifest);
  const descriptor: Descriptor = { mediaType: manifest.mediaType!, digest: mRef.digest, size: mRef.size, platform };
  if (opts.descriptorAnnotations) descriptor.annotations = opts.descriptorAnnotations;
  return { kind: 'image', descriptor, manifest, config, configJson, layers: opts.layers, platform, format };
}

/**
 * A BuildKit-style attestation manifest for `subject`: OCI manifest, platform
 * unknown/unknown, one in-toto layer, and on its index descriptor the annotations
 * `vnd.docker.reference.type: attestation-manifest`, `vnd.docker.reference.digest: <subject>`.
 */
export function buildAttestation(blobs: BlobDir, subject: Descriptor, created = DEFAULT_CREATED): BuiltImage {
  const statement = {
    _type: 'https://in-toto.io/Statement/v0.1',
    predicateType: 'https://slsa.dev/provenance/v0.2',
    subject: [{ name: '_', digest: { sha256: subject.digest.slice('sha256:'.length) } }],
    predicate: { builder: { id: 'imgtool-builder' }, buildType: 'imgtool-builder', metadata: { buildFinishedOn: created } },
  };
  const layerRef = blobs.putJson(statement);
  const layer: BuiltLayer = { digest: layerRef.digest, size: layerRef.size, diffId: layerRef.digest, uncompressedSize: layerRef.size, compression: 'none' };
  const platform: Platform = { os: 'unknown', architecture: 'unknown' };
  const configJson: ImageConfig = { architecture: 'unknown', os: 'unknown', config: {}, rootfs: { type: 'layers', diff_ids: [layerRef.digest] } };
  const cfgRef = blobs.putJson(configJson);
  const config: Descriptor = { mediaType: MediaType.OCI_CONFIG, digest: cfgRef.digest, size: cfgRef.size };
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.OCI_MANIFEST,
    config,
    layers: [{ mediaType: MediaType.IN_TOTO, digest: layerRef.digest, size: layerRef.size, annotations: { 'in-toto.io/predicate-type': statement.predicateType } }],
  };
  const mRef = blobs.putJson(manifest);
  const descriptor: Descriptor = {
    mediaType: MediaType.OCI_MANIFEST,
    digest: mRef.digest,
    size: mRef.size,
    annotations: { [Annotation.DOCKER_REFERENCE_DIGEST]: subject.digest, [Annotation.DOCKER_REFERENCE_TYPE]: 'attestation-manifest' },
    platform,
  };
  return { kind: 'image', descriptor, manifest, config, configJson, layers: [layer], platform, format: 'oci' };
}

export interface IndexOptions {
  images: BuiltImage[];
  /** 'oci' (default) or 'docker' (manifest list). Attestations force 'oci'. */
  format?: ManifestFormat;
  /** Add one attestation manifest per image (after all images, as BuildKit does). */
  attestations?: boolean;
  annotations?: Record<string, string>;
}

/** Build an index (or Docker manifest list) over `images` and store it. */
export function buildIndex(blobs: BlobDir, opts: IndexOptions): BuiltIndex {
  const format: ManifestFormat = opts.attestations ? 'oci' : opts.format ?? 'oci';
  const attestations = opts.attestations ? opts.images.map((img) => buildAttestation(blobs, img.descriptor)) : [];
  const index: Index = {
    schemaVersion: 2,
    mediaType: format === 'oci' ? MediaType.OCI_INDEX : MediaType.DOCKER_MANIFEST_LIST,
    manifests: [...opts.images, ...attestations].map((i) => i.descriptor),
  };
  if (opts.annotations) {
    if (format !== 'oci') throw new InvalidArgumentError('index annotations need the OCI format');
    index.annotations = opts.annotations;
  }
  const ref = blobs.putJson(index);
  return {
    kind: 'index',
    descriptor: { mediaType: index.mediaType!, digest: ref.digest, size: ref.size },
    index,
    images: opts.images,
    attestations,
    format,
  };
}

/** Convenience: a one-layer-per-spec image. */
export async function buildSimpleImage(
  blobs: BlobDir,
  layers: Array<Parameters<typeof buildLayer>[1]>,
  opts: Omit<ImageOptions, 'layers'> & { layer?: Parameters<typeof buildLayer>[2] } = {},
): Promise<BuiltImage> {
  const built: BuiltLayer[] = [];
  for (const entries of layers) built.push(await buildLayer(blobs, entries, opts.layer));
  return buildImage(blobs, { ...opts, layers: built });
}

/** Digests of every blob reachable from a descriptor stored in `blobs` (root first). */
export function closure(blobs: BlobDir, root: Descriptor): Descriptor[] {
  const out: Descriptor[] = [];
  const seen = new Set<Digest>();
  const visit = (d: Descriptor): void => {
    if (seen.has(d.digest)) return;
    seen.add(d.digest);
    out.push(d);
    if (d.mediaType === MediaType.OCI_INDEX || d.mediaType === MediaType.DOCKER_MANIFEST_LIST) {
      for (const m of blobs.readJson<Index>(d.digest).manifests) visit(m);
    } else if (d.mediaType === MediaType.OCI_MANIFEST || d.mediaType === MediaType.DOCKER_MANIFEST) {
      const m = blobs.readJson<Manifest>(d.digest);
      visit(m.config);
      for (const l of m.layers) visit(l);
    }
  };
  visit(root);
  return out;
}
