import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Store } from '../store';
import type { ResourceHolder } from '../content';
import { Marker } from './mark';
import { LeaseInfo, parseTempOwner, Lease, MultiHolder } from '../leases';
import { snapshotFiles, SnapshotFiles } from './snapshot-files';
import { removeTree, walkTree } from '../tar';

export interface PruneOptions {
  /** Also remove snapshots that only images hold (except the only source of a retained layer). */
  all?: boolean;
  /** Compute and list, change nothing. */
  dryRun?: boolean;
  /** For tests: code to run between the phases, where another process could act. */
  hooks?: PruneHooks;
}

export interface PruneResult {
  dryRun: boolean;
  /** Blobs removed (rows and files; files without rows too). */
  blobs: Array<{ digest: string; size: number }>;
  /** Snapshots removed. */
  snapshots: Array<{ chainId: string; size: number }>;
  /** Variant rows removed. */
  variants: string[];
  /** Leases cleared: expired user leases and process leases whose process has exited. */
  leases: string[];
  /** Abandoned temp files and directories of dead processes. */
  tempFiles: Array<{ path: string; size: number }>;
  bytesFreed: number;
}

/** What the mark saw, from its read snapshot: only these may be swept (anything newer is kept). */
interface Survey {
  now: number;
  /** Leases not live at `now` (cleared by the sweep). */
  deadLeases: string[];
  /** Blob rows, snapshot rows and variant rows that existed at the mark. */
  blobRows: Map<string, number>;
  snapshotRows: Set<string>;
  variantRows: Map<string, string>;
  /** Blob files without a row, with their sizes. */
  strayFiles: Map<string, number>;
  /** Snapshot directories without a row (a crash between rename and commit). */
  strayDirs: Array<{ chainId: string | undefined; path: string; size: number }>;
}

interface Plan {
  blobs: Array<{ digest: string; size: number; hasRow: boolean }>;
  snapshots: Array<{ chainId: string; size: number }>;
  strayDirs: Survey['strayDirs'];
  variants: string[];
  leases: string[];
}

/** Blob files unlinked per write transaction in phase 3. */
const UNLINK_BATCH = 500;

/** Test hooks: run between the phases, where concurrent writers may act. */
export interface PruneHooks {
  /** Inside the mark's read transaction, after the roots are marked, before blob files are listed. */
  duringMark?: () => void;
  /** After the mark's read transaction, before the sweep's write transaction. */
  beforeSweep?: () => void;
}

/**
 * Mark and sweep, in the manner of containerd's GC, without holding the write lock for the
 * slow part:
 *
 * 1. Mark from a consistent read snapshot (a deferred transaction: a WAL snapshot, which
 *    blocks no writer and no reader): every root, every document read and verified, the
 *    blob files and snapshot directories listed.
 * 2. In one short `BEGIN IMMEDIATE` — the lock every blob commit, name and lease attach
 *    takes — re-validate and sweep the rows: the marker is brought up to date (roots
 *    named, moved or attached since, and documents that were absent, are marked; see
 *    `Marker`), and only what existed at the mark and is still unreferenced is swept.
 *    Blobs, snapshots and variant rows created since the mark are kept (a new snapshot
 *    keeps its parents), so nothing can become referenced between "it is garbage" and
 *    "it is gone".
 * 3. Files are removed after the rows, in further short write transactions that re-check
 *    each one is still unrecorded (a writer may legitimately re-create the same digest in
 *    between); a crash between the two leaves only files without rows, which the next
 *    prune or `fsck --repair` removes.
 */
export function prune(store: Store, opts: PruneOptions = {}): PruneResult {
  const dryRun = !!opts.dryRun;
  const all = !!opts.all;
  const snaps = snapshotFiles(store);
  const m = new Marker(store.meta.db, store.content);
  const survey = store.meta.read(() => surveyStore(store, m, snaps, opts.hooks));
  opts.hooks?.beforeSweep?.();
  const plan = dryRun
    ? store.meta.read(() => decide(store, m, survey, all))
    : store.meta.write(() => {
        const p = decide(store, m, survey, all);
        sweepRows(store, p);
        return p;
      });

  const result: PruneResult = {
    dryRun,
    blobs: plan.blobs.map((b) => ({ digest: b.digest, size: b.size })),
    snapshots: plan.snapshots,
    variants: plan.variants,
    leases: plan.leases,
    tempFiles: [],
    bytesFreed: 0,
  };

  if (!dryRun) {
    // Phase 3: files of what phase 2 removed, unless re-created meanwhile. The check and
    // the unlink need the lock (a writer renames and records under it), taken in short
    // batches so that other writers interleave.
    const hasRow = store.meta.db.prepare('SELECT 1 FROM blobs WHERE digest = ?');
    for (let i = 0; i < plan.blobs.length; i += UNLINK_BATCH) {
      store.meta.write(() => {
        for (const b of plan.blobs.slice(i, i + UNLINK_BATCH)) {
          if (!hasRow.get(b.digest)) unlinkQuiet(store.content.blobPath(b.digest));
        }
      });
    }
    const trash: string[] = [];
    store.meta.write(() => {
      const still = store.meta.db.prepare('SELECT 1 FROM snapshots WHERE chain_id = ?');
      for (const s of plan.snapshots) {
        if (still.get(s.chainId)) continue;
        const t = snaps.moveToTrash(s.chainId);
        if (t) trash.push(t);
      }
      for (const d of plan.strayDirs) {
        if (d.chainId && still.get(d.chainId)) continue;
        const t = d.chainId ? snaps.moveToTrash(d.chainId) : snaps.moveToTrashPath(d.path);
        if (t) trash.push(t);
      }
    });
    for (const t of trash) removeTree(t);
    store.content.syncDir();
  }

  result.tempFiles = [...plan.strayDirs.map((d) => ({ path: d.path, size: d.size })), ...sweepTemp(store, snaps, dryRun)];
  result.bytesFreed =
    result.blobs.reduce((n, b) => n + b.size, 0) +
    result.snapshots.reduce((n, s) => n + s.size, 0) +
    result.tempFiles.reduce((n, t) => n + t.size, 0);
  return result;
}

/** Live leases are roots; dead process leases and expired user leases are cleared. */
export function leaseLiveness(store: Store, now: number): { live: LeaseInfo[]; dead: string[] } {
  const leases = store.leases.list().map((l) => ({ l, live: store.leases.isLive(l, now) }));
  const live: LeaseInfo[] = leases.filter((x) => x.live).map((x) => x.l);
  const dead = leases.filter((x) => !x.live).map((x) => x.l.id);
  return { live, dead };
}

/** What retains blobs besides one manifest and one operation's own leases (see `markOthers`). */
export interface OtherReferences {
  /** Bring the mark up to date; call inside the write transaction that acts on `retainer`. */
  update(): void;
  /** Who else retains `digest` (e.g. "image x:1", "lease L"), or undefined when nothing does. */
  retainer(digest: string): string | undefined;
}

/**
 * "Who else references blob D", answered by the same marker as prune: every root (image
 * names, live leases) except the leases behind `holder` (the asking operation's own: its
 * process lease and `--lease`), where manifest `manifest`'s own layer references do not
 * count. The slow mark runs now, from a read snapshot; `update()` under the write lock
 * re-marks only what changed since, so the decision is taken under the lock.
 */
export function markOthers(store: Store, manifest: string, holder?: ResourceHolder): OtherReferences {
  const own = new Set<string>();
  const collect = (h: ResourceHolder | undefined): void => {
    if (h instanceof MultiHolder) h.holders.forEach(collect);
    else if (h instanceof Lease) own.add(h.id);
  };
  collect(holder);
  const m = new Marker(store.meta.db, store.content, { exceptLeases: own, exceptLayersOf: manifest });
  const now = Date.now();
  store.meta.read(() => m.markRoots(store, leaseLiveness(store, now).live, false));
  return {
    update: () => m.markRoots(store, leaseLiveness(store, now).live, true),
    retainer: (d) => (m.blobs.has(d) ? m.retainedBy.get(d) ?? 'another reference' : undefined),
  };
}

/**
 * Phase 1, in a read transaction: mark every root and list what exists. Slow on a large
 * store (every document read, a readdir of every blob, tree sizes) but blocks nobody.
 */
function surveyStore(store: Store, m: Marker, snaps: SnapshotFiles, hooks?: PruneHooks): Survey {
  const db = store.meta.db;
  const now = Date.now();
  const { live, dead } = leaseLiveness(store, now);
  m.markRoots(store, live, false);
  hooks?.duringMark?.();

  const blobRows = new Map((db.prepare('SELECT digest, size FROM blobs').all() as Array<{ digest: string; size: number }>).map((b) => [b.digest, b.size]));
  const snapshotRows = new Set((db.prepare('SELECT chain_id FROM snapshots').all() as Array<{ chain_id: string }>).map((r) => r.chain_id));
  const variantRows = new Map((db.prepare('SELECT digest, diff_id FROM variants').all() as Array<{ digest: string; diff_id: string }>).map((v) => [v.digest, v.diff_id]));

  // Files listed after the snapshot was taken: a file whose row is newer than the
  // snapshot looks row-less here and is re-checked under the lock.
  const strayFiles = new Map<string, number>();
  for (const f of store.content.walkFiles()) {
    if (blobRows.has(f.digest) || m.blobs.has(f.digest)) continue;
    try {
      strayFiles.set(f.digest, fs.statSync(f.path).size);
    } catch {
      continue;
    }
  }
  const strayDirs: Survey['strayDirs'] = [];
  for (const d of snaps.walkDirs()) {
    if (d.chainId && snapshotRows.has(d.chainId)) continue;
    strayDirs.push({ ...d, size: treeSize(d.path) });
  }
  return { now, deadLeases: dead, blobRows, snapshotRows, variantRows, strayFiles, strayDirs };
}

/**
 * Phase 2, under the write lock (or the read transaction of a dry run): bring the mark up
 * to date and decide what goes, among what the survey saw. SQL and the few documents that
 * are new since the survey only.
 */
function decide(store: Store, m: Marker, sv: Survey, all: boolean): Plan {
  const db = store.meta.db;
  m.markRoots(store, leaseLiveness(store, sv.now).live, true);

  // Snapshots kept: lease-held always; image-held unless --all; any created since the
  // mark, with its parents; and for every retained layer that no present blob can
  // produce, one snapshot that can rebuild it (with its parents), whatever chain it is in.
  const keepSnaps = new Set<string>(m.leaseSnapshots);
  if (!all) for (const c of m.imageSnapshots) keepSnaps.add(c);
  const snapRows = db.prepare('SELECT chain_id, diff_id, size FROM snapshots ORDER BY chain_id').all() as Array<{ chain_id: string; diff_id: string; size: number }>;
  for (const s of snapRows) if (!sv.snapshotRows.has(s.chain_id)) m.markChain(s.chain_id, keepSnaps, false);
  m.keepRebuildSources(keepSnaps);
  const snapshots = snapRows.filter((s) => sv.snapshotRows.has(s.chain_id) && !keepSnaps.has(s.chain_id)).map((s) => ({ chainId: s.chain_id, size: s.size }));
  const keptDiffIds = new Set(snapRows.filter((s) => keepSnaps.has(s.chain_id)).map((s) => s.diff_id));

  // Blobs: rows the survey saw that nothing marks now; files that still have no row.
  const blobs: Plan['blobs'] = [];
  for (const [digest, size] of [...sv.blobRows].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (!m.blobs.has(digest) && m.size(digest) !== undefined) blobs.push({ digest, size, hasRow: true });
  }
  for (const [digest, size] of sv.strayFiles) {
    if (!m.blobs.has(digest) && m.size(digest) === undefined) blobs.push({ digest, size, hasRow: false });
  }

  // Variant rows: keep while the blob is retained, or a kept snapshot of its diffID can
  // rebuild it; rows recorded since the mark are kept.
  const current = db.prepare('SELECT diff_id FROM variants WHERE digest = ?');
  const variants = [...sv.variantRows.keys()].sort().filter((d) => {
    const row = current.get(d) as { diff_id: string } | undefined;
    return row !== undefined && row.diff_id === sv.variantRows.get(d) && !m.blobs.has(d) && !keptDiffIds.has(row.diff_id);
  });

  // Directories listed as row-less whose snapshot was committed since are not strays.
  const hasSnap = db.prepare('SELECT 1 FROM snapshots WHERE chain_id = ?');
  const strayDirs = sv.strayDirs.filter((d) => !d.chainId || !hasSnap.get(d.chainId));
  return { blobs, snapshots, variants, leases: sv.deadLeases, strayDirs };
}

function sweepRows(store: Store, p: Plan): void {
  const db = store.meta.db;
  for (const id of p.leases) store.leases.remove(id);
  const delVariant = db.prepare('DELETE FROM variants WHERE digest = ?');
  for (const v of p.variants) delVariant.run(v);
  const delSnap = db.prepare('DELETE FROM snapshots WHERE chain_id = ?');
  // Children before parents is not required by the schema, but keep the order stable.
  for (const s of p.snapshots) delSnap.run(s.chainId);
  const delBlob = db.prepare('DELETE FROM blobs WHERE digest = ?');
  const delLabels = db.prepare('DELETE FROM content_labels WHERE digest = ?');
  for (const b of p.blobs) {
    delBlob.run(b.digest);
    delLabels.run(b.digest);
  }
}

function unlinkQuiet(p: string): void {
  try {
    fs.unlinkSync(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

/** Bytes of the files in a file or directory tree, walked iteratively at any depth (what vanishes meanwhile counts 0). */
export function treeSize(p: string): number {
  let n = 0;
  try {
    walkTree(p, '', { file: (_f, st) => (n += st.size) });
  } catch {
    /* part of it vanished or is unreadable: what was seen */
  }
  return n;
}

/** Newest mtime in a file or directory tree (iteratively, any depth); Infinity when part of it vanishes meanwhile (it is being changed). */
function newestMtime(p: string): number {
  let n = -Infinity;
  const see = (_f: Buffer, st: fs.Stats) => (n = Math.max(n, st.mtimeMs));
  try {
    walkTree(p, '', { file: see, dir: see });
  } catch {
    return Infinity;
  }
  return n === -Infinity ? Infinity : n; // -Infinity: absent
}

/**
 * A temp entry is named `<tempOwnerTag()>-…` (or `<pid>-…` by older versions). It is
 * abandoned when its owner is dead by the rule of process leases
 * (`LeaseManager.ownerIsDead`): proved dead in our PID namespace, or — another
 * namespace, a hidden /proc entry, an older name without one — when neither the
 * entry (its newest mtime) nor a heartbeat of that owner changed within the bound.
 * Entries of other names are never judged.
 */
export function tempEntryAbandoned(store: Store, p: string, now = Date.now(), leases: LeaseInfo[] = store.leases.list()): boolean {
  const owner = parseTempOwner(path.basename(p));
  if (!owner) return false;
  return store.leases.ownerIsDead(owner, () => newestMtime(p), now, leases);
}

function sweepTemp(store: Store, snaps: SnapshotFiles, dryRun: boolean): Array<{ path: string; size: number }> {
  const out: Array<{ path: string; size: number }> = [];
  const now = Date.now();
  const leases = store.leases.list();
  const entries: Array<{ path: string }> = [...store.content.walkIngest(), ...snaps.walkTemp()];
  for (const e of entries) {
    if (!tempEntryAbandoned(store, e.path, now, leases)) continue;
    const size = treeSize(e.path);
    if (!dryRun) removeTree(e.path);
    out.push({ path: e.path, size });
  }
  for (const f of store.leases.reapHeartbeats(now, dryRun)) out.push({ path: f, size: 0 });
  return out;
}
