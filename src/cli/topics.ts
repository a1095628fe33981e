/** Topics: groups of commands whose ids share a first word (`imgtool kind load`), with their help summary. */
export const TOPICS: Record<string, string> = {
  kind: 'Put images into the nodes of a KIND cluster (preload archives, delta loads).',
  lease: 'Create, list and remove leases (what they hold is kept by prune).',
};
