/**
 * `imgtool save`: images to one deterministic tar (OCI layout + Docker manifest.json by
 * default). This module holds the types and the entry points; the work is split by operation:
 *  - export-names.ts    what the user typed -> stored image + name written into the archive;
 *  - export-plan.ts     the whole archive planned before a byte is written (walk, layers
 *                       kept or produced by the layer resolver, omitted blobs, sizes, order);
 *  - export-rewrite.ts  manifests and indexes rewritten when a layer changed (old -> new);
 *  - export-metadata.ts oci-layout, index.json, Docker manifest.json and repositories;
 *  - export-write.ts    the plan written: lease + presence check under the write lock, then
 *                       the tar, re-verifying every blob while copying.
 */
import { Writable } from 'node:stream';
import { Platform } from '../platform';
import { ResourceHolder } from '../content';
import { Progress } from '../progress';
import { LayerResolver, SaveCompression } from '../layers';
import { ArchiveOutput } from './output';
import type { Inventory } from './have';

// The constants live with the plan (which checks options against them), so a planner that
// writes no archive (push) loads neither this module nor export-write.
export { planSave, SAVE_FORMATS, SAVE_COMPRESSIONS } from './export-plan';
export { saveImages } from './export-write';
export type { LayerResolver, LayerRequest, SaveCompression } from '../layers';

/** Archive layout: OCI layout + Docker manifest.json (default), OCI only, or Docker only. */
export type SaveFormat = 'oci+docker' | 'oci' | 'docker';

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
  /**
   * Warn when manifest.json names zstd layers, which Docker before 23 cannot load (default
   * true). `kind` turns it off: its archives are read by containerd, which reads zstd.
   */
  dockerWarnings?: boolean;
  /** Digests to leave out of the tar (delta loads). The archive is partial by design. */
  omitBlobs?: Set<string>;
  /**
   * `--have FILE`: the receiver's inventory (src/archive/have). Every blob of the written
   * manifests that it lists (same digest and size) is left out, and never read or produced.
   */
  have?: Inventory;
  /** `--exclude IMAGE`: leave out every blob of these images' closures (the receiver holds them). */
  exclude?: string[];
  /**
   * Produces absent or re-compressed layers. Default: `layerResolver` (src/layers) — a proven variant,
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
  /** Delta: digests left out that the receiver must hold (recorded on index.json), sorted. */
  expects: string[];
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
  /** Digests referenced but left out (omitBlobs, --have, --exclude, --skip-non-distributable). */
  omitted: string[];
  /** Delta: the digests of `omitted` that the receiver must hold (recorded on index.json). */
  expects: string[];
  /** Bytes of the blobs left out. */
  omittedBytes: number;
  /** Bytes of the archive. */
  bytes: number;
  warnings: string[];
}

