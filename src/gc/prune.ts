import * as fs from 'node:fs';
import * as path from 'node:path';
import { Store } from '../store';
import { Marker } from './mark';
import { LeaseInfo, parseTempOwner } from '../leases';
import { snapshotFiles, SnapshotFiles } from './snapshot-files';

export interface PruneOptions {
  /** Also remove snapshots that only images hold (except the only source of a retained layer). */
  all?: boolean;
  /** Compute and list, change nothing. */
  dryRun?: boolean;
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

interface Plan {
  blobs: Array<{ digest: string; size: number; hasRow: boolean }>;
  snapshots: Array<{ chainId: string; size: number }>;
  /** Snapshot directories without a row (a crash between rename and commit). */
  strayDirs: Array<{ chainId: string | undefined; path: string; size: number }>;
  variants: string[];
  leases: string[];
}

/**
 * Mark and sweep. The mark and the database part of the sweep run inside ONE
 * `BEGIN IMMEDIATE` transaction — the lock every blob commit takes, and in which a
 * writer that finds a blob present attaches it to its lease — so nothing can become
 * referenced between "it is garbage" and "it is gone". Files are removed after the rows,
 * in a second short write transaction that re-checks each one is still unreferenced
 * (a writer may legitimately re-create the same digest in between); a crash between the
 * two leaves only files without rows, which the next prune or `fsck --repair` removes.
 */
export function prune(store: Store, opts: PruneOptions = {}): PruneResult {
  const dryRun = !!opts.dryRun;
  const snaps = snapshotFiles(store);
  const plan = dryRun ? store.meta.read(() => mark(store, snaps, !!opts.all)) : store.meta.write(() => {
    const p = mark(store, snaps, !!opts.all);
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
    // Phase 2: files of what phase 1 removed, unless re-created meanwhile.
    const trash: string[] = [];
    store.meta.write(() => {
      for (const b of plan.blobs) {
        if (!store.content.has(b.digest)) unlinkQuiet(store.content.blobPath(b.digest));
      }
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
    for (const t of trash) fs.rmSync(t, { recursive: true, force: true });
    store.content.syncDir();
  }

  result.tempFiles = [...plan.strayDirs.map((d) => ({ path: d.path, size: d.size })), ...sweepTemp(store, snaps, dryRun)];
  result.bytesFreed =
    result.blobs.reduce((n, b) => n + b.size, 0) +
    result.snapshots.reduce((n, s) => n + s.size, 0) +
    result.tempFiles.reduce((n, t) => n + t.size, 0);
  return result;
}

function mark(store: Store, snaps: SnapshotFiles, all: boolean): Plan {
  const db = store.meta.db;
  const m = new Marker(db, store.content);
  const now = Date.now();

  // Leases: live ones are roots; dead process leases and expired user leases are cleared.
  const leases = store.leases.list().map((l) => ({ l, live: store.leases.isLive(l, now) }));
  const liveLeases: LeaseInfo[] = leases.filter((x) => x.live).map((x) => x.l);
  const dead = leases.filter((x) => !x.live).map((x) => x.l.id);

  // Roots 1: image names.
  for (const img of store.images.list()) m.markImage(img.name, img.target, false);

  // Roots 2: what live leases hold.
  for (const l of liveLeases) {
    for (const r of store.leases.resources(l.id)) {
      if (r.kind === 'content') m.markLeasedContent(r.ref, l.id);
      else if (r.kind === 'snapshot') m.markLeasedSnapshot(r.ref);
      else if (r.kind === 'image') {
        const img = store.images.get(r.ref);
        if (img) m.markImage(img.name, img.target, true);
      }
    }
  }

  // Snapshots kept: lease-held always; image-held unless --all, where only those that
  // are the only remaining source of a retained layer (its blob, and every other
  // surviving blob of the same diffID, absent) are kept, with their parents.
  const keepSnaps = new Set<string>(m.leaseSnapshots);
  if (!all) for (const c of m.imageSnapshots) keepSnaps.add(c);
  else {
    const present = (d: string) => m.blobs.has(d) && store.content.has(d);
    const variantsOf = db.prepare('SELECT digest FROM variants WHERE diff_id = ?');
    for (const layer of m.layers) {
      if (!layer.chainId || !layer.diffId || !m.imageSnapshots.has(layer.chainId)) continue;
      if (present(layer.digest) || present(layer.diffId)) continue;
      const other = (variantsOf.all(layer.diffId) as Array<{ digest: string }>).some((v) => present(v.digest));
      if (other) continue;
      m.markChain(layer.chainId, keepSnaps, false);
    }
  }

  const snapRows = db.prepare('SELECT chain_id, diff_id, size FROM snapshots ORDER BY chain_id').all() as Array<{ chain_id: string; diff_id: string; size: number }>;
  const snapshots = snapRows.filter((s) => !keepSnaps.has(s.chain_id)).map((s) => ({ chainId: s.chain_id, size: s.size }));
  const keptDiffIds = new Set(snapRows.filter((s) => keepSnaps.has(s.chain_id)).map((s) => s.diff_id));

  // Blobs: rows not marked, and files without rows not marked.
  const blobRows = db.prepare('SELECT digest, size FROM blobs ORDER BY digest').all() as Array<{ digest: string; size: number }>;
  const rowSet = new Set(blobRows.map((b) => b.digest));
  const blobs: Plan['blobs'] = blobRows.filter((b) => !m.blobs.has(b.digest)).map((b) => ({ ...b, hasRow: true }));
  for (const f of store.content.walkFiles()) {
    if (rowSet.has(f.digest) || m.blobs.has(f.digest)) continue;
    let size = 0;
    try {
      size = fs.statSync(f.path).size;
    } catch {
      continue;
    }
    blobs.push({ digest: f.digest, size, hasRow: false });
  }

  // Variant rows: keep while the blob survives, a retained manifest references it, or a
  // retained snapshot of its diffID can rebuild it.
  const variantRows = db.prepare('SELECT digest, diff_id FROM variants ORDER BY digest').all() as Array<{ digest: string; diff_id: string }>;
  const variants = variantRows
    .filter((v) => !m.blobs.has(v.digest) && !keptDiffIds.has(v.diff_id))
    .map((v) => v.digest);

  // Snapshot directories without rows: a commit renames and inserts in one transaction,
  // so under this lock none is in flight.
  const snapSet = new Set(snapRows.map((r) => r.chain_id));
  const strayDirs: Plan['strayDirs'] = [];
  for (const d of snaps.walkDirs()) {
    if (d.chainId && snapSet.has(d.chainId)) continue;
    strayDirs.push({ ...d, size: treeSize(d.path) });
  }

  return { blobs, snapshots, variants, leases: dead, strayDirs };
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

/** Size of a file or directory tree (best effort). */
export function treeSize(p: string): number {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(p);
  } catch {
    return 0;
  }
  if (!st.isDirectory()) return st.size;
  let n = 0;
  let names: string[] = [];
  try {
    names = fs.readdirSync(p);
  } catch {
    return 0;
  }
  for (const c of names) n += treeSize(path.join(p, c));
  return n;
}

/** Newest mtime in a file or directory tree; Infinity when part of it vanishes meanwhile (it is being changed). */
function newestMtime(p: string): number {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(p);
  } catch {
    return Infinity;
  }
  let n = st.mtimeMs;
  if (!st.isDirectory()) return n;
  let names: string[] = [];
  try {
    names = fs.readdirSync(p);
  } catch {
    return n;
  }
  for (const c of names) n = Math.max(n, newestMtime(path.join(p, c)));
  return n;
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
    if (!dryRun) fs.rmSync(e.path, { recursive: true, force: true });
    out.push({ path: e.path, size });
  }
  for (const f of store.leases.reapHeartbeats(now, dryRun)) out.push({ path: f, size: 0 });
  return out;
}
