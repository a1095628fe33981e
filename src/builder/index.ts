/**
 * Deterministic image builder: layers from entry specs (streaming, flat memory),
 * configs/manifests/indexes, an OCI-layout blob directory, and archive writers in the
 * formats real tools produce (OCI archive, docker save legacy and ≥25 layouts), plus
 * raw tar writing for hostile-input tests.
 *
 * Same spec → byte-identical blobs and archives (fixed mtimes, uid/gid 0, fixed
 * modes, sorted or specified entry order, deterministic codecs).
 *
 * ```ts
 * const b = new ImageBuilder('/tmp/work');
 * const l1 = await b.layer([{ path: 'etc/', type: 'dir' }, { path: 'etc/hello', content: 'hi\n' }]);
 * const l2 = await b.layer([{ path: 'data', content: { size: 1 << 20, seed: 1 } }], { compression: 'zstd' });
 * const img = b.image({ layers: [l1, l2], platform: 'linux/amd64' });
 * await b.ociArchive('/tmp/img.tar', { images: [{ target: img, names: ['example.com/app:1'] }] });
 * ```
 */
import { BlobDir } from './blobdir';
import { BuiltLayer, LayerEntry, LayerOptions, buildLayer, layerFromTar } from './layer';
import { BuiltImage, BuiltIndex, ImageOptions, IndexOptions, buildImage, buildIndex } from './image';
import {
  ArchiveOptions,
  ArchiveResult,
  DockerArchiveOptions,
  OciLayoutOptions,
  writeDockerArchive,
  writeOciArchive,
  writeOciLayout,
} from './archive';
import { Readable } from 'node:stream';
import { Index } from '../images/types';

export * from './tar';
export * from './prng';
export * from './blobdir';
export * from './layer';
export * from './image';
export * from './archive';
export * from './raw';

/** Convenience wrapper binding the builder functions to one BlobDir. */
export class ImageBuilder {
  readonly blobs: BlobDir;
  /** `dir` becomes an OCI-layout-style blob directory (`dir/blobs/sha256/…`). */
  constructor(dir: string | BlobDir) {
    this.blobs = typeof dir === 'string' ? new BlobDir(dir) : dir;
  }
  /** Build a layer blob from entry specs. */
  layer(entries: LayerEntry[], opts?: LayerOptions): Promise<BuiltLayer> {
    return buildLayer(this.blobs, entries, opts);
  }
  /** Build a layer blob from an existing tar (stream or file path). */
  layerFromTar(tar: Readable | string, opts?: LayerOptions): Promise<BuiltLayer> {
    return layerFromTar(this.blobs, tar, opts);
  }
  image(opts: ImageOptions): BuiltImage {
    return buildImage(this.blobs, opts);
  }
  index(opts: IndexOptions): BuiltIndex {
    return buildIndex(this.blobs, opts);
  }
  ociArchive(out: string, opts: OciLayoutOptions & ArchiveOptions): Promise<ArchiveResult> {
    return writeOciArchive(this.blobs, out, opts);
  }
  dockerArchive(out: string, opts: DockerArchiveOptions): Promise<ArchiveResult> {
    return writeDockerArchive(this.blobs, out, opts);
  }
  /** Turn the blob directory itself into an OCI layout (writes oci-layout, index.json). */
  ociLayout(opts: OciLayoutOptions): Index {
    return writeOciLayout(this.blobs, opts);
  }
}
