export { prune } from './prune';
export type { PruneOptions, PruneResult } from './prune';
export { fsck } from './fsck';
export type { FsckOptions, FsckResult, FsckProblem } from './fsck';
export { chainIds } from './mark';
