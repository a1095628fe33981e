/**
 * Where blobs live on registries (table `blob_sources`, migration 3): every blob pulled from or
 * pushed to `registry/repository` is recorded, so a later push to another repository of the
 * same registry can try a cross-repository mount instead of uploading. Only a hint: the
 * registry decides (a 202 means "not mounted", and the upload goes on).
 */
import type { Store } from '../store';

export function recordSources(store: Store, registry: string, repository: string, digests: Iterable<string>): void {
  const now = Date.now();
  store.meta.write(() => {
    const st = store.meta.db.prepare(
      `INSERT INTO blob_sources (digest, registry, repository, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT(digest, registry, repository) DO UPDATE SET updated_at = excluded.updated_at`,
    );
    for (const d of new Set(digests)) st.run(d, registry, repository, now);
  });
}

/** Other repositories of `registry` known to hold `digest`, most recent first. */
export function sourcesOf(store: Store, registry: string, digest: string, except: string): string[] {
  const rows = store.meta.db
    .prepare('SELECT repository FROM blob_sources WHERE digest = ? AND registry = ? AND repository != ? ORDER BY updated_at DESC')
    .all(digest, registry, except) as Array<{ repository: string }>;
  return rows.map((r) => r.repository);
}
