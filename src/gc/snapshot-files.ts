import * as fs from 'node:fs';
import * as path from 'node:path';
import * as crypto from 'node:crypto';
import { parseTempOwner, tempOwnerTag } from '../leases/process';

/**
 * Where snapshot files live on disk, as GC and fsck need to know it:
 * committed snapshots at `ROOT/snapshots/<dir>` and work in progress under
 * `ROOT/snapshots/tmp/<owner tag>-…` (`tempOwnerTag()`: PID namespace, boot id, pid,
 * start time of the process that created it).
 */
export interface SnapshotFiles {
  readonly root: string;
  readonly tmpDir: string;
  /** Directory of a committed snapshot. */
  dirFor(chainId: string): string;
  /** Committed snapshot directories on disk, with the chainID each is for (undefined when the name is not one). */
  walkDirs(): Generator<{ chainId: string | undefined; path: string }>;
  /** Temp entries with the PID that created each (0 when the name carries none; informative: the sweeper parses the whole owner tag). */
  walkTemp(): Generator<{ path: string; pid: number }>;
  /** Atomically move a committed snapshot's directory out of the way; returns the new path (to delete), or undefined when absent. */
  moveToTrash(chainId: string): string | undefined;
  /** Same, for any entry directly under the snapshots directory. */
  moveToTrashPath(p: string): string | undefined;
}

export function snapshotFiles(store: { root: string }): SnapshotFiles {
  const root = path.join(store.root, 'snapshots');
  const tmpDir = path.join(root, 'tmp');
  const dirFor = (chainId: string) => path.join(root, chainId.replace(/^sha256:/, ''));
  return {
    root,
    tmpDir,
    dirFor,
    *walkDirs() {
      let names: string[] = [];
      try {
        names = fs.readdirSync(root);
      } catch {
        return;
      }
      for (const n of names.sort()) {
        // Only chainID-named entries are snapshots; anything else is not ours to judge.
        if (/^[a-f0-9]{64}$/.test(n)) yield { chainId: `sha256:${n}`, path: path.join(root, n) };
      }
    },
    *walkTemp() {
      let names: string[] = [];
      try {
        names = fs.readdirSync(tmpDir);
      } catch {
        return;
      }
      for (const n of names) {
        yield { path: path.join(tmpDir, n), pid: parseTempOwner(n)?.pid ?? 0 };
      }
    },
    moveToTrash(chainId: string) {
      return this.moveToTrashPath(dirFor(chainId));
    },
    moveToTrashPath(from: string) {
      fs.mkdirSync(tmpDir, { recursive: true });
      const to = path.join(tmpDir, `${tempOwnerTag()}-gc-${crypto.randomBytes(6).toString('hex')}`);
      try {
        fs.renameSync(from, to);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw e;
      }
      return to;
    },
  };
}
