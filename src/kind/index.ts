/** KIND preloading and delta loads into containerd nodes through `ctr`. */
export { kindLoad, KindLoadError } from './load';
export type { KindLoadOptions, KindLoadResult, KindNodeResult, KindNodeImage, KindImageAction } from './load';
export {
  NodeCtr, parseImagesLs, parseContentLs, parseImagesCheck, parseLabels, parseSnapshotter, reachableBlobs,
  K8S_NAMESPACE, PINNED_LABEL, DEFAULT_SNAPSHOTTER,
} from './ctr';
export type { CtrImage, CtrBlob, CtrImageCheck, ImportFlags } from './ctr';
export { DEFAULT_EXEC_TEMPLATE, NodeCommandError, splitCommandLine, nodeCommand, runInNode } from './exec';
export type { RunOptions, RunResult, RunInputResult } from './exec';
export { discoverNodes, discoveryEngine, KIND_CLUSTER_LABEL } from './nodes';
export { archiveBytes, tarEntryBytes } from './plan';
export { kindPreload, checkPreloadArchive, preloadFileNames } from './preload';
export type { KindPreloadOptions, KindPreloadResult, PreloadArchive, PreloadImage } from './preload';
