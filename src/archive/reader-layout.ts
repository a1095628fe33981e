/**
 * What an archive holds, worked out after the streaming pass: an OCI layout (`oci-layout`
 * + `index.json`, also Docker 25+ archives which add `manifest.json`) or a Docker archive
 * (`manifest.json`, old layout with `<id>/layer.tar`). For Docker archives a proper
 * manifest, config descriptor and OCI index are synthesized, as containerd's importer
 * does: layer media types from the sniffed compression (zstd forces an OCI manifest, since
 * Docker schema2 has no zstd type) and the platform from the config.
 */
import { Compression } from '../compression/codecs';
import { Digest, sha256 } from '../digest';
import { InvalidArchiveError, ImgtoolError } from '../errors';
import { MediaType, layerMediaType } from '../images/mediatypes';
import { Annotation, Descriptor, DockerManifestEntry, ImageConfig } from '../images/types';
import { parseDocument, validateConfig, validateDockerManifestJson, validateIndex, validateOciLayout } from '../images/schema';
import { normalizePlatform, Platform } from '../platform';
import { normalizeReference, parseReference } from '../reference';
import { MAX_JSON_SIZE } from '../content';
import { ArchiveFile, ArchiveScan } from './reader';

export type ArchiveFormat = 'oci' | 'docker' | 'docker+oci';

/** One image the archive lists: a top-level index.json entry or a manifest.json entry. */
export interface ArchiveImage {
  /** Descriptor as listed (annotations and platform included). */
  desc: Descriptor;
  /** Docker RepoTags for this image (from manifest.json), not yet normalised. */
  repoTags: string[];
}

export interface ResolvedArchive {
  format: ArchiveFormat;
  /** The archive's index: `index.json`, or the one synthesized for a Docker archive. */
  index: { desc: Descriptor; bytes: Buffer; synthesized: boolean };
  images: ArchiveImage[];
  /** Documents made here (Docker manifests and index), by digest. */
  synthesized: Map<Digest, { mediaType: string; bytes: Buffer }>;
  /** Docker manifest.json RepoTags by config digest (Docker 25+ archives name images there too). */
  repoTagsByConfig: Map<Digest, string[]>;
  /** Problems that make the archive unusable as a whole or for one image (listed by verify). */
  problems: string[];
  warnings: string[];
}

/** Reads a JSON-able blob of the archive (memory first, then wherever the caller keeps content). */
export type ReadBlob = (file: ArchiveFile) => Promise<Buffer>;

/** Work out the archive's format, images and (for Docker archives) synthesized documents. */
export async function resolveArchive(scan: ArchiveScan, readBlob: ReadBlob): Promise<ResolvedArchive> {
  const layoutDoc = scan.docs.get('oci-layout');
  const indexDoc = scan.docs.get('index.json');
  const manifestDoc = scan.docs.get('manifest.json');
  const out: ResolvedArchive = {
    format: 'oci',
    index: undefined as unknown as ResolvedArchive['index'],
    images: [],
    synthesized: new Map(),
    repoTagsByConfig: new Map(),
    problems: [],
    warnings: [],
  };

  if (layoutDoc) {
    const layout = validateOciLayout(parseDocument(layoutDoc, 'oci-layout'), 'oci-layout');
    if (layout.imageLayoutVersion !== '1.0.0') {
      throw new InvalidArchiveError(`unsupported OCI layout version ${JSON.stringify(layout.imageLayoutVersion)} in oci-layout (expected "1.0.0")`);
    }
    if (!indexDoc) throw new InvalidArchiveError('OCI layout without index.json');
  }
  if (indexDoc && (layoutDoc || !manifestDoc)) {
    if (!layoutDoc) out.warnings.push('archive has index.json but no oci-layout file; reading it as an OCI layout');
    const index = validateIndex(parseDocument(indexDoc, 'index.json'), 'index.json');
    out.format = manifestDoc ? 'docker+oci' : 'oci';
    out.index = {
      desc: { mediaType: index.mediaType ?? MediaType.OCI_INDEX, digest: sha256(indexDoc), size: indexDoc.length },
      bytes: indexDoc,
      synthesized: false,
    };
    for (const m of index.manifests) out.images.push({ desc: m, repoTags: [] });
    if (manifestDoc) {
      // Docker 25+: names may also be in manifest.json's RepoTags (matched by config).
      try {
        for (const e of parseDockerManifest(manifestDoc)) {
          const cfg = scan.files.get(cleanRef(e.Config));
          if (cfg && e.RepoTags?.length) {
            const prev = out.repoTagsByConfig.get(cfg.digest) ?? [];
            out.repoTagsByConfig.set(cfg.digest, [...prev, ...e.RepoTags]);
          }
        }
      } catch (e) {
        out.warnings.push(`manifest.json ignored (index.json is used): ${(e as Error).message}`);
      }
    }
    return out;
  }
  if (!manifestDoc) {
    throw new InvalidArchiveError(`${scan.label} is not an image archive: it has neither index.json (OCI) nor manifest.json (Docker)`);
  }
  out.format = 'docker';
  await synthesizeDocker(scan, parseDockerManifest(manifestDoc), readBlob, out);
  return out;
}

export function parseDockerManifest(bytes: Buffer): DockerManifestEntry[] {
  return validateDockerManifestJson(parseDocument(bytes, 'manifest.json'), 'manifest.json');
}

/** Paths in manifest.json are relative to the archive root. */
export function cleanRef(p: string): string {
  return p.split('/').filter((x) => x !== '' && x !== '.').join('/');
}

/** containerd's ociReferenceName: the part after the repository (tag, or tag@digest). */
function ociRefName(normalized: string): string {
  const ref = parseReference(normalized);
  if (ref.tag && ref.digest) return `${ref.tag}@${ref.digest}`;
  return ref.tag ?? ref.digest ?? normalized;
}

async function synthesizeDocker(scan: ArchiveScan, entries: DockerManifestEntry[], readBlob: ReadBlob, out: ResolvedArchive): Promise<void> {
  const indexEntries: Descriptor[] = [];
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    const label = e.RepoTags?.length ? e.RepoTags.join(', ') : `manifest.json entry ${i}`;
    const problems: string[] = [];
    const find = (p: string, role: string): ArchiveFile | undefined => {
      const f = scan.files.get(cleanRef(p));
      if (f) return f;
      const dangling = scan.danglingLinks.get(cleanRef(p));
      problems.push(
        dangling !== undefined
          ? `${label}: ${role} ${JSON.stringify(p)} named in manifest.json is a link to ${JSON.stringify(dangling)}, which is not in the archive`
          : `${label}: ${role} ${JSON.stringify(p)} named in manifest.json is not in the archive`,
      );
      return undefined;
    };
    const cfgFile = find(e.Config, 'config');
    const layerFiles = e.Layers.map((l, j) => find(l, `layer ${j + 1}/${e.Layers.length}`));
    if (problems.length) {
      out.problems.push(...problems);
      continue;
    }
    let config: ImageConfig;
    try {
      if (cfgFile!.size > MAX_JSON_SIZE) throw new InvalidArchiveError(`config ${JSON.stringify(e.Config)} is ${cfgFile!.size} bytes, over the ${MAX_JSON_SIZE}-byte limit`);
      const what = `${label}: config ${JSON.stringify(e.Config)}`;
      config = validateConfig(parseDocument(await readBlob(cfgFile!), what), what);
    } catch (err) {
      if (!(err instanceof ImgtoolError)) throw err;
      out.problems.push(err.message);
      continue;
    }
    const comps: Compression[] = layerFiles.map((f) => f!.compression);
    const oci = comps.includes('zstd');
    const manifest = {
      schemaVersion: 2,
      mediaType: oci ? MediaType.OCI_MANIFEST : MediaType.DOCKER_MANIFEST,
      config: { mediaType: oci ? MediaType.OCI_CONFIG : MediaType.DOCKER_CONFIG, digest: cfgFile!.digest, size: cfgFile!.size },
      layers: layerFiles.map((f, j) => ({ mediaType: layerMediaType(comps[j], oci), digest: f!.digest, size: f!.size })),
    };
    const bytes = Buffer.from(JSON.stringify(manifest), 'utf8');
    const desc: Descriptor = { mediaType: manifest.mediaType, digest: sha256(bytes), size: bytes.length };
    out.synthesized.set(desc.digest, { mediaType: desc.mediaType, bytes });
    if (config.os && config.architecture) {
      const p: Platform = normalizePlatform({ os: config.os, architecture: config.architecture, variant: config.variant });
      desc.platform = { architecture: p.architecture, os: p.os, ...(p.variant ? { variant: p.variant } : {}) };
    }
    const tags = e.RepoTags ?? [];
    out.images.push({ desc, repoTags: tags });
    if (!tags.length) {
      indexEntries.push(desc);
      continue;
    }
    for (const t of tags) {
      let n: string;
      try {
        n = normalizeReference(t);
      } catch {
        out.warnings.push(`${label}: ignoring invalid RepoTag ${JSON.stringify(t)}`);
        continue;
      }
      indexEntries.push({ ...desc, annotations: { [Annotation.CONTAINERD_NAME]: n, [Annotation.REF_NAME]: ociRefName(n) } });
    }
    if (!indexEntries.some((d) => d.digest === desc.digest)) indexEntries.push(desc);
  }
  const index = { schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: indexEntries };
  const bytes = Buffer.from(JSON.stringify(index), 'utf8');
  const desc: Descriptor = { mediaType: MediaType.OCI_INDEX, digest: sha256(bytes), size: bytes.length };
  out.synthesized.set(desc.digest, { mediaType: desc.mediaType, bytes });
  out.index = { desc, bytes, synthesized: true };
}
