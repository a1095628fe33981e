import * as path from 'node:path';
import Database from 'better-sqlite3';
import { Store } from '../../src';
import { runCli, tmpDir, rmrf, CliResult } from '../helpers/cli';
import { layer, makeImage } from '../unit/gc/fixture';

/**
 * Issue 10 item 13: read-only commands must not need the write lock. `Store.open` runs
 * migrations only when the schema is behind, so while another process holds the lock
 * (a long prune, a big load), `images` and friends still answer.
 */
describe('read-only commands while another process holds the write lock (CLI)', () => {
  let dir: string;
  let root: string;
  beforeEach(async () => {
    dir = tmpDir('imgtool-rolock-');
    root = path.join(dir, 'store');
    const s = Store.open(root);
    try {
      await makeImage(s, 'docker.io/library/app:1', [layer('rolock')]);
    } finally {
      s.close();
    }
  });
  afterEach(() => rmrf(dir));

  /** Run while `db` holds BEGIN IMMEDIATE; give up waiting after `ms` (then release the lock and let it end). */
  async function underLock(args: string[], ms = 8000): Promise<{ r: CliResult | 'timeout'; elapsed: number }> {
    const holder = new Database(path.join(root, 'metadata.db'));
    holder.exec('BEGIN IMMEDIATE');
    const t0 = Date.now();
    const run = runCli(args, { root });
    let timer: NodeJS.Timeout | undefined;
    const r = await Promise.race([run, new Promise<'timeout'>((res) => (timer = setTimeout(() => res('timeout'), ms)))]);
    const elapsed = Date.now() - t0;
    clearTimeout(timer);
    holder.exec('ROLLBACK');
    holder.close();
    await run;
    return { r, elapsed };
  }

  it('images, snapshots and lease ls answer at once', async () => {
    for (const args of [['images', '--json'], ['snapshots', '--json'], ['lease', 'ls', '--json']]) {
      const { r, elapsed } = await underLock(args);
      expect({ args, r: r === 'timeout' ? r : { code: r.code, stderr: r.stderr } }).toEqual({ args, r: { code: 0, stderr: '' } });
      expect(elapsed).toBeLessThan(8000);
    }
    const { r } = await underLock(['images', '--json']);
    expect(JSON.parse((r as CliResult).stdout).map((x: { name: string }) => x.name)).toEqual(['docker.io/library/app:1']);
  }, 60_000);

  it('a newer schema is refused without waiting for the lock; a new store is created and migrated', async () => {
    const db = new Database(path.join(root, 'metadata.db'));
    db.exec('UPDATE schema_version SET version = 99');
    db.close();
    const newer = await underLock(['images']);
    expect(newer.r).not.toBe('timeout');
    expect((newer.r as CliResult).stderr).toMatch(/^imgtool: error: store schema version 99 is newer than this imgtool supports \(\d+\); upgrade imgtool\n$/);
    // A new store: the migration takes the lock (free here) and runs.
    const fresh = path.join(dir, 'fresh');
    expect((await runCli(['images', '--json'], { root: fresh })).stdout.trim()).toBe('[]');
    const s = Store.open(fresh);
    try {
      expect(s.meta.schemaVersion).toBeGreaterThan(0);
    } finally {
      s.close();
    }
  }, 60_000);
});
