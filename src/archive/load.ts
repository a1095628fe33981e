import type { Store } from '../store';
import { importArchive, ImportOptions, ImportResult } from './import';
import { ArchiveInputSource } from './input';
import { unpackImage, discardLayers, UnpackResult, DiscardedLayer } from '../snapshots';
import { formatPlatform, hostPlatform, parsePlatform } from '../platform';
import { NotFoundError } from '../errors';
import { addCleanup, throwIfCancelled } from '../cancel';

export interface LoadOptions extends ImportOptions {
  /** Unpack into snapshots (default true; `--no-unpack` sets false). */
  unpack?: boolean;
  /** After unpacking, delete each layer blob whose rebuild from the snapshot verified (`--discard-layers`). */
  discardLayers?: boolean;
}

export interface LoadResult extends ImportResult {
  unpacked: Array<UnpackResult & { discarded?: DiscardedLayer[] }>;
}

/**
 * `imgtool load`: import an archive (all-or-nothing), then unpack the host platform (or each
 * `--platform`) of every image into snapshots, then optionally discard the layer blobs.
 * A failed (or interrupted: src/cancel) unpack undoes the load's names, so a failed load
 * registers nothing.
 */
export async function loadArchive(store: Store, input: ArchiveInputSource, opts: LoadOptions = {}): Promise<LoadResult> {
  const unpack = opts.unpack !== false;
  const imported = await importArchive(store, input, opts);
  const result: LoadResult = { ...imported, unpacked: [] };
  // Until the load has finished, a process that is interrupted and cannot wind down in time
  // still puts the names back before it exits.
  const dropCleanup = addCleanup(() => undoNames(store, imported));
  const platforms = opts.platforms?.length ? opts.platforms.map((p) => formatPlatform(parsePlatform(p))) : [undefined];
  try {
    throwIfCancelled('load');
    if (!unpack) return result;
    for (const img of imported.images) {
      const name = img.names[0];
      if (!name) continue;
      for (const platform of platforms) {
        let u: UnpackResult;
        try {
          u = await unpackImage(store, name, { platform, lease: opts.lease, progress: opts.progress });
        } catch (e) {
          // An image without a manifest for the host platform is loaded but not unpacked (as docker does).
          if (e instanceof NotFoundError && platform === undefined && /no manifest for platform/.test(e.message)) {
            const w = `${name}: not unpacked: ${e.message.replace(/^image \S+: /, '')} (host ${formatPlatform(hostPlatform())})`;
            result.warnings.push(w);
            opts.progress?.warn(w);
            continue;
          }
          throw e;
        }
        const entry: LoadResult['unpacked'][number] = { ...u };
        if (opts.discardLayers) entry.discarded = await discardLayers(store, name, { platform, lease: opts.lease, progress: opts.progress });
        result.unpacked.push(entry);
      }
    }
  } catch (e) {
    undoNames(store, imported);
    throw e;
  } finally {
    dropCleanup();
  }
  return result;
}

/** Put every name the import registered back to what it was before. */
function undoNames(store: Store, r: ImportResult): void {
  store.meta.write(() => {
    for (const p of r.previous) {
      if (p.target) store.images.put(p.name, p.target);
      else store.images.delete(p.name);
    }
  });
}
