import type { Store } from '../store';
import { importArchive, ImportOptions, ImportResult } from './import';
import { ArchiveInputSource } from './input';
import { unpackImage, discardLayers, UnpackResult, DiscardedLayer } from '../snapshots';
import { formatPlatform, hostPlatform, parsePlatform } from '../platform';
import { NotFoundError } from '../errors';
import { addCleanup, throwIfCancelled } from '../cancel';
import { Descriptor } from '../images/types';

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
  const imported = await importArchive(store, input, opts);
  const result: LoadResult = { ...imported, unpacked: [] };
  result.unpacked = await unpackOrUndo(store, imported.images, imported.previous, { ...opts, verb: 'load', warnings: result.warnings });
  return result;
}

export interface UnpackOrUndoOptions {
  unpack?: boolean;
  discardLayers?: boolean;
  /** `--platform`s to unpack (default: the host's). */
  platforms?: string[];
  lease?: LoadOptions['lease'];
  progress?: LoadOptions['progress'];
  /** Command name for cancellation messages. */
  verb?: string;
  /** Warnings are appended here. */
  warnings: string[];
  /** Hostile-input limits for the unpack (src/limits). */
  limits?: LoadOptions['limits'];
}

/**
 * After names were registered (`previous` = what they pointed at before): unpack the host
 * platform (or each `platforms`) of every image into snapshots, optionally discard layer
 * blobs. Any failure (or an interruption: src/cancel) puts the names back before it is
 * rethrown, so the command registers nothing. Shared by `load` and `pull`.
 */
export async function unpackOrUndo(
  store: Store,
  images: Array<{ names: string[] }>,
  previous: Array<{ name: string; target?: Descriptor }>,
  opts: UnpackOrUndoOptions,
): Promise<Array<UnpackResult & { discarded?: DiscardedLayer[] }>> {
  const unpack = opts.unpack !== false;
  const unpacked: Array<UnpackResult & { discarded?: DiscardedLayer[] }> = [];
  // Until the command has finished, a process that is interrupted and cannot wind down in time
  // still puts the names back before it exits.
  const dropCleanup = addCleanup(() => undoNames(store, previous));
  const platforms = opts.platforms?.length ? opts.platforms.map((p) => formatPlatform(parsePlatform(p))) : [undefined];
  try {
    throwIfCancelled(opts.verb ?? 'load');
    if (!unpack) return unpacked;
    for (const img of images) {
      const name = img.names[0];
      if (!name) continue;
      for (const platform of platforms) {
        let u: UnpackResult;
        try {
          u = await unpackImage(store, name, { platform, lease: opts.lease, progress: opts.progress, limits: opts.limits });
        } catch (e) {
          // An image without a manifest for the host platform is loaded but not unpacked (as docker does).
          if (e instanceof NotFoundError && platform === undefined && /no manifest for platform/.test(e.message)) {
            const w = `${name}: not unpacked: ${e.message.replace(/^image \S+: /, '')} (host ${formatPlatform(hostPlatform())})`;
            opts.warnings.push(w);
            opts.progress?.warn(w);
            continue;
          }
          throw e;
        }
        const entry: (typeof unpacked)[number] = { ...u };
        if (opts.discardLayers) entry.discarded = await discardLayers(store, name, { platform, lease: opts.lease, progress: opts.progress });
        unpacked.push(entry);
      }
    }
  } catch (e) {
    undoNames(store, previous);
    throw e;
  } finally {
    dropCleanup();
  }
  return unpacked;
}

/** Put every registered name back to what it was before. */
export function undoNames(store: Store, previous: Array<{ name: string; target?: Descriptor }>): void {
  store.meta.write(() => {
    for (const p of previous) {
      if (p.target) store.images.put(p.name, p.target);
      else store.images.delete(p.name);
    }
  });
}
