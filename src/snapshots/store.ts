/**
 * The snapshot store: unpacked layers keyed by chainID under `ROOT/snapshots/<hex>`,
 * one row each in the `snapshots` table (parent chainID, diffID, size, reproducible).
 *
 * A snapshot directory holds only its layer's own changes:
 *   fs/            regular file data (and directories leading to it)
 *   index.gz       own entries' metadata, removed lower paths, opaque dirs (tree.ts)
 *   tarsplit.gz    exact-rebuild record (tarsplit.ts), when reproducible
 * Work happens in `ROOT/snapshots/tmp/<pid>-extract-<rand>` (the PID prefix lets GC
 * sweep what a dead process left); commit = rename + row in one write transaction, so
 * a chainID never names a half-applied snapshot.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as crypto from 'node:crypto';
import type * as ChildProcess from 'node:child_process';
import { Metadata } from '../metadata';
import { ResourceHolder } from '../content';
import { ImgtoolError, NotFoundError } from '../errors';
import { sha256, validateDigest } from '../digest';
import { parseTempOwner, processVerdict, tempOwnerTag } from '../leases/process';
import { removeTree, syncTreeFiles } from '../tar/fspath'; // not ../tar: the Store facade loads no tar reader or zlib
import { syncDir } from '../fsutil';

export interface SnapshotInfo {
  chainId: string;
  parent?: string;
  diffId: string;
  /** Bytes the snapshot stores (file data + index + record). */
  size: number;
  /** The layer can be rebuilt exactly from this snapshot. */
  reproducible: boolean;
  createdAt: number;
}

interface Row {
  chain_id: string;
  parent: string | null;
  diff_id: string;
  size: number;
  reproducible: number;
  created_at: number;
}

const fromRow = (r: Row): SnapshotInfo => ({
  chainId: r.chain_id,
  parent: r.parent ?? undefined,
  diffId: r.diff_id,
  size: r.size,
  reproducible: r.reproducible === 1,
  createdAt: r.created_at,
});

/** `ChainID(L0) = DiffID(L0)`, `ChainID(L0..Ln) = sha256(ChainID(L0..Ln-1) + " " + DiffID(Ln))`. */
export function chainIds(diffIds: string[]): string[] {
  const out: string[] = [];
  for (const d of diffIds) {
    validateDigest(d, 'diffID');
    out.push(out.length === 0 ? d : sha256(out[out.length - 1] + ' ' + d));
  }
  return out;
}

export function chainId(diffIds: string[]): string {
  if (!diffIds.length) throw new ImgtoolError('INVALID_ARGUMENT', 'chainID of no layers');
  return chainIds(diffIds)[diffIds.length - 1];
}

export class SnapshotStore {
  readonly dir: string;
  readonly tmpDir: string;

  constructor(root: string, private readonly meta: Metadata) {
    this.dir = path.join(root, 'snapshots');
    this.tmpDir = path.join(this.dir, 'tmp');
    this.sweepDead();
  }

  /**
   * Remove the work directories of processes proved dead (a killed load or unpack), so none
   * survives the next command. Best effort: a read-only store or a racing sweep is fine.
   */
  private sweepDead(): void {
    let names: string[];
    try {
      names = fs.readdirSync(this.tmpDir);
    } catch {
      return;
    }
    for (const n of names) {
      const owner = parseTempOwner(n);
      if (!owner || processVerdict(owner) !== 'dead') continue;
      try {
        removeTree(path.join(this.tmpDir, n));
      } catch {
        /* prune sweeps it */
      }
    }
  }

  /** Directory of a committed snapshot. */
  path(chainId: string): string {
    return path.join(this.dir, validateDigest(chainId, 'chainID').slice(7));
  }
  fsDir(chainId: string): string {
    return path.join(this.path(chainId), 'fs');
  }
  indexFile(chainId: string): string {
    return path.join(this.path(chainId), 'index.gz');
  }
  recordFile(chainId: string): string {
    return path.join(this.path(chainId), 'tarsplit.gz');
  }

  get(chainId: string): SnapshotInfo | undefined {
    const r = this.meta.db.prepare('SELECT * FROM snapshots WHERE chain_id = ?').get(chainId) as Row | undefined;
    return r ? fromRow(r) : undefined;
  }

  has(chainId: string): boolean {
    return !!this.meta.db.prepare('SELECT 1 FROM snapshots WHERE chain_id = ?').get(chainId);
  }

  list(): SnapshotInfo[] {
    return (this.meta.db.prepare('SELECT * FROM snapshots ORDER BY created_at, chain_id').all() as Row[]).map(fromRow);
  }

  /** Snapshots of a layer (any parent), reproducible ones first. */
  forDiffId(diffId: string): SnapshotInfo[] {
    return (this.meta.db.prepare('SELECT * FROM snapshots WHERE diff_id = ? ORDER BY reproducible DESC, created_at').all(diffId) as Row[]).map(fromRow);
  }

  /** Children of a snapshot. */
  children(chainId: string): SnapshotInfo[] {
    return (this.meta.db.prepare('SELECT * FROM snapshots WHERE parent = ? ORDER BY chain_id').all(chainId) as Row[]).map(fromRow);
  }

  /** The chain ending at `chainId`, bottom first. Throws if a link is missing. */
  chain(chainId: string): SnapshotInfo[] {
    const out: SnapshotInfo[] = [];
    let cur: string | undefined = chainId;
    while (cur) {
      const s = this.get(cur);
      if (!s) throw new NotFoundError(`snapshot ${cur} not found${cur !== chainId ? ` (parent in the chain of ${chainId}; run imgtool fsck)` : ''}`);
      out.push(s);
      cur = s.parent;
      if (out.length > 10000) throw new ImgtoolError('INTERNAL', `snapshot chain of ${chainId} loops`);
    }
    return out.reverse();
  }

  /** Create a work directory for preparing a snapshot. */
  prepare(kind = 'extract'): string {
    fs.mkdirSync(this.tmpDir, { recursive: true });
    const d = path.join(this.tmpDir, `${tempOwnerTag()}-${kind}-${crypto.randomBytes(8).toString('hex')}`);
    fs.mkdirSync(d);
    fs.mkdirSync(path.join(d, 'fs'));
    return d;
  }

  /**
   * Commit a prepared directory as `info.chainId`: data synced to disk, then rename +
   * row (+ lease) in one write transaction. If the snapshot exists already (another
   * process won), the work directory is removed and false is returned; the existing
   * snapshot is attached to the lease either way.
   */
  commit(work: string, info: Omit<SnapshotInfo, 'createdAt'>, lease?: ResourceHolder): boolean {
    syncTree(work);
    const final = this.path(info.chainId);
    const won = this.meta.write(() => {
      if (info.parent && !this.has(info.parent)) throw new ImgtoolError('PRECONDITION', `snapshot ${info.chainId}: parent ${info.parent} was removed while unpacking`);
      if (this.has(info.chainId)) {
        lease?.attach('snapshot', info.chainId);
        return false;
      }
      // A directory without a row is what a crash between rename and commit leaves.
      if (fs.existsSync(final)) removeTree(final);
      fs.renameSync(work, final);
      try {
        this.meta.db
          .prepare('INSERT INTO snapshots (chain_id, parent, diff_id, size, reproducible, created_at) VALUES (?, ?, ?, ?, ?, ?)')
          .run(info.chainId, info.parent ?? null, info.diffId, info.size, info.reproducible ? 1 : 0, Date.now());
        lease?.attach('snapshot', info.chainId);
      } catch (e) {
        try {
          fs.renameSync(final, work);
        } catch {
          /* GC sweeps it */
        }
        throw e;
      }
      return true;
    });
    if (!won) removeTree(work);
    else syncDir(this.dir);
    return won;
  }

  /** Attach an existing snapshot to a lease (false when it does not exist). */
  attach(chainId: string, lease: ResourceHolder): boolean {
    return this.meta.write(() => {
      if (!this.has(chainId)) return false;
      lease.attach('snapshot', chainId);
      return true;
    });
  }

  /**
   * Remove a snapshot's row and directory. For GC: call inside `meta.write` after
   * deciding nothing retains it (and no child snapshot exists).
   */
  deleteLocked(chainId: string): void {
    this.meta.db.prepare('DELETE FROM snapshots WHERE chain_id = ?').run(chainId);
    const p = this.path(chainId);
    if (!fs.existsSync(p)) return;
    fs.mkdirSync(this.tmpDir, { recursive: true });
    const trash = path.join(this.tmpDir, `${tempOwnerTag()}-rm-${crypto.randomBytes(6).toString('hex')}`);
    fs.renameSync(p, trash);
    removeTree(trash);
  }

  /** Remove a work directory (after a failed apply). */
  discard(work: string): void {
    removeTree(work);
  }
}

// node:child_process only when a snapshot is committed (the Store facade opens without it).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const childProcess = (): typeof ChildProcess => require('node:child_process') as typeof ChildProcess;

/** Flush a freshly written tree to disk (syncfs via `sync -f`; per-file fsync fallback). */
function syncTree(dir: string): void {
  const r = childProcess().spawnSync('sync', ['-f', dir], { stdio: 'ignore' });
  if (r.status === 0) return;
  syncTreeFiles(dir);
}

