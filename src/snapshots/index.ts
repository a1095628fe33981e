/**
 * Snapshots: unpacked layers keyed by chainID (each storing only its own changes),
 * safe layer apply, exact layer reproduction (tar-split), merged views, export-rootfs.
 */
export { SnapshotStore, chainId, chainIds } from './store';
export type { SnapshotInfo } from './store';
export {
  unpackImage, rebuildLayer, verifyRebuild, discardLayers, listSnapshots,
  resolveImageLayers, loadMergedView, applyLayerStream, openLayerSource,
} from './ops';
export type {
  UnpackOptions, UnpackResult, UnpackedLayer, ImageLayers, MergedView, ApplyLayerOptions, AppliedLayer,
  DiscardOptions, DiscardedLayer, SnapshotSummary, LayerSource,
} from './ops';
export { exportRootfs, rootfsTar } from './export';
export type { ExportTarget, ExportRootfsOptions, ExportRootfsResult } from './export';
