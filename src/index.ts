/**
 * imgtool public API. Commands use only what is exported here.
 * (isolatedModules: re-export types with `export type`.)
 */
export * from './errors';
export * from './digest';
export * from './reference';
export * from './platform';
export * from './images/mediatypes';
export * from './images/types';
export { ImageStore } from './images/store';
export type { ImageRecord } from './images/store';
export * from './images/walk';
export { contentSource } from './images/source';
export * from './images/ops';
export { ContentStore, ContentWriter, VerifyStream, MAX_JSON_SIZE } from './content';
export type { BlobInfo, WriterOptions, ResourceHolder } from './content';
export { Metadata } from './metadata';
export type { Db } from './metadata';
export * from './compression/codecs';
export { VariantStore } from './compression/variants';
export type { Variant } from './compression/variants';
export { ensureLayer } from './compression/ensure';
export type { EnsureLayerOptions, EnsuredLayer, EnsureSource, LayerRebuilder } from './compression/ensure';
export { convertImage, ociMediaType, convertedLayerType } from './compression/convert';
export type { ConvertOptions, ConvertResult, ConvertedLayer } from './compression/convert';
export { variantResolver } from './compression/resolver';
export type { VariantResolverOptions } from './compression/resolver';
export { inspectImage } from './compression/inspect';
export type { InspectOptions, InspectResult, InspectManifest, InspectLayer, InspectVariant } from './compression/inspect';
export { Store, defaultRoot } from './store';
export { LeaseManager, Lease, ProcessLease, MultiHolder, acquireProcessLease, withCommandLease, leaseIsLive, parseDuration, isProcessAlive, processStartId } from './leases';
export type { LeaseInfo, LeaseResource, ResourceKind, CreateLeaseOptions } from './leases';
export { prune, fsck } from './gc';
export type { PruneOptions, PruneResult, FsckOptions, FsckResult, FsckProblem } from './gc';
export * from './progress';
export { ImgtoolCommand } from './cli/base';
export { terminalProgress, fmtBytes } from './cli/progress';
export { Flags, Args } from '@oclif/core';
export { saveImages, planSave, SAVE_FORMATS, SAVE_COMPRESSIONS } from './archive/export';
export type { SaveOptions, SaveResult, SaveFormat, SavedImage, SavePlan, PlannedBlob, DigestChange } from './archive/export';
export { defaultLayerResolver, replacementMediaType } from './archive/export-resolver';
export type { LayerResolver, LayerRequest, SaveCompression } from './archive/export-resolver';
export { ImageBuilder, BlobDir, buildLayer, layerFromTar, layerTar, buildImage, buildIndex, buildAttestation, writeOciArchive, writeOciLayout, writeDockerArchive, rawTar, writeRawTar, DEFAULT_CREATED } from './builder';
export type { BuiltLayer, BuiltImage, BuiltIndex, Built, LayerEntry, LayerOptions, FileContent, GeneratedContent, ImageOptions, IndexOptions, ManifestFormat, ArchiveEntry, ArchiveOptions, ArchiveResult, EntryOrder, OciArchiveImage, OciLayoutOptions, RefAnnotationStyle, DockerArchiveImage, DockerArchiveOptions, RawEntry, RawTarOptions, BlobRef, LongNameFormat } from './builder';
export * from './kind';
export { SnapshotStore, chainId, chainIds, unpackImage, rebuildLayer, rebuildLayerBlob, verifyRebuild, discardLayers, listSnapshots, exportRootfs, resolveImageLayers } from './snapshots';
export type { SnapshotInfo, UnpackOptions, UnpackResult, UnpackedLayer, ImageLayers, RebuildBlobOptions, DiscardOptions, DiscardedLayer, SnapshotSummary, ExportTarget, ExportRootfsOptions, ExportRootfsResult } from './snapshots';
