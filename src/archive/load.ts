import type { Store } from '../store';
import { dropUnretained, prepareImport, registerNames, ImportOptions, ImportResult } from './import';
import { ArchiveInputSource } from './input';
import { unpackImage, discardLayers, UnpackResult, DiscardedLayer } from '../snapshots';
import { formatPlatform, hostPlatform, parsePlatform } from '../platform';
import { NotFoundError } from '../errors';
import { addCleanup, throwIfCancelled } from '../cancel';
import { withCommandLease } from '../leases';
import { Descriptor } from '../images/types';

export interface LoadOptions extends ImportOptions {
  /** Unpack into snapshots (default true; `--no-unpack` sets false). */
  unpack?: boolean;
  /** After unpacking, delete each layer blob whose rebuild from the snapshot verified (`--discard-layers`). */
  discardLayers?: boolean;
}

export interface LoadResult extends ImportResult {
  unpacked: Array<UnpackResult & { discarded?: DiscardedLayer[] }>;
  /** Files of the archive that no registered image references: ingested while streaming, then dropped. */
  dropped: { count: number; bytes: number };
}

/**
 * `imgtool load`: import an archive (all-or-nothing), unpack the host platform (or each
 * `--platform`) of every image into snapshots, and only then register the names, in one
 * transaction (`unpackThenRegister`): a load that fails, is interrupted or is killed
 * (SIGKILL: no cleanup runs) before that registers nothing. Until then the content and the
 * snapshots are held by the load's lease (a process lease dies with its process; prune takes
 * what it held). Then every file this load ingested that no image references is dropped
 * (not kept: a junk file in an archive does not grow the store); a failed load drops
 * everything it ingested that nothing else retains.
 */
export async function loadArchive(store: Store, input: ArchiveInputSource, opts: LoadOptions = {}): Promise<LoadResult> {
  // The content must be held while unpacking, before any name holds it.
  if (!opts.lease) return withCommandLease(store, undefined, (lease) => loadArchive(store, input, { ...opts, lease }));
  const p = await prepareImport(store, input, opts);
  const result: LoadResult = { ...p.result, unpacked: [], dropped: { count: 0, bytes: 0 } };
  try {
    const done = await unpackThenRegister(store, { images: p.result.images, registrations: p.registrations, needed: p.needed }, {
      ...opts, lease: opts.lease, verb: 'load', warnings: result.warnings,
    });
    result.unpacked = done.unpacked;
    result.previous = done.previous;
  } catch (e) {
    dropUnretained(store, p.fresh, opts.lease);
    throw e;
  }
  // Only the files no image's closure names can be unreferenced: the marker runs only for those.
  const closure = new Set(p.needed.map((d) => d.digest));
  result.dropped = dropUnretained(store, [...p.fresh].filter((d) => !closure.has(d)), opts.lease);
  return result;
}

/** Images whose content is in the store, to unpack and then name. */
export interface PendingNames {
  /** `names[0]` is the name used in messages; `digest`/`mediaType`/`size`: what is unpacked. */
  images: Array<{ names: string[]; digest: string; mediaType: string; size: number }>;
  registrations: Array<{ name: string; target: Descriptor }>;
  /** Every blob the registrations need (checked present in the registering transaction). */
  needed: Descriptor[];
  /** Runs inside the registering transaction (pull: the blob sources). */
  also?: () => void;
}

export interface UnpackThenRegisterOptions {
  unpack?: boolean;
  discardLayers?: boolean;
  /** `--platform`s to unpack (default: the host's). */
  platforms?: string[];
  /** Holds the content and snapshots until the names do: required (see `loadArchive`). */
  lease: NonNullable<LoadOptions['lease']>;
  progress?: LoadOptions['progress'];
  /** Command name for cancellation and error messages. */
  verb?: string;
  /** Warnings are appended here. */
  warnings: string[];
  /** Hostile-input limits for the unpack (src/limits). */
  limits?: LoadOptions['limits'];
}

/**
 * Unpack the host platform (or each `platforms`) of every pending image into snapshots
 * (by its descriptor: no name exists yet), then register every name in ONE transaction
 * (`registerNames`), then optionally discard the layer blobs. So a command that fails, is
 * interrupted (src/cancel) or killed before the transaction registers nothing, and needs no
 * undo. Only `--discard-layers` runs after the names: a failure there (or an interruption
 * that cannot wind down in time) puts them back. Shared by `load` and `pull`.
 */
export async function unpackThenRegister(
  store: Store,
  pending: PendingNames,
  opts: UnpackThenRegisterOptions,
): Promise<{ unpacked: Array<UnpackResult & { discarded?: DiscardedLayer[] }>; previous: Array<{ name: string; target?: Descriptor }> }> {
  const verb = opts.verb ?? 'load';
  const unpacked: Array<UnpackResult & { discarded?: DiscardedLayer[] }> = [];
  const toDiscard: Array<{ name: string; platform?: string; entry: (typeof unpacked)[number] }> = [];
  const platforms = opts.platforms?.length ? opts.platforms.map((p) => formatPlatform(parsePlatform(p))) : [undefined];
  throwIfCancelled(verb);
  if (opts.unpack !== false) {
    for (const img of pending.images) {
      const name = img.names[0];
      if (!name) continue;
      const target: Descriptor = { mediaType: img.mediaType, digest: img.digest, size: img.size };
      for (const platform of platforms) {
        let u: UnpackResult;
        try {
          u = await unpackImage(store, name, { platform, lease: opts.lease, progress: opts.progress, limits: opts.limits, target });
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
        unpacked.push(entry);
        toDiscard.push({ name, platform, entry });
      }
    }
  }
  throwIfCancelled(verb);
  const previous = registerNames(store, pending.registrations, pending.needed, { lease: opts.lease, verb, also: pending.also });
  if (opts.discardLayers && toDiscard.length) {
    const dropCleanup = addCleanup(() => undoNames(store, previous));
    try {
      for (const d of toDiscard) d.entry.discarded = await discardLayers(store, d.name, { platform: d.platform, lease: opts.lease, progress: opts.progress, limits: opts.limits });
    } catch (e) {
      undoNames(store, previous);
      throw e;
    } finally {
      dropCleanup();
    }
  }
  return { unpacked, previous };
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
