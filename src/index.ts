/**
 * imgtool, the library: its public API (`require('imgtool')`).
 *
 * Open a `Store`, then call the operations on it: load / save / convert / unpack / export-rootfs /
 * prune / fsck, archive checks that need no store (verify, list), and KIND preload/load. Every
 * operation takes an options object (`progress`, `lease`, …) and returns a plain result; failures
 * are `ImgtoolError` subclasses with a stable `code` and one line naming image, layer and digest.
 * See the README's "Library" section and examples/library.ts.
 *
 * Not here: the image/fixture builder (`imgtool/builder`), the CLI plumbing (src/cli: the command layer, base
 * command, progress bars, tables — commands only) and internals (tar parsing, archive readers,
 * per-concept stores), which tests import from their modules.
 * One line (or one value + one type line) per module, so module moves only change paths here.
 * (isolatedModules: re-export types with `export type`.)
 */
export * from './errors';
export { Store, defaultRoot } from './store';
export { silentProgress, warningsOnly } from './progress';
export type { Progress, ProgressTask } from './progress';
export { sha256, shortDigest, isDigest } from './digest';
export type { Digest } from './digest';
export { parseReference, normalizeReference, familiarName } from './reference';
export type { Reference } from './reference';
export { parsePlatform, formatPlatform, hostPlatform } from './platform';
export type { Platform } from './platform';
export { MediaType } from './images/mediatypes';
export type { Compression } from './images/mediatypes';
export type { Descriptor, Manifest, Index, ImageConfig } from './images/types';
export type { ImageRecord } from './images/store';
export { listImages, tagImage, removeImages } from './images/ops';
export type { ImageSummary } from './images/ops';
export type { ResourceHolder } from './content';
export type { Lease, LeaseManager, LeaseInfo, CreateLeaseOptions } from './leases';
export { withCommandLease } from './leases';
export { loadArchive } from './archive/load';
export type { LoadOptions, LoadResult } from './archive/load';
export type { ImportedImage } from './archive/import';
export { saveImages, SAVE_FORMATS, SAVE_COMPRESSIONS } from './archive/export';
export type { SaveOptions, SaveResult, SaveFormat, SavedImage, DigestChange, SaveCompression } from './archive/export';
export { verifyArchive } from './archive/verify';
export type { VerifyReport, VerifiedImage, ExamineOptions } from './archive/verify';
export { listArchive } from './archive/list';
export type { ArchiveListing, ListedImage, ListedManifest, ListedLayer } from './archive/list';
export type { ArchiveInputSource } from './archive/input';
export { convertImage } from './compression/convert';
export type { ConvertOptions, ConvertResult, ConvertedLayer } from './compression/convert';
export { inspectImage } from './compression/inspect';
export type { InspectOptions, InspectResult, InspectManifest, InspectLayer, InspectVariant } from './compression/inspect';
export { unpackImage, listSnapshots } from './snapshots/ops';
export type { UnpackOptions, UnpackResult, UnpackedLayer, SnapshotSummary } from './snapshots/ops';
export { exportRootfs } from './snapshots/export';
export type { ExportTarget, ExportRootfsOptions, ExportRootfsResult } from './snapshots/export';
export { prune } from './gc/prune';
export type { PruneOptions, PruneResult } from './gc/prune';
export { fsck } from './gc/fsck';
export type { FsckOptions, FsckResult, FsckProblem } from './gc/fsck';
export { kindPreload } from './kind/preload';
export type { KindPreloadOptions, KindPreloadResult, PreloadArchive, PreloadImage } from './kind/preload';
export { kindLoad, KindLoadError } from './kind/load';
export type { KindLoadOptions, KindLoadResult, KindNodeResult, KindNodeImage, KindImageAction } from './kind/load';
export { DEFAULT_EXEC_TEMPLATE } from './kind/exec';
export { ensureLayer, layerResolver } from './layers';
export type { EnsureLayerOptions, EnsuredLayer, LayerRequest, LayerResolver, LayerResolverOptions } from './layers';
export { buildInventory, readInventory, parseInventory, writeInventoryFile } from './archive/have';
export type { Inventory, InventoryBlob } from './archive/have';
export { pullImages, pushImage, login, logout, PUSH_COMPRESSIONS } from './registry';
export type { PullOptions, PullResult, PulledImage, PushOptions, PushResult, PushCompression } from './registry';
export { DEFAULT_LIMITS, resolveLimits, parseSize } from './limits';
export type { Limits } from './limits';
