import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Store, LeaseInfo } from '../../../src';
import { acquireProcessLease } from '../../../src/leases';
import { processVerdict, selfIdentity, tempOwnerTag, parseTempOwner, ProcReader, ProcessIdentity } from '../../../src/leases/process';
import { systemProc } from '../../../src/leases/process';
import { prune } from '../../../src/gc';
import { tmpDir, rmrf } from '../../helpers/cli';

const MIN = 60_000;

function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(r.stdout.toString());
}

/** The real /proc with some PIDs hidden as `hidepid` hides other users' processes. */
function hidepid(mode: 'invisible' | 'unreadable', hidden: Set<number>, kill: 'exists' | 'gone' = 'exists'): ProcReader {
  return {
    ...systemProc,
    readStat: (pid) => (hidden.has(pid) ? (mode === 'invisible' ? 'gone' : 'unreadable') : systemProc.readStat(pid)),
    signal: (pid) => (hidden.has(pid) ? kill : systemProc.signal(pid)),
  };
}

describe('process liveness rule', () => {
  const me = selfIdentity();

  it('our own identity is alive; the same PID number in another namespace is not us', () => {
    expect(processVerdict(me)).toBe('alive');
    expect(processVerdict({ ...me, ns: String(Number(me.ns) + 1) })).toBe('unknown');
    expect(processVerdict({ ...me, ns: String(Number(me.ns) + 1), start: String(Number(me.start) + 1) })).toBe('unknown');
    // Same namespace, same PID, another start time: a previous holder of our PID, dead.
    expect(processVerdict({ ...me, start: String(Number(me.start) + 1) })).toBe('dead');
    expect(processVerdict({ ...me, pid: deadPid() })).toBe('dead');
  });

  it('cannot prove anything across boots, without a namespace, or when /proc is not our namespace', () => {
    const pid = deadPid();
    expect(processVerdict({ ...me, pid, boot: '00000000-0000-0000-0000-000000000000' })).toBe('unknown');
    expect(processVerdict({ ns: '', boot: '', pid, start: '' })).toBe('unknown');
    expect(processVerdict({ ...me, pid }, { ...systemProc, procIsOurs: () => false })).toBe('unknown');
    expect(processVerdict({ ...me, pid }, { ...systemProc, pidNamespace: () => '' })).toBe('unknown');
  });

  it('under hidepid an invisible or unreadable /proc entry is not dead unless kill(pid, 0) says ESRCH', () => {
    const other: ProcessIdentity = { ...me, pid: 1, start: '1' };
    for (const mode of ['invisible', 'unreadable'] as const) {
      expect(processVerdict(other, hidepid(mode, new Set([1])))).toBe('unknown');
      expect(processVerdict(other, hidepid(mode, new Set([1]), 'gone'))).toBe('dead');
    }
  });

  it('temp-name owner tags are filesystem-safe and parse back to the same identity; older names have a PID only', () => {
    const t = tempOwnerTag();
    expect(t).toMatch(/^p\d+_[0-9a-f]{32}_\d+_\d+$/);
    expect(parseTempOwner(`${t}-extract-0123abcd`)).toEqual(me);
    expect(parseTempOwner(`${tempOwnerTag({ ns: '', boot: '', pid: 42, start: '' })}-x`)).toEqual({ ns: '', boot: '', pid: 42, start: '' });
    expect(parseTempOwner('1234-abcdef')).toEqual({ ns: '', boot: '', pid: 1234, start: '' });
    expect(parseTempOwner('notes.txt')).toBeUndefined();
    expect(parseTempOwner('p12_zz_1_1-x')).toBeUndefined();
  });
});

describe('process leases and temp entries seen from another process', () => {
  let dir: string;
  let store: Store;
  beforeEach(() => {
    dir = tmpDir();
    store = Store.open(dir);
  });
  afterEach(() => {
    jest.restoreAllMocks();
    store.close();
    rmrf(dir);
  });

  function insertLease(id: string, owner: ProcessIdentity, beatAt: number | undefined, createdAt = Date.now()): LeaseInfo {
    store.meta.db
      .prepare('INSERT INTO leases (id, labels, created_at, expires_at, pid, pid_start) VALUES (?, NULL, ?, NULL, ?, ?)')
      .run(id, createdAt, owner.pid, `${owner.boot}:${owner.start}:${owner.ns}`);
    if (beatAt !== undefined) {
      const f = path.join(dir, 'leases', id);
      fs.mkdirSync(path.dirname(f), { recursive: true });
      fs.writeFileSync(f, `${owner.pid}\n${owner.boot}:${owner.start}:${owner.ns}\n`);
      fs.utimesSync(f, beatAt / 1000, beatAt / 1000);
    }
    return store.leases.get(id)!;
  }

  it('a hidepid-hidden process of our namespace is live while its heartbeat is fresh, dead once stale', () => {
    const other: ProcessIdentity = { ...selfIdentity(), pid: 1, start: '1' };
    store.leases.setLiveness({ proc: hidepid('invisible', new Set([1])) });
    const fresh = insertLease('fresh', other, Date.now());
    const stale = insertLease('stale', { ...other, start: '2' }, Date.now() - 11 * MIN, Date.now() - 11 * MIN);
    expect(store.leases.isLive(fresh)).toBe(true);
    expect(store.leases.isLive(stale)).toBe(false);
    expect(prune(store).leases).toEqual(['stale']);
  });

  it('a lease without a heartbeat file (older imgtool) counts its creation as its last heartbeat, unless proved alive', () => {
    const otherNs = { ...selfIdentity(), ns: String(Number(selfIdentity().ns) + 1) };
    expect(store.leases.isLive(insertLease('new', otherNs, undefined))).toBe(true);
    expect(store.leases.isLive(insertLease('old', { ...otherNs, start: '3' }, undefined, Date.now() - 11 * MIN))).toBe(false);
    expect(store.leases.isLive(insertLease('old-but-me', selfIdentity(), undefined, Date.now() - 11 * MIN))).toBe(true);
  });

  it('the bound is injectable: a shorter bound reclaims sooner', () => {
    const otherNs = { ...selfIdentity(), ns: String(Number(selfIdentity().ns) + 1) };
    const l = insertLease('x', otherNs, Date.now() - 2 * MIN, Date.now() - 2 * MIN);
    expect(store.leases.isLive(l)).toBe(true);
    store.leases.setLiveness({ boundMs: MIN });
    expect(store.leases.isLive(l)).toBe(false);
  });

  it('heartbeat files left without a lease row are reaped once their owner is dead, kept while it lives', () => {
    const hb = path.join(dir, 'leases');
    fs.mkdirSync(hb, { recursive: true });
    const me = selfIdentity();
    const write = (name: string, o: ProcessIdentity, at: number) => {
      fs.writeFileSync(path.join(hb, name), `${o.pid}\n${o.boot}:${o.start}:${o.ns}\n`);
      fs.utimesSync(path.join(hb, name), at / 1000, at / 1000);
    };
    write('process-dead', { ...me, pid: deadPid() }, Date.now());
    write('process-other-fresh', { ...me, ns: String(Number(me.ns) + 1) }, Date.now());
    write('process-other-stale', { ...me, ns: String(Number(me.ns) + 1) }, Date.now() - 11 * MIN);
    write('process-mine-old', me, Date.now() - 11 * MIN);
    fs.writeFileSync(path.join(hb, 'README'), 'not a heartbeat');
    const res = prune(store);
    expect(res.tempFiles.map((t) => path.basename(t.path)).sort()).toEqual(['process-dead', 'process-other-stale']);
    expect(fs.readdirSync(hb).sort()).toEqual(['README', 'process-mine-old', 'process-other-fresh']);
  });
});

describe('the holder side', () => {
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

  it('renews its heartbeat from a timer well inside the bound, and stops when released', async () => {
    store.leases.setLiveness({ boundMs: 2000 }); // heartbeat every 100 ms
    const lease = acquireProcessLease(store);
    const f = lease.heartbeatFile;
    const back = (Date.now() - 1500) / 1000;
    fs.utimesSync(f, back, back);
    await new Promise((r) => setTimeout(r, 400));
    expect(Date.now() - fs.statSync(f).mtimeMs).toBeLessThan(400);
    expect(store.leases.isLive(store.leases.get(lease.id)!)).toBe(true);
    lease.release();
    expect(fs.existsSync(f)).toBe(false);
  });

  it('a lease whose event loop stalled past the margin stays expired even after its timer runs again', async () => {
    store.leases.setLiveness({ boundMs: 1000 });
    const lease = acquireProcessLease(store);
    const until = Date.now() + 900; // more than 80 % of the bound without a tick
    while (Date.now() < until) {
      /* blocked */
    }
    await new Promise((r) => setTimeout(r, 150));
    expect(lease.expiredReason).toMatch(/no heartbeat for \d+ s/);
    await expect(store.content.ingestBuffer(Buffer.from('late'), { lease })).rejects.toThrow(/expired/);
    expect(store.content.list()).toEqual([]);
    lease.release();
  });

  it('temp entries created by this process carry its identity', async () => {
    const work = store.snapshots.prepare();
    expect(parseTempOwner(path.basename(work))).toEqual(selfIdentity());
    const w = store.content.writer();
    await new Promise<void>((r) => w.write(Buffer.from('half'), () => r()));
    const names = fs.readdirSync(store.content.ingestDir);
    expect(names).toHaveLength(1);
    expect(parseTempOwner(names[0])).toEqual(selfIdentity());
    await w.abort();
    // and prune, running in this very process, keeps them however old.
    const old = (Date.now() - 60 * MIN) / 1000;
    fs.utimesSync(work, old, old);
    expect(prune(store).tempFiles).toEqual([]);
    store.snapshots.discard(work);
  });
});
