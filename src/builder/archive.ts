import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes as rnd, createHash } from 'node:crypto';
import { Readable, Transform, TransformCallback, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Compression, compressStream, decompressStream } from '../compression/codecs';
import { Digest, DigestStream, digestHex } from '../digest';
import { DigestMismatchError, InvalidArgumentError } from '../errors';
import { MediaType, isIndexType, isManifestType, layerCompression } from '../images/mediatypes';
import { Annotation, Descriptor, ImageConfig, Index, Manifest } from '../images/types';
import { isUnknownPlatform } from '../platform';
import { familiarName, familiarRepository, formatReference, parseReference } from '../reference';
import { BlobDir } from './blobdir';
import { Built, closure } from './image';
import { RawHeader, TarBody, TarItem, tarStream, TypeFlag } from './tar';

/** One entry of an archive being written. */
export interface ArchiveEntry {
  /** Path inside the archive; directories end with `/`. */
  name: string;
  type: 'file' | 'dir' | 'symlink';
  mode?: number;
  /** File size (required for streamed bodies). */
  size?: number;
  body?: TarBody;
  /** Symlink target. */
  linkname?: string;
}

/**
 * Entry order. Default 'sorted' (what docker save, skopeo and containerd produce).
 * 'metadata-first': oci-layout/index.json/manifest.json/repositories/config JSON first;
 * 'metadata-last': all blobs and layers first; 'manifest-last': only manifest.json moved
 * last; or a function receiving the sorted names and returning them in the wanted order
 * (names it leaves out are not written).
 */
export type EntryOrder = 'sorted' | 'metadata-first' | 'metadata-last' | 'manifest-last' | ((names: string[]) => string[]);

export interface ArchiveOptions {
  order?: EntryOrder;
  /** Compress the whole archive (default none). */
  wrap?: Compression;
  wrapLevel?: number;
  /** Write directory entries (`blobs/`, `blobs/sha256/`, `<v1id>/`); default true. */
  dirEntries?: boolean;
  /** mtime of every entry (seconds); default 0. */
  mtime?: number;
  /** Cut the output file after this many bytes (hostile-input tests). */
  truncateAt?: number;
  /** Leave these blobs out (partial archives: missing platforms, missing layers). */
  omitBlobs?: Digest[];
  /** Extra entries appended before ordering. */
  extraEntries?: ArchiveEntry[];
}

/** What an archive writer produced. */
export interface ArchiveResult {
  path: string;
  /** sha256 and size of the file written. */
  digest: Digest;
  size: number;
  /** Entry names in the order written. */
  entries: string[];
}

const META_FILES = new Set(['oci-layout', 'index.json', 'manifest.json', 'repositories']);

function isMetadata(name: string): boolean {
  return META_FILES.has(name) || /^[0-9a-f]{64}\.json$/.test(name) || /^[0-9a-f]{64}\/(json|VERSION)$/.test(name);
}

function applyOrder(entries: ArchiveEntry[], order: EntryOrder = 'sorted'): ArchiveEntry[] {
  const byName = new Map<string, ArchiveEntry>();
  for (const e of entries) {
    if (byName.has(e.name)) throw new InvalidArgumentError(`archive: duplicate entry ${e.name}`);
    byName.set(e.name, e);
  }
  const sorted = [...byName.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  let names: string[];
  if (typeof order === 'function') names = order(sorted);
  else if (order === 'sorted') names = sorted;
  else if (order === 'metadata-first') names = [...sorted.filter(isMetadata), ...sorted.filter((n) => !isMetadata(n))];
  else if (order === 'metadata-last') names = [...sorted.filter((n) => !isMetadata(n)), ...sorted.filter(isMetadata)];
  else if (order === 'manifest-last') names = [...sorted.filter((n) => n !== 'manifest.json'), ...sorted.filter((n) => n === 'manifest.json')];
  else throw new InvalidArgumentError(`archive: unknown order ${String(order)}`);
  return names.map((n) => {
    const e = byName.get(n);
    if (!e) throw new InvalidArgumentError(`archive: order function returned unknown entry ${n}`);
    return e;
  });
}

function toTarItem(e: ArchiveEntry, mtime: number): TarItem {
  const h: RawHeader = { name: e.name, typeflag: TypeFlag.file, mtime, uid: 0, gid: 0, size: 0 };
  if (e.type === 'dir') {
    h.typeflag = TypeFlag.dir;
    h.mode = e.mode ?? 0o755;
    if (!h.name.endsWith('/')) h.name += '/';
  } else if (e.type === 'symlink') {
    h.typeflag = TypeFlag.symlink;
    h.mode = e.mode ?? 0o777;
    h.linkname = e.linkname;
  } else {
    h.mode = e.mode ?? 0o644;
    h.size = e.size ?? (typeof e.body === 'string' ? Buffer.byteLength(e.body) : Buffer.isBuffer(e.body) ? e.body.length : 0);
  }
  return { header: h, body: e.type === 'file' ? e.body : undefined };
}

class Truncate extends Transform {
  private left: number;
  constructor(n: number) {
    super();
    this.left = n;
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    if (this.left <= 0) return cb();
    const c = chunk.length > this.left ? chunk.subarray(0, this.left) : chunk;
    this.left -= c.length;
    cb(null, c);
  }
}

/**
 * Write `source` (a byte stream) to `out`: temp file in the same directory, optional
 * whole-file compression and truncation, fsync, rename. Removes the temp file on error.
 */
export async function writeStreamToFile(source: Readable, out: string, opts: Pick<ArchiveOptions, 'wrap' | 'wrapLevel' | 'truncateAt'> = {}): Promise<{ digest: Digest; size: number }> {
  const dir = path.dirname(path.resolve(out));
  fs.mkdirSync(dir, { recursive: true });
  const tmp = path.join(dir, `.${path.basename(out)}.tmp-${rnd(6).toString('hex')}`);
  const hash = new DigestStream();
  const stages: Array<Readable | Transform | Writable> = [source];
  if (opts.wrap && opts.wrap !== 'none') stages.push(compressStream(opts.wrap, opts.wrapLevel));
  if (opts.truncateAt !== undefined) stages.push(new Truncate(opts.truncateAt));
  stages.push(hash);
  try {
    const fd = fs.openSync(tmp, 'w');
    stages.push(fs.createWriteStream('', { fd, autoClose: false, highWaterMark: 1 << 20 }));
    try {
      await pipeline(stages as unknown as ReadonlyArray<NodeJS.ReadableStream | NodeJS.WritableStream>);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, out);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  return { digest: hash.digest(), size: hash.size };
}

/** Write entries as a tar archive at `out` (see ArchiveOptions). */
export async function writeArchive(out: string, entries: ArchiveEntry[], opts: ArchiveOptions = {}): Promise<ArchiveResult> {
  let list = [...entries, ...(opts.extraEntries ?? [])];
  if (opts.dirEntries === false) list = list.filter((e) => e.type !== 'dir');
  const ordered = applyOrder(list, opts.order);
  const mtime = opts.mtime ?? 0;
  const res = await writeStreamToFile(tarStream(ordered.map((e) => toTarItem(e, mtime))), out, opts);
  return { path: out, ...res, entries: ordered.map((e) => (e.type === 'dir' && !e.name.endsWith('/') ? e.name + '/' : e.name)) };
}

function blobEntry(blobs: BlobDir, digest: Digest, name = `blobs/sha256/${digestHex(digest)}`, mode = 0o444): ArchiveEntry {
  return { name, type: 'file', mode, size: blobs.size(digest), body: () => blobs.open(digest) };
}

function dirs(...names: string[]): ArchiveEntry[] {
  return names.map((n) => ({ name: n.endsWith('/') ? n : n + '/', type: 'dir' as const }));
}

function targetDescriptor(t: Built | Descriptor): Descriptor {
  const d = 'kind' in t ? t.descriptor : t;
  const out: Descriptor = { mediaType: d.mediaType, digest: d.digest, size: d.size };
  return out;
}

/** How index.json entries name images. */
export type RefAnnotationStyle =
  /** ctr export / docker: `io.containerd.image.name` = full name, `org.opencontainers.image.ref.name` = tag (full name if digest-only). */
  | 'containerd'
  /** skopeo `oci-archive:FILE:tag`: `org.opencontainers.image.ref.name` = tag only. */
  | 'skopeo-tag'
  /** skopeo `oci-archive:FILE:name:tag`: `org.opencontainers.image.ref.name` = the full name as given. */
  | 'skopeo-full'
  /** No annotations. */
  | 'none';

/** Annotations an index.json entry for `name` gets under `style`. */
export function refAnnotations(name: string, style: RefAnnotationStyle): Record<string, string> | undefined {
  if (style === 'none') return undefined;
  if (style === 'skopeo-full') return { [Annotation.REF_NAME]: name };
  const ref = parseReference(name);
  const tagOrFull = ref.tag && !ref.digest ? ref.tag : formatReference(ref);
  if (style === 'skopeo-tag') return { [Annotation.REF_NAME]: ref.tag ?? formatReference(ref) };
  return { [Annotation.CONTAINERD_NAME]: formatReference(ref), [Annotation.REF_NAME]: tagOrFull };
}

export interface OciArchiveImage {
  /** An image/index built here, or the descriptor of one stored in the BlobDir. */
  target: Built | Descriptor;
  /** Names (one index.json entry each); none = one unnamed entry. */
  names?: string[];
}

export interface OciLayoutOptions {
  images: OciArchiveImage[];
  /** Default 'containerd'. */
  annotate?: RefAnnotationStyle;
  /** Also write a Docker `manifest.json` (as `ctr export` does); default false. */
  dockerManifest?: boolean;
  omitBlobs?: Digest[];
}

/** index.json (and optional manifest.json) for an OCI layout. */
export function ociLayoutDocuments(blobs: BlobDir, opts: OciLayoutOptions): { index: Index; manifestJson?: unknown[]; blobs: Digest[] } {
  const style = opts.annotate ?? 'containerd';
  const manifests: Descriptor[] = [];
  const all: Digest[] = [];
  const seen = new Set<Digest>();
  const dockerEntries: unknown[] = [];
  for (const img of opts.images) {
    const d = targetDescriptor(img.target);
    const names = img.names ?? [];
    if (names.length === 0) manifests.push(d);
    for (const n of names) {
      const ann = refAnnotations(n, style);
      manifests.push(ann ? { ...d, annotations: ann } : { ...d });
    }
    for (const b of closure(blobs, d)) {
      if (!seen.has(b.digest)) {
        seen.add(b.digest);
        all.push(b.digest);
      }
    }
    if (opts.dockerManifest) {
      const m = pickManifest(blobs, d);
      if (m) {
        const man = blobs.readJson<Manifest>(m.digest);
        dockerEntries.push({
          Config: `blobs/sha256/${digestHex(man.config.digest)}`,
          RepoTags: names.map((n) => familiarName(n)),
          Layers: man.layers.map((l) => `blobs/sha256/${digestHex(l.digest)}`),
        });
      }
    }
  }
  const omit = new Set(opts.omitBlobs ?? []);
  return {
    index: { schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests },
    manifestJson: opts.dockerManifest ? dockerEntries : undefined,
    blobs: all.filter((b) => !omit.has(b)),
  };
}

/** First non-attestation manifest of an index (or the manifest itself). */
function pickManifest(blobs: BlobDir, d: Descriptor): Descriptor | undefined {
  if (isManifestType(d.mediaType)) return d;
  if (!isIndexType(d.mediaType)) return undefined;
  for (const m of blobs.readJson<Index>(d.digest).manifests) {
    if (m.platform && isUnknownPlatform(m.platform)) continue;
    const r = pickManifest(blobs, m);
    if (r) return r;
  }
  return undefined;
}

/** Write `oci-layout` and `index.json` into the BlobDir's root, making it an OCI layout directory. */
export function writeOciLayout(blobs: BlobDir, opts: OciLayoutOptions): Index {
  const docs = ociLayoutDocuments(blobs, opts);
  fs.writeFileSync(path.join(blobs.root, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  fs.writeFileSync(path.join(blobs.root, 'index.json'), JSON.stringify(docs.index));
  if (docs.manifestJson) fs.writeFileSync(path.join(blobs.root, 'manifest.json'), JSON.stringify(docs.manifestJson));
  return docs.index;
}

/**
 * Write an OCI archive (tar of an OCI layout: `oci-layout`, `index.json`,
 * `blobs/sha256/*`), as `ctr export` / `skopeo copy … oci-archive:` produce.
 */
export async function writeOciArchive(blobs: BlobDir, out: string, opts: OciLayoutOptions & ArchiveOptions): Promise<ArchiveResult> {
  const docs = ociLayoutDocuments(blobs, opts);
  const entries: ArchiveEntry[] = [
    ...dirs('blobs/', 'blobs/sha256/'),
    { name: 'oci-layout', type: 'file', body: JSON.stringify({ imageLayoutVersion: '1.0.0' }) },
    { name: 'index.json', type: 'file', body: JSON.stringify(docs.index) },
    ...docs.blobs.map((d) => blobEntry(blobs, d)),
  ];
  if (docs.manifestJson) entries.push({ name: 'manifest.json', type: 'file', body: JSON.stringify(docs.manifestJson) });
  return writeArchive(out, entries, opts);
}

/**
 * Make sure the uncompressed form of a layer blob exists in `blobs` (digest = diffID);
 * decompresses in a stream and verifies the result.
 */
export async function ensureUncompressed(blobs: BlobDir, layer: Descriptor, diffId: Digest): Promise<void> {
  if (blobs.has(diffId)) return;
  const c = layerCompression(layer.mediaType) ?? 'none';
  const ref = await blobs.putStream(blobs.open(layer.digest), decompressStream(c));
  if (ref.digest !== diffId) throw new DigestMismatchError(diffId, ref.digest, `layer ${layer.digest} uncompressed`);
}

export interface DockerArchiveImage {
  /** A single-platform image built here, or its manifest descriptor in the BlobDir. */
  image: Built | Descriptor;
  /** Tags (`busybox:latest`, `docker.io/library/x:1`); written in familiar form. */
  tags?: string[];
}

export interface DockerArchiveOptions extends ArchiveOptions {
  images: DockerArchiveImage[];
  /**
   * 'docker25' (default): OCI layout + manifest.json + repositories, layers at
   * `blobs/sha256/<diffID hex>` (docker save ≥ 25).
   * 'legacy': `<v1id>/layer.tar`, `<v1id>/json`, `<v1id>/VERSION`, `<configHex>.json`,
   * manifest.json, repositories (docker save < 25).
   */
  layout?: 'docker25' | 'legacy';
  /**
   * Write layers as stored (gzip/zstd) instead of uncompressed. docker25 + true is what
   * Docker with the containerd image store writes (the original manifest and blobs).
   */
  compressedLayers?: boolean;
  /** legacy: a layer whose content was already written is a symlink to it ('symlink', default) or a copy. */
  duplicateLayers?: 'symlink' | 'copy';
}

interface ResolvedImage {
  manifestDesc: Descriptor;
  manifest: Manifest;
  config: ImageConfig;
  tags: string[];
}

function resolveImages(blobs: BlobDir, images: DockerArchiveImage[]): ResolvedImage[] {
  return images.map((img) => {
    const d0 = 'kind' in img.image ? img.image.descriptor : img.image;
    const d = pickManifest(blobs, d0);
    if (!d) throw new InvalidArgumentError(`docker archive: ${d0.digest} is not an image`);
    const manifest = blobs.readJson<Manifest>(d.digest);
    const config = blobs.readJson<ImageConfig>(manifest.config.digest);
    if (config.rootfs.diff_ids.length !== manifest.layers.length) {
      throw new InvalidArgumentError(`docker archive: image ${d.digest}: ${manifest.layers.length} layers but ${config.rootfs.diff_ids.length} diff_ids`);
    }
    return { manifestDesc: d, manifest, config, tags: img.tags ?? [] };
  });
}

function sha256hex(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

function chainIds(diffIds: Digest[]): Digest[] {
  const out: Digest[] = [];
  for (const d of diffIds) out.push(out.length === 0 ? d : `sha256:${sha256hex(`${out[out.length - 1]} ${d}`)}`);
  return out;
}

function repositoriesJson(tagged: Array<{ tags: string[]; top: string }>): Record<string, Record<string, string>> {
  const repos: Record<string, Record<string, string>> = {};
  for (const t of tagged) {
    for (const tag of t.tags) {
      const ref = parseReference(tag);
      if (!ref.tag) continue;
      const repo = familiarRepository(tag);
      (repos[repo] ??= {})[ref.tag] = t.top;
    }
  }
  return repos;
}

/** Write a Docker archive (`docker save` format, legacy or ≥ 25 layout). */
export async function writeDockerArchive(blobs: BlobDir, out: string, opts: DockerArchiveOptions): Promise<ArchiveResult> {
  const images = resolveImages(blobs, opts.images);
  const layout = opts.layout ?? 'docker25';
  return layout === 'legacy' ? writeLegacy(blobs, out, images, opts) : writeDocker25(blobs, out, images, opts);
}

async function writeDocker25(blobs: BlobDir, out: string, images: ResolvedImage[], opts: DockerArchiveOptions): Promise<ArchiveResult> {
  const entries: ArchiveEntry[] = [...dirs('blobs/', 'blobs/sha256/')];
  const written = new Set<Digest>();
  const omit = new Set(opts.omitBlobs ?? []);
  const addBlob = (d: Digest): void => {
    if (written.has(d) || omit.has(d)) return;
    written.add(d);
    entries.push(blobEntry(blobs, d));
  };
  const index: Index = { schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: [] };
  const manifestJson: unknown[] = [];
  const tagged: Array<{ tags: string[]; top: string }> = [];
  for (const img of images) {
    let mdesc: Descriptor;
    let layerDigests: Digest[];
    if (opts.compressedLayers) {
      mdesc = { mediaType: img.manifestDesc.mediaType, digest: img.manifestDesc.digest, size: img.manifestDesc.size };
      layerDigests = img.manifest.layers.map((l) => l.digest);
    } else {
      for (let i = 0; i < img.manifest.layers.length; i++) await ensureUncompressed(blobs, img.manifest.layers[i], img.config.rootfs.diff_ids[i]);
      layerDigests = img.config.rootfs.diff_ids;
      const man: Manifest = {
        schemaVersion: 2,
        mediaType: MediaType.OCI_MANIFEST,
        config: { mediaType: MediaType.OCI_CONFIG, digest: img.manifest.config.digest, size: img.manifest.config.size },
        layers: layerDigests.map((d) => ({ mediaType: MediaType.OCI_LAYER, digest: d, size: blobs.size(d) })),
      };
      const ref = blobs.putJson(man);
      mdesc = { mediaType: MediaType.OCI_MANIFEST, digest: ref.digest, size: ref.size };
    }
    addBlob(mdesc.digest);
    addBlob(img.manifest.config.digest);
    for (const d of layerDigests) addBlob(d);
    if (img.tags.length === 0) index.manifests.push(mdesc);
    for (const t of img.tags) index.manifests.push({ ...mdesc, annotations: refAnnotations(t, 'containerd') });
    manifestJson.push({
      Config: `blobs/sha256/${digestHex(img.manifest.config.digest)}`,
      RepoTags: img.tags.length ? img.tags.map((t) => familiarName(t)) : null,
      Layers: layerDigests.map((d) => `blobs/sha256/${digestHex(d)}`),
    });
    tagged.push({ tags: img.tags, top: digestHex(img.config.rootfs.diff_ids[img.config.rootfs.diff_ids.length - 1] ?? img.manifest.config.digest) });
  }
  entries.push(
    { name: 'oci-layout', type: 'file', body: JSON.stringify({ imageLayoutVersion: '1.0.0' }) },
    { name: 'index.json', type: 'file', body: JSON.stringify(index) },
    { name: 'manifest.json', type: 'file', body: JSON.stringify(manifestJson) },
    { name: 'repositories', type: 'file', body: JSON.stringify(repositoriesJson(tagged)) },
  );
  return writeArchive(out, entries, opts);
}

async function writeLegacy(blobs: BlobDir, out: string, images: ResolvedImage[], opts: DockerArchiveOptions): Promise<ArchiveResult> {
  const entries: ArchiveEntry[] = [];
  const omit = new Set(opts.omitBlobs ?? []);
  const v1Written = new Set<string>();
  const layerFileByContent = new Map<Digest, string>(); // blob digest written -> path of its layer.tar
  const configsWritten = new Set<Digest>();
  const manifestJson: unknown[] = [];
  const tagged: Array<{ tags: string[]; top: string }> = [];
  for (const img of images) {
    const diffIds = img.config.rootfs.diff_ids;
    const chains = chainIds(diffIds);
    const created = (img.config.created as string | undefined) ?? '1970-01-01T00:00:00Z';
    const layerPaths: string[] = [];
    let parent = '';
    for (let i = 0; i < diffIds.length; i++) {
      const last = i === diffIds.length - 1;
      const id = sha256hex(JSON.stringify({ layer_id: chains[i], parent: parent ? `sha256:${parent}` : '', created, ...(last ? { config: img.manifest.config.digest } : {}) }));
      const layerPath = `${id}/layer.tar`;
      layerPaths.push(layerPath);
      if (!v1Written.has(id)) {
        v1Written.add(id);
        const v1: Record<string, unknown> = { id, ...(parent ? { parent } : {}), created, container_config: { Cmd: null } };
        if (last) {
          v1.os = img.config.os;
          v1.architecture = img.config.architecture;
          if (img.config.config) v1.config = img.config.config;
        }
        entries.push(
          ...dirs(`${id}/`),
          { name: `${id}/VERSION`, type: 'file', body: '1.0' },
          { name: `${id}/json`, type: 'file', body: JSON.stringify(v1) },
        );
        const layerDesc = img.manifest.layers[i];
        let content: Digest;
        if (opts.compressedLayers) content = layerDesc.digest;
        else {
          if (!omit.has(diffIds[i])) await ensureUncompressed(blobs, layerDesc, diffIds[i]);
          content = diffIds[i];
        }
        const prev = layerFileByContent.get(content);
        if (omit.has(content)) {
          // leave the layer out: a broken archive for tests
        } else if (prev && (opts.duplicateLayers ?? 'symlink') === 'symlink') {
          entries.push({ name: layerPath, type: 'symlink', linkname: `../${prev}` });
        } else {
          entries.push(blobEntry(blobs, content, layerPath, 0o644));
          if (!prev) layerFileByContent.set(content, layerPath);
        }
      }
      parent = id;
    }
    const cfgHex = digestHex(img.manifest.config.digest);
    if (!configsWritten.has(img.manifest.config.digest) && !omit.has(img.manifest.config.digest)) {
      configsWritten.add(img.manifest.config.digest);
      entries.push(blobEntry(blobs, img.manifest.config.digest, `${cfgHex}.json`, 0o644));
    }
    manifestJson.push({
      Config: `${cfgHex}.json`,
      RepoTags: img.tags.length ? img.tags.map((t) => familiarName(t)) : null,
      Layers: layerPaths,
    });
    tagged.push({ tags: img.tags, top: parent });
  }
  entries.push(
    { name: 'manifest.json', type: 'file', body: JSON.stringify(manifestJson) },
    { name: 'repositories', type: 'file', body: JSON.stringify(repositoriesJson(tagged)) },
  );
  return writeArchive(out, entries, opts);
}
