export { prune, markOthers } from './prune';
export type { PruneOptions, PruneResult, PruneHooks, OtherReferences } from './prune';
export { fsck } from './fsck';
export type { FsckOptions, FsckResult, FsckProblem } from './fsck';
export { chainIds } from './mark';
