/**
 * `save`, the archive's metadata files, from the finished plan: `oci-layout` and `index.json`
 * (one entry per name, `io.containerd.image.name` and `org.opencontainers.image.ref.name` = the
 * full name) for OCI archives; Docker `manifest.json` (one entry per image config, listing every
 * RepoTag) and `repositories` (tag -> top layer diffID) for Docker archives. Also the
 * `SavedImage` summary per name. Everything is sorted, so the bytes depend on the content only.
 */
import { Descriptor, Annotation } from '../images/types';
import { MediaType } from '../images/mediatypes';
import { formatPlatform } from '../platform';
import { parseReference, familiarName, familiarRepository } from '../reference';
import { digestHex } from '../digest';
import type { SavedImage } from './export';
import type { Named } from './export-names';
import type { RootPlan } from './export-plan';
import { jsonBuf } from './export-rewrite';

export const BLOB_DIR = 'blobs/sha256/';
export const blobPath = (digest: string) => BLOB_DIR + digestHex(digest);

export interface ArchiveMetadata {
  images: SavedImage[];
  files: Array<{ name: string; data: Buffer }>;
}

type DockerEntry = { Config: string; RepoTags: string[]; Layers: string[] };

/**
 * Metadata files and summaries for `named` (sorted) over their planned roots. `indexAnnotations`
 * go on index.json itself (OCI archives only).
 */
export function archiveMetadata(
  named: Named[], roots: Map<string, RootPlan>, opts: { withOci: boolean; withDocker: boolean; indexAnnotations?: Record<string, string> },
): ArchiveMetadata {
  const { withOci, withDocker } = opts;
  const files: Array<{ name: string; data: Buffer }> = [];
  const images: SavedImage[] = [];
  const dockerEntries: DockerEntry[] = [];
  const dockerByConfig = new Map<string, DockerEntry>();
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
    const index: Record<string, unknown> = { schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: indexEntries };
    if (opts.indexAnnotations && Object.keys(opts.indexAnnotations).length) index.annotations = opts.indexAnnotations;
    files.push({ name: 'index.json', data: jsonBuf(index) });
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
  return { images, files };
}
