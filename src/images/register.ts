/**
 * Registering the names of images whose content is in the store — the all-or-nothing tail of
 * `load` (src/archive/load.ts) and `pull` (src/registry/pull.ts).
 *
 * Invariants:
 * - Every name is registered in ONE write transaction (`registerNames`), after checking that
 *   every blob the names need is (still) in the store; `also` (pull: the blob sources) runs in
 *   that same transaction.
 * - Unpacking comes first, by descriptor (no name exists yet), so a command that fails, is
 *   interrupted (src/cancel) or killed (SIGKILL: no cleanup runs) before the transaction
 *   registers nothing and needs no undo. Until then the caller's lease holds the content and
 *   the snapshots (a process lease dies with its process; prune takes what it held).
 * - Only `--discard-layers` runs after the names: a failure there (or an interruption that
 *   cannot wind down in time) puts them back (`undoNames`).
 *
 * Loads no snapshot code until something is unpacked or discarded: `pull --no-unpack` and
 * `load --no-unpack` do not pay for the tar apply, the codecs or the GC marker.
 */
import type { Store } from '../store';
import type { ResourceHolder } from '../content';
import type { Progress } from '../progress';
import type { Limits } from '../limits';
import type * as SnapshotOps from '../snapshots/ops';
import type { UnpackResult, DiscardedLayer } from '../snapshots/ops';
import { formatPlatform, hostPlatform, parsePlatform } from '../platform';
import { MissingContentError, NotFoundError } from '../errors';
import { addCleanup, throwIfCancelled } from '../cancel';
import { Descriptor } from './types';

// The snapshot code (tar apply, codecs, the GC marker) on first use only.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const snapshotOps = (): typeof SnapshotOps => require('../snapshots/ops') as typeof SnapshotOps;

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
  /** Holds the content and snapshots until the names do: required (see the module comment). */
  lease: ResourceHolder;
  progress?: Progress;
  /** Command name for cancellation and error messages. */
  verb?: string;
  /** Warnings are appended here. */
  warnings: string[];
  /** Hostile-input limits for the unpack (src/limits). */
  limits?: Partial<Limits>;
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
          u = await snapshotOps().unpackImage(store, name, { platform, lease: opts.lease, progress: opts.progress, limits: opts.limits, target });
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
      for (const d of toDiscard) d.entry.discarded = await snapshotOps().discardLayers(store, d.name, { platform: d.platform, lease: opts.lease, progress: opts.progress, limits: opts.limits });
    } catch (e) {
      undoNames(store, previous);
      throw e;
    } finally {
      dropCleanup();
    }
  }
  return { unpacked, previous };
}

/**
 * Register `registrations` in ONE write transaction, after checking every blob of `needed`
 * is (still) in the store; `also` runs inside the same transaction. Returns what each name
 * pointed at before (for `undoNames`). Shared by `load`, `import` and `pull`.
 */
export function registerNames(
  store: Store,
  registrations: Array<{ name: string; target: Descriptor }>,
  needed: Descriptor[],
  opts: { lease?: ResourceHolder; verb?: string; also?: () => void } = {},
): Array<{ name: string; target?: Descriptor }> {
  const verb = opts.verb ?? 'load';
  return store.meta.write(() => {
    const missing = [...new Set(needed.map((d) => d.digest))].filter((dg) => !store.content.has(dg));
    if (missing.length) {
      throw new MissingContentError(`${missing.length} blob(s) vanished from the store during the ${verb} (pruned?); nothing ${verb === 'load' ? 'loaded' : 'registered'}`, missing);
    }
    const previous = registrations.map((r) => ({ name: r.name, target: store.images.get(r.name)?.target }));
    for (const r of registrations) store.images.put(r.name, r.target, opts.lease);
    opts.also?.();
    return previous;
  });
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
