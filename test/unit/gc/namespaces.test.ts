import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Store } from '../../../src';
import { processStartId, tempOwnerTag } from '../../../src/leases/process';
import { prune } from '../../../src/gc';
import { tmpDir, rmrf } from '../../helpers/cli';

/**
 * Two containers sharing one store volume: the other one's PID namespace is simulated
 * by lease rows and temp names carrying another namespace id and a live-looking PID.
 */
const MIN = 60_000;
const BOUND = 10 * MIN; // the documented heartbeat bound

function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(r.stdout.toString());
}

/** Temp-name owner tag of a (possibly simulated) process. */
function tag(ns: string, boot: string, pid: number, start: string): string {
  return tempOwnerTag({ ns, boot, pid, start });
}

function setMtime(p: string, ms: number): void {
  fs.utimesSync(p, ms / 1000, ms / 1000);
}

describe('prune across PID namespaces', () => {
  let dir: string;
  let store: Store;
  let boot: string;
  let ticks: string;
  let ns: string;
  let otherNs: string;
  beforeEach(() => {
    dir = tmpDir();
    store = Store.open(dir);
    [boot, ticks, ns] = processStartId(process.pid)!.split(':');
    otherNs = String(Number(ns) + 1);
  });
  afterEach(() => {
    store.close();
    rmrf(dir);
  });

  function insertProcessLease(id: string, pid: number, pidStart: string, createdAt = Date.now()): void {
    store.meta.db.prepare('INSERT INTO leases (id, labels, created_at, expires_at, pid, pid_start) VALUES (?, NULL, ?, NULL, ?, ?)').run(id, createdAt, pid, pidStart);
  }
  function heartbeat(id: string, ms: number): string {
    const f = path.join(dir, 'leases', id);
    fs.mkdirSync(path.dirname(f), { recursive: true });
    fs.writeFileSync(f, '');
    setMtime(f, ms);
    return f;
  }

  it('a lease with our PID number but another namespace is not ours: kept while its heartbeat is fresh', async () => {
    const held = await store.content.ingestBuffer(Buffer.from('held by PID 1 of another container'));
    const held2 = await store.content.ingestBuffer(Buffer.from('held by our pid number in another container'));
    insertProcessLease('other-pid1', 1, `${boot}:5:${otherNs}`);
    insertProcessLease('other-ourpid', process.pid, `${boot}:${Number(ticks) + 7}:${otherNs}`);
    heartbeat('other-pid1', Date.now());
    heartbeat('other-ourpid', Date.now());
    store.meta.db.prepare("INSERT INTO lease_resources VALUES ('other-pid1', 'content', ?)").run(held.digest);
    store.meta.db.prepare("INSERT INTO lease_resources VALUES ('other-ourpid', 'content', ?)").run(held2.digest);
    const res = prune(store);
    expect(res.leases).toEqual([]);
    expect(res.blobs).toEqual([]);
    expect(store.content.has(held.digest)).toBe(true);
    expect(store.content.has(held2.digest)).toBe(true);
  });

  it('a lease of another namespace is reclaimed once its heartbeat is older than the bound', async () => {
    const a = await store.content.ingestBuffer(Buffer.from('killed CI container'));
    const b = await store.content.ingestBuffer(Buffer.from('slow but alive container'));
    const old = Date.now() - BOUND - MIN;
    insertProcessLease('stale', 1, `${boot}:5:${otherNs}`, old);
    heartbeat('stale', old);
    // Created long ago, but still beating: alive.
    insertProcessLease('beating', 1, `${boot}:6:${otherNs}`, old);
    heartbeat('beating', Date.now() - MIN);
    store.meta.db.prepare("INSERT INTO lease_resources VALUES ('stale', 'content', ?)").run(a.digest);
    store.meta.db.prepare("INSERT INTO lease_resources VALUES ('beating', 'content', ?)").run(b.digest);
    const res = prune(store);
    expect(res.leases).toEqual(['stale']);
    expect(res.blobs.map((x) => x.digest)).toEqual([a.digest]);
    expect(store.content.has(b.digest)).toBe(true);
    expect(store.leases.list().map((l) => l.id)).toEqual(['beating']);
  });

  it('a lease in our namespace whose process is gone is reclaimed at once, whatever its heartbeat', async () => {
    insertProcessLease('gone', deadPid(), `${boot}:${ticks}:${ns}`);
    heartbeat('gone', Date.now());
    expect(prune(store).leases).toEqual(['gone']);
  });

  it('temp entries of another namespace are kept while fresh and swept once older than the bound', () => {
    const ingest = store.content.ingestDir;
    fs.mkdirSync(ingest, { recursive: true });
    const fresh = path.join(ingest, `${tag(otherNs, boot, process.pid, '9')}-fresh`);
    const stale = path.join(ingest, `${tag(otherNs, boot, 1, '9')}-stale`);
    fs.writeFileSync(fresh, Buffer.alloc(10));
    fs.writeFileSync(stale, Buffer.alloc(20));
    setMtime(stale, Date.now() - BOUND - MIN);
    // An extract directory whose top is old but whose files are still being written is in flight.
    const tmp = path.join(dir, 'snapshots', 'tmp');
    const busy = path.join(tmp, `${tag(otherNs, boot, 1, '9')}-extract-busy`);
    fs.mkdirSync(path.join(busy, 'fs'), { recursive: true });
    fs.writeFileSync(path.join(busy, 'fs', 'f'), 'x');
    setMtime(path.join(busy, 'fs'), Date.now() - BOUND - MIN);
    setMtime(busy, Date.now() - BOUND - MIN);
    const res = prune(store);
    expect(res.tempFiles.map((t) => t.path)).toEqual([stale]);
    expect(fs.existsSync(fresh)).toBe(true);
    expect(fs.existsSync(busy)).toBe(true);
  });

  it('temp entries of a live process of another namespace are kept while its lease heartbeat is fresh', () => {
    const ingest = store.content.ingestDir;
    fs.mkdirSync(ingest, { recursive: true });
    const t = path.join(ingest, `${tag(otherNs, boot, 1, '5')}-slow-download`);
    fs.writeFileSync(t, 'partial');
    setMtime(t, Date.now() - BOUND - MIN);
    insertProcessLease('slow', 1, `${boot}:5:${otherNs}`, Date.now() - BOUND - MIN);
    heartbeat('slow', Date.now());
    expect(prune(store).tempFiles).toEqual([]);
    expect(fs.existsSync(t)).toBe(true);
  });

  it('temp entries named without a namespace (older versions) are judged by age only', () => {
    const ingest = store.content.ingestDir;
    fs.mkdirSync(ingest, { recursive: true });
    const pid = deadPid(); // dead here, but maybe the live PID of another container
    const fresh = path.join(ingest, `${pid}-fresh`);
    const stale = path.join(ingest, `${pid}-stale`);
    fs.writeFileSync(fresh, 'x');
    fs.writeFileSync(stale, 'y');
    setMtime(stale, Date.now() - BOUND - MIN);
    expect(prune(store).tempFiles.map((t) => t.path)).toEqual([stale]);
    expect(fs.existsSync(fresh)).toBe(true);
  });

  it('temp entries of our namespace: a dead owner is swept at once, a live one is kept however old', () => {
    const ingest = store.content.ingestDir;
    fs.mkdirSync(ingest, { recursive: true });
    const dead = path.join(ingest, `${tag(ns, boot, deadPid(), ticks)}-dead`);
    const reused = path.join(ingest, `${tag(ns, boot, process.pid, String(Number(ticks) - 1))}-reused-pid`);
    const mine = path.join(ingest, `${tag(ns, boot, process.pid, ticks)}-mine`);
    for (const f of [dead, reused, mine]) fs.writeFileSync(f, 'z');
    setMtime(mine, Date.now() - BOUND - MIN);
    expect(prune(store).tempFiles.map((t) => t.path).sort()).toEqual([dead, reused].sort());
    expect(fs.existsSync(mine)).toBe(true);
  });
});
