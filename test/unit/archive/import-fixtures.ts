/**
 * Small, deterministic archive fixtures for the import/verify tests: raw ustar writing
 * (so hostile headers can be made at will), layers, configs, manifests, OCI layouts and
 * Docker archives (old layout with symlinked layer.tar, Docker 25+ layout).
 */
import * as zlib from 'node:zlib';
import * as zstd from 'zstd-napi';
import { sha256 } from '../../../src/digest';
import { MediaType } from '../../../src/images/mediatypes';
import type { Compression } from '../../../src/images/mediatypes';
import type { Descriptor } from '../../../src/images/types';

export interface TarEntry {
  name: string;
  data?: Buffer | string;
  /** ustar typeflag: '0' file, '1' hard link, '2' symlink, '3' char dev, '4' block dev, '5' dir, '6' fifo. */
  type?: '0' | '1' | '2' | '3' | '4' | '5' | '6';
  linkname?: string;
  /** Size written in the header (default: the data's length). */
  declaredSize?: number;
}

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width, '0');
}

/** One 512-byte ustar header. */
export function tarHeader(e: TarEntry, size: number): Buffer {
  const b = Buffer.alloc(512);
  b.write(e.name, 0, 100, 'utf8');
  b.write(octal(e.type === '5' ? 0o755 : 0o644, 7) + '\0', 100);
  b.write(octal(0, 7) + '\0', 108);
  b.write(octal(0, 7) + '\0', 116);
  b.write(octal(size, 11) + '\0', 124);
  b.write(octal(0, 11) + '\0', 136);
  b.write('        ', 148);
  b.write(e.type ?? '0', 156);
  if (e.linkname) b.write(e.linkname, 157, 100, 'utf8');
  b.write('ustar\0', 257);
  b.write('00', 263);
  let sum = 0;
  for (const c of b) sum += c;
  b.write(octal(sum, 6) + '\0 ', 148);
  return b;
}

/** A tar archive (with the two zero blocks at the end unless `end: false`). */
export function tar(entries: TarEntry[], opts: { end?: boolean } = {}): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = e.data === undefined ? Buffer.alloc(0) : Buffer.isBuffer(e.data) ? e.data : Buffer.from(e.data);
    parts.push(tarHeader(e, e.declaredSize ?? data.length));
    parts.push(data);
    const pad = (512 - (data.length % 512)) % 512;
    if (pad) parts.push(Buffer.alloc(pad));
  }
  if (opts.end !== false) parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

export function compress(buf: Buffer, c: Compression): Buffer {
  if (c === 'gzip') return zlib.gzipSync(buf);
  if (c === 'zstd') return zstd.compress(buf);
  return buf;
}

export interface Layer {
  tar: Buffer;
  blob: Buffer;
  digest: string;
  diffId: string;
  compression: Compression;
  desc: Descriptor;
}

export function makeLayer(files: Record<string, string>, compression: Compression = 'gzip', oci = true): Layer {
  const t = tar(Object.entries(files).map(([name, data]) => ({ name, data })));
  const blob = compress(t, compression);
  const digest = sha256(blob);
  const mediaType =
    compression === 'zstd' ? MediaType.OCI_LAYER_ZSTD
      : oci ? (compression === 'gzip' ? MediaType.OCI_LAYER_GZIP : MediaType.OCI_LAYER)
        : compression === 'gzip' ? MediaType.DOCKER_LAYER_GZIP : MediaType.DOCKER_LAYER;
  return { tar: t, blob, digest, diffId: sha256(t), compression, desc: { mediaType, digest, size: blob.length } };
}

export interface Doc {
  bytes: Buffer;
  digest: string;
  desc: Descriptor;
}

export function doc(mediaType: string, v: unknown): Doc {
  const bytes = Buffer.isBuffer(v) ? v : Buffer.from(JSON.stringify(v));
  const digest = sha256(bytes);
  return { bytes, digest, desc: { mediaType, digest, size: bytes.length } };
}

export interface Image {
  layers: Layer[];
  config: Doc;
  manifest: Doc;
  platform: { os: string; architecture: string; variant?: string };
}

export function makeImage(opts: { arch?: string; os?: string; variant?: string; layers?: Layer[]; oci?: boolean; seed?: string } = {}): Image {
  const oci = opts.oci ?? true;
  const layers = opts.layers ?? [makeLayer({ 'etc/hello': `hello ${opts.seed ?? opts.arch ?? 'amd64'}\n` }, 'gzip', oci)];
  const platform = { os: opts.os ?? 'linux', architecture: opts.arch ?? 'amd64', ...(opts.variant ? { variant: opts.variant } : {}) };
  const config = doc(oci ? MediaType.OCI_CONFIG : MediaType.DOCKER_CONFIG, {
    architecture: platform.architecture, os: platform.os, ...(opts.variant ? { variant: opts.variant } : {}),
    config: { Cmd: ['/bin/sh'] }, rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
  });
  const mt = oci ? MediaType.OCI_MANIFEST : MediaType.DOCKER_MANIFEST;
  const manifest = doc(mt, { schemaVersion: 2, mediaType: mt, config: config.desc, layers: layers.map((l) => l.desc) });
  return { layers, config, manifest, platform };
}

export function blobEntry(bytes: Buffer, digest = sha256(bytes)): TarEntry {
  return { name: `blobs/sha256/${digest.slice(7)}`, data: bytes };
}

/** Every blob of an image as tar entries (config, layers, manifest). */
export function imageBlobs(img: Image): TarEntry[] {
  return [blobEntry(img.config.bytes), ...img.layers.map((l) => blobEntry(l.blob)), blobEntry(img.manifest.bytes)];
}

export function indexDoc(manifests: Descriptor[]): Doc {
  return doc(MediaType.OCI_INDEX, { schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests });
}

export const OCI_LAYOUT: TarEntry = { name: 'oci-layout', data: '{"imageLayoutVersion":"1.0.0"}' };

/** OCI archive: oci-layout, index.json listing `entries`, and `blobs`. */
export function ociArchive(entries: Descriptor[], blobs: TarEntry[]): Buffer {
  const index = indexDoc(entries);
  return tar([OCI_LAYOUT, ...blobs, { name: 'index.json', data: index.bytes }]);
}

/** Single-image OCI archive named `name` (both annotations, as imgtool save writes). */
export function ociImageArchive(img: Image, name?: string): Buffer {
  const annotations = name ? { 'io.containerd.image.name': name, 'org.opencontainers.image.ref.name': name } : undefined;
  return ociArchive([{ ...img.manifest.desc, ...(annotations ? { annotations } : {}) }], imageBlobs(img));
}

/**
 * Docker archive as skopeo and old `docker save` write it: `<hex>.json` config, layers
 * as `<hex>.tar` with `<id>/layer.tar` symlinks (or real files with `symlinks: false`),
 * `repositories`, and manifest.json LAST.
 */
export function dockerArchive(images: Array<{ img: Image; repoTags: string[] | null }>, opts: { symlinks?: boolean; manifestFirst?: boolean } = {}): Buffer {
  const entries: TarEntry[] = [];
  const manifest: Array<{ Config: string; RepoTags: string[] | null; Layers: string[] }> = [];
  const seen = new Set<string>();
  for (const { img, repoTags } of images) {
    const cfgName = `${img.config.digest.slice(7)}.json`;
    if (!seen.has(cfgName)) entries.push({ name: cfgName, data: img.config.bytes });
    seen.add(cfgName);
    const layerPaths: string[] = [];
    img.layers.forEach((l, i) => {
      const id = sha256(`${l.digest}-${i}`).slice(7);
      const ext = l.compression === 'gzip' ? '.tar.gz' : l.compression === 'zstd' ? '.tar.zst' : '.tar';
      const file = `${l.digest.slice(7)}${ext}`;
      if (opts.symlinks !== false) {
        if (!seen.has(file)) entries.push({ name: file, data: l.blob });
        seen.add(file);
        entries.push({ name: `${id}/`, type: '5' });
        entries.push({ name: `${id}/VERSION`, data: '1.0' });
        entries.push({ name: `${id}/json`, data: JSON.stringify({ id }) });
        entries.push({ name: `${id}/layer.tar`, type: '2', linkname: `../${file}` });
      } else {
        entries.push({ name: `${id}/layer.tar`, data: l.blob });
      }
      layerPaths.push(`${id}/layer.tar`);
    });
    manifest.push({ Config: cfgName, RepoTags: repoTags, Layers: layerPaths });
  }
  const man: TarEntry = { name: 'manifest.json', data: JSON.stringify(manifest) };
  const repos: TarEntry = { name: 'repositories', data: '{}' };
  return tar(opts.manifestFirst ? [man, ...entries, repos] : [...entries, repos, man]);
}

/**
 * stderr of a CLI run without Node process warnings (oclif emits one when another engineer's
 * command file is mid-rebuild in dist/): what imgtool itself printed.
 */
export function ownStderr(stderr: string): string {
  return stderr.replace(/^\(node:\d+\) Warning:[\s\S]*?^\(Use `node --trace-warnings[^\n]*\n/gm, '');
}
