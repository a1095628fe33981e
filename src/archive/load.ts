import type { Store } from '../store';
import { dropUnretained, prepareImport, ImportOptions, ImportResult } from './import';
import { ArchiveInputSource } from './input';
import type { UnpackResult, DiscardedLayer } from '../snapshots';
import { withCommandLease } from '../leases';
import { unpackThenRegister } from '../images/register';

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
 * transaction (`unpackThenRegister`, src/images/register.ts): a load that fails, is
 * interrupted or is killed (SIGKILL: no cleanup runs) before that registers nothing. Until
 * then the content and the snapshots are held by the load's lease (a process lease dies with
 * its process; prune takes what it held). Then every file this load ingested that no image
 * references is dropped (not kept: a junk file in an archive does not grow the store); a
 * failed load drops everything it ingested that nothing else retains.
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
