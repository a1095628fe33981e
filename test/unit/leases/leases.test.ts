import { spawnSync } from 'node:child_process';
import { Store, sha256 } from '../../../src';
import { withCommandLease, acquireProcessLease, parseDuration, leaseIsLive } from '../../../src/leases';
import { isProcessAlive, processStartId } from '../../../src/leases/process';
import { parseProcStat } from '../../../src/leases/process';
import { tmpDir, rmrf } from '../../helpers/cli';

describe('leases', () => {
  let dir: string;
  let store: Store;
  beforeEach(() => {
    dir = tmpDir();
    store = Store.open(dir);
  });
  afterEach(() => {
    store.close();
    rmrf(dir);
  });

  it('creates, lists, gets and removes user leases', () => {
    const a = store.leases.create({ id: 'keep-me', labels: { purpose: 'test' } });
    const b = store.leases.create({ expiresInMs: 60_000 });
    expect(a.id).toBe('keep-me');
    expect(b.id).toMatch(/^lease-/);
    const ls = store.leases.list();
    expect(ls.map((l) => l.id).sort()).toEqual(['keep-me', b.id].sort());
    const ga = store.leases.get('keep-me')!;
    expect(ga.type).toBe('user');
    expect(ga.labels).toEqual({ purpose: 'test' });
    expect(ga.expiresAt).toBeUndefined();
    const gb = store.leases.get(b.id)!;
    expect(gb.expiresAt! - gb.createdAt).toBe(60_000);
    expect(() => store.leases.create({ id: 'keep-me' })).toThrow(/already exists/);
    expect(() => store.leases.create({ id: 'bad id!' })).toThrow(/invalid lease id/);
    expect(store.leases.remove('keep-me')).toBe(true);
    expect(store.leases.remove('keep-me')).toBe(false);
    expect(store.leases.get('keep-me')).toBeUndefined();
  });

  it('attaches resources inside the caller transaction, and rolls back with it', () => {
    const l = store.leases.create({ id: 'l1' });
    l.attach('content', sha256('a'));
    l.attach('content', sha256('a'));
    l.attach('image', 'docker.io/library/x:1');
    expect(() =>
      store.meta.write(() => {
        l.attach('snapshot', sha256('chain'));
        throw new Error('rollback');
      }),
    ).toThrow('rollback');
    expect(l.resources()).toEqual([
      { kind: 'content', ref: sha256('a') },
      { kind: 'image', ref: 'docker.io/library/x:1' },
    ]);
    store.leases.remove('l1');
    expect(store.meta.db.prepare('SELECT COUNT(*) AS n FROM lease_resources').get()).toEqual({ n: 0 });
    expect(() => l.attach('content', sha256('b'))).toThrow(/no longer exists/);
  });

  it('content writer attaches committed and already-present blobs to the lease', async () => {
    const l = store.leases.create({ id: 'w' });
    const data = Buffer.from('blob');
    await store.content.ingestBuffer(data, { digest: sha256(data), size: data.length });
    expect(l.resources()).toEqual([]);
    await store.content.ingestBuffer(data, { digest: sha256(data), size: data.length, lease: l });
    expect(l.resources()).toEqual([{ kind: 'content', ref: sha256(data) }]);
    const d2 = Buffer.from('other');
    await store.content.ingestBuffer(d2, { lease: l });
    expect(l.resources().map((r) => r.ref)).toContain(sha256(d2));
  });

  it('expired leases are not live and cannot be used by commands', async () => {
    store.leases.create({ id: 'soon', expiresInMs: 1 });
    await new Promise((r) => setTimeout(r, 10));
    expect(leaseIsLive(store.leases.get('soon')!)).toBe(false);
    await expect(withCommandLease(store, 'soon', async () => 1)).rejects.toThrow(/lease "soon" is no longer live: it expired/);
    await expect(withCommandLease(store, 'nope', async () => 1)).rejects.toThrow(/lease "nope" not found/);
    // Nothing was left behind by the failed calls.
    expect(store.leases.list().map((l) => l.id)).toEqual(['soon']);
  });

  it('withCommandLease holds a process lease for the duration and attaches to the user lease too', async () => {
    store.leases.create({ id: 'user' });
    const digest = await withCommandLease(store, 'user', async (holder) => {
      const procs = store.leases.list().filter((l) => l.type === 'process');
      expect(procs).toHaveLength(1);
      expect(procs[0].pid).toBe(process.pid);
      expect(leaseIsLive(procs[0])).toBe(true);
      const info = await store.content.ingestBuffer(Buffer.from('x'), { lease: holder });
      expect(store.leases.resources(procs[0].id)).toEqual([{ kind: 'content', ref: info.digest }]);
      return info.digest;
    });
    expect(store.leases.list().map((l) => l.id)).toEqual(['user']);
    expect(store.leases.resources('user')).toEqual([{ kind: 'content', ref: digest }]);
  });

  it('releases the process lease when the work fails', async () => {
    await expect(withCommandLease(store, undefined, async () => {
      throw new Error('boom');
    })).rejects.toThrow('boom');
    expect(store.leases.list()).toEqual([]);
  });

  it('a process lease is alive exactly while its process runs, and a reused PID does not count', () => {
    const p = acquireProcessLease(store);
    const info = p.info()!;
    expect(info.type).toBe('process');
    expect(info.pidStart).toBe(processStartId(process.pid));
    expect(leaseIsLive(info)).toBe(true);
    const [boot, ticks, ns] = info.pidStart!.split(':');
    expect(boot).toMatch(/^[0-9a-f-]{36}$/);
    expect(ticks).toMatch(/^\d+$/);
    expect(ns).toMatch(/^\d+$/);
    // Same PID, different start time: another process.
    expect(isProcessAlive(process.pid, `${boot}:${Number(ticks) + 1}:${ns}`)).toBe(false);
    // Recorded under another boot id: nothing can be proved from here (only its heartbeat
    // decides, see heartbeat.test.ts).
    expect(isProcessAlive(process.pid, `00000000-0000-0000-0000-000000000000:${ticks}:${ns}`)).toBe(true);
    // Recorded in another PID namespace (another container): cannot be judged from here, kept.
    expect(isProcessAlive(999999, `${boot}:1:${Number(ns) + 1}`)).toBe(true);
    expect(isProcessAlive(999999, `${boot}:1:${ns}`)).toBe(false);
    // A process that has exited.
    const child = spawnSync(process.execPath, ['-e', 'console.log(process.pid)']);
    const deadPid = Number(child.stdout.toString().trim());
    expect(isProcessAlive(deadPid, `${boot}:1:${ns}`)).toBe(false);
    // Without a namespace (an older record) nothing is proved.
    expect(isProcessAlive(deadPid, undefined)).toBe(true);
    p.release();
    p.release();
    expect(store.leases.get(info.id)).toBeUndefined();
  });

  it('releases process leases on normal exit of the process', () => {
    const script = `
      const { Store } = require(${JSON.stringify(require.resolve('../../../dist/src'))});
      const { acquireProcessLease } = require(${JSON.stringify(require.resolve('../../../dist/src/leases'))});
      const s = Store.open(${JSON.stringify(dir)});
      acquireProcessLease(s);
      console.log(s.leases.list().length);
    `;
    const r = spawnSync(process.execPath, ['-e', script]);
    expect(r.stderr.toString()).toBe('');
    expect(r.stdout.toString().trim()).toBe('1');
    expect(store.leases.list()).toEqual([]);
  });

  it('parses /proc stat with spaces and parentheses in the command name', () => {
    const fields = Array.from({ length: 50 }, (_, i) => String(i + 3));
    fields[0] = 'S';
    const st = parseProcStat(`123 (a) b (c)) ${fields.join(' ')}`)!;
    expect(st.state).toBe('S');
    expect(st.startTicks).toBe('22');
  });

  it('parses durations', () => {
    expect(parseDuration('10m')).toBe(600_000);
    expect(parseDuration('24h')).toBe(86_400_000);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('90s')).toBe(90_000);
    expect(parseDuration('7d')).toBe(7 * 86_400_000);
    for (const bad of ['', 'abc', '10x', '-5m', '0s', '10m foo']) expect(() => parseDuration(bad)).toThrow(/invalid duration/);
  });
});
