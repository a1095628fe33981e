/**
 * `save`, rewriting documents: a manifest whose layers changed (rebuilt, re-compressed, or
 * needing OCI media types for zstd) gets new bytes and a new digest; an index keeps its
 * stored bytes when every entry it lists is kept unchanged, else gets a new one listing only
 * what is kept (attestations follow the manifest they describe). Every change is recorded as
 * a DigestChange (old -> new) for the caller to print. Generated documents are kept in
 * memory (`generated`) and written from there.
 */
import { Descriptor, Index, Manifest, Annotation } from '../images/types';
import { MediaType, isIndexType, isManifestType, isDockerType, layerCompression } from '../images/mediatypes';
import { ImageManifestInfo, stripDesc } from '../images/walk';
import { formatPlatform } from '../platform';
import { sha256 } from '../digest';
import { ImgtoolError } from '../errors';
import type { DigestChange, SaveCompression } from './export';
import type { RootPlan } from './export-plan';

export function sameDesc(a: Descriptor, b: Descriptor): boolean {
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

export const jsonBuf = (v: unknown) => Buffer.from(JSON.stringify(v), 'utf8');

export interface RewrittenManifest {
  finalDesc: Descriptor;
  config: Descriptor;
  layers: Descriptor[];
}

/**
 * The manifest to write for `m` with final `layers`: the stored one when no layer changed
 * (byte-identical, whatever its media types), else a new document (zstd in a Docker
 * manifest forces OCI media types), recorded in `generated` and, for OCI archives, `changes`.
 */
export function rewriteManifest(
  m: ImageManifestInfo, layers: Descriptor[], ctx: { image: string; compression: SaveCompression; withOci: boolean; generated: Map<string, Buffer>; changes: DigestChange[] },
): RewrittenManifest {
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
    ctx.generated.set(finalDesc.digest, buf);
    const reasons: string[] = [];
    if (changedLayers) reasons.push(ctx.compression === 'keep' ? 'layers rebuilt or replaced' : `layers as ${ctx.compression}`);
    if (needsOci) reasons.push('zstd needs OCI media types');
    // Docker-only archives hold no manifests: only manifest.json's layer paths change.
    if (ctx.withOci) ctx.changes.push({ image: ctx.image, kind: 'manifest', platform: m.platform ? formatPlatform(m.platform) : undefined, from: m.desc.digest, to: finalDesc.digest, reason: reasons.join('; ') });
  }
  return { finalDesc, config, layers: finalLayers };
}

/** New descriptor for an index (or the original when nothing in it changes). */
export function rebuildIndex(rp: RootPlan, desc: Descriptor, depth: number, generated: Map<string, Buffer>, changes: DigestChange[], image: string): Descriptor | undefined {
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
export function collectTree(rp: RootPlan, desc: Descriptor, generated: Map<string, Buffer>, add: (d: Descriptor, data?: Buffer) => void): void {
  const data = generated.get(desc.digest);
  add(stripDesc(desc), data);
  if (isIndexType(desc.mediaType)) {
    const doc: Index = data ? JSON.parse(data.toString('utf8')) : rp.walk.indexes.find((i) => i.desc.digest === desc.digest)!.index;
    for (const e of doc.manifests) {
      if (isIndexType(e.mediaType) || isManifestType(e.mediaType)) collectTree(rp, e, generated, add);
      else add(stripDesc(e));
    }
    return;
  }
  const k = rp.kept.find((x) => x.finalDesc.digest === desc.digest);
  if (!k) throw new ImgtoolError('INTERNAL', `planned manifest ${desc.digest} not found in the plan`);
  add(k.config);
  for (const l of k.layers) add(stripDesc(l));
}
