import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Metadata } from '../metadata';
import { ResourceHolder } from '../content';
import { ImgtoolError, InvalidArgumentError, NotFoundError } from '../errors';
import { ProcessIdentity, ProcReader, parseStartId, processVerdict, sameIdentity, selfIdentity, formatStartId, systemProc } from './process';

export {
  isProcessAlive, processStartId, parseProcStat, processVerdict, selfIdentity, tempOwnerTag, parseTempOwner, systemProc,
} from './process';
export type { ProcessIdentity, ProcReader, ProcessVerdict } from './process';

export type ResourceKind = 'content' | 'snapshot' | 'image';

/**
 * Liveness of process leases (see `leaseIsLive`). A process lease of a process we
 * cannot prove alive or dead (another PID namespace, another user's process under
 * hidepid, no /proc) is live while its heartbeat file was touched within `boundMs`.
 * Holders touch it every `heartbeatIntervalMs(boundMs)` from an unref'd timer, and a
 * holder that finds itself silent for more than `selfExpiryMs(boundMs)` treats its
 * lease as expired (it may have been reclaimed) and commits nothing more.
 */
export const HEARTBEAT_BOUND_MS = 10 * 60_000;

export interface Liveness {
  /** A process lease (or temp entry) whose owner cannot be proved alive is dead after this long without a heartbeat. */
  boundMs: number;
  /** How processes are inspected (injectable for tests). */
  proc: ProcReader;
}

export const DEFAULT_LIVENESS: Liveness = { boundMs: HEARTBEAT_BOUND_MS, proc: systemProc };

/** How often a holder touches its heartbeat file: well inside the bound. */
export function heartbeatIntervalMs(boundMs: number): number {
  return Math.max(10, Math.min(30_000, Math.floor(boundMs / 20)));
}

/** A holder silent for longer than this considers its lease expired (a margin under the bound). */
export function selfExpiryMs(boundMs: number): number {
  return Math.floor(boundMs * 0.8);
}

export interface LeaseResource {
  kind: ResourceKind;
  ref: string;
}

export interface LeaseInfo {
  id: string;
  labels: Record<string, string>;
  createdAt: number;
  /** Expiry (ms since the epoch) of a user lease created with an expiry. */
  expiresAt?: number;
  /** PID of the process holding a process lease. */
  pid?: number;
  /** `<boot id>:<start ticks>:<pid namespace>` of that process. */
  pidStart?: string;
  /** Last heartbeat (mtime of its heartbeat file) of a process lease; absent when it has none. */
  heartbeatAt?: number;
  /** 'user' leases live until removed or expired; 'process' leases as long as their process. */
  type: 'user' | 'process';
}

export interface CreateLeaseOptions {
  id?: string;
  labels?: Record<string, string>;
  /** Expire this many ms from now; without it the lease lives until removed. */
  expiresInMs?: number;
}

interface Row {
  id: string;
  labels: string | null;
  created_at: number;
  expires_at: number | null;
  pid: number | null;
  pid_start: string | null;
}

function fromRow(r: Row): LeaseInfo {
  const info: LeaseInfo = {
    id: r.id,
    labels: r.labels ? (JSON.parse(r.labels) as Record<string, string>) : {},
    createdAt: r.created_at,
    type: r.pid !== null ? 'process' : 'user',
  };
  if (r.expires_at !== null) info.expiresAt = r.expires_at;
  if (r.pid !== null) info.pid = r.pid;
  if (r.pid_start !== null) info.pidStart = r.pid_start;
  return info;
}

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/;

/** The process a process lease names. */
export function leaseOwner(l: LeaseInfo): ProcessIdentity {
  return parseStartId(l.pid ?? 0, l.pidStart);
}

/**
 * Is the lease alive at `now`? A user lease: not expired. A process lease is dead when
 * its process is proved gone (our PID namespace and boot, pid + start time gone), or
 * when its heartbeat is older than the bound. A lease without a heartbeat file (written
 * by an older imgtool) counts its creation as its last heartbeat, unless its process is
 * proved alive.
 */
export function leaseIsLive(l: LeaseInfo, now = Date.now(), liveness: Liveness = DEFAULT_LIVENESS): boolean {
  if (l.type !== 'process') return l.expiresAt === undefined || l.expiresAt > now;
  const verdict = processVerdict(leaseOwner(l), liveness.proc);
  if (verdict === 'dead') return false;
  if (l.heartbeatAt === undefined) return verdict === 'alive' || now - l.createdAt <= liveness.boundMs;
  return now - l.heartbeatAt <= liveness.boundMs;
}

/** A process lease the holder can no longer use: it may have been judged dead and reclaimed. */
export class LeaseExpiredError extends ImgtoolError {
  constructor(id: string, why: string) {
    super('PRECONDITION', `lease ${JSON.stringify(id)} expired: ${why}; nothing more is committed under it, retry the command`);
    this.name = 'LeaseExpiredError';
  }
}

/**
 * A lease: holds resources against garbage collection. `attach` inserts into
 * `lease_resources` and joins the caller's write transaction (the content store calls it
 * inside the transaction that commits a blob). What a resource retains is decided at
 * prune time (a snapshot retains its parent chain and every blob recorded for it, also
 * those recorded after it was attached), so nothing is copied here.
 */
export class Lease implements ResourceHolder {
  constructor(protected readonly meta: Metadata, readonly id: string) {}

  attach(kind: ResourceKind, ref: string): void {
    this.meta.write(() => {
      const row = this.meta.db.prepare('SELECT expires_at FROM leases WHERE id = ?').get(this.id) as { expires_at: number | null } | undefined;
      if (!row) throw new NotFoundError(`lease ${JSON.stringify(this.id)} no longer exists (removed, expired and pruned, or its process lease was cleared)`);
      // A user lease that expired while a command ran is dead to prune: what it took now would not be held.
      if (row.expires_at !== null && row.expires_at <= Date.now()) {
        throw new LeaseExpiredError(this.id, `it expired at ${new Date(row.expires_at).toISOString()}`);
      }
      this.meta.db.prepare('INSERT OR IGNORE INTO lease_resources (lease_id, kind, ref) VALUES (?, ?, ?)').run(this.id, kind, ref);
    });
  }

  /** Stop holding one resource. */
  detach(kind: ResourceKind, ref: string): void {
    this.meta.write(() => {
      this.meta.db.prepare('DELETE FROM lease_resources WHERE lease_id = ? AND kind = ? AND ref = ?').run(this.id, kind, ref);
    });
  }

  resources(): LeaseResource[] {
    return this.meta.db
      .prepare('SELECT kind, ref FROM lease_resources WHERE lease_id = ? ORDER BY kind, ref')
      .all(this.id) as LeaseResource[];
  }

  info(): LeaseInfo | undefined {
    const r = this.meta.db.prepare('SELECT * FROM leases WHERE id = ?').get(this.id) as Row | undefined;
    return r ? fromRow(r) : undefined;
  }
}

/** Process leases not yet released, released on normal exit by one shared handler. */
const unreleased = new Set<ProcessLease>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const l of [...unreleased]) {
      try {
        l.release();
      } catch {
        /* the database may be closed at exit: prune clears leases of dead processes */
      }
    }
  });
}

/**
 * A process lease: released by `release()` (idempotent) or when the process exits
 * normally. While held, an unref'd timer touches its heartbeat file; `attach` (called
 * inside every commit transaction) first runs `assertAlive()`.
 */
export class ProcessLease extends Lease {
  private released = false;
  private expired: string | undefined;
  private lastBeat: number;
  private readonly timer: NodeJS.Timeout;

  constructor(meta: Metadata, id: string, private readonly leases: LeaseManager, readonly heartbeatFile: string, private readonly boundMs: number, createdAt: number) {
    super(meta, id);
    this.lastBeat = createdAt;
    this.timer = setInterval(() => this.beat(), heartbeatIntervalMs(boundMs));
    this.timer.unref();
    installExitHook();
    unreleased.add(this);
  }

  get isReleased(): boolean {
    return this.released;
  }

  /** Why this holder must not commit under the lease any more, or undefined. */
  get expiredReason(): string | undefined {
    return this.expired;
  }

  /**
   * Renew the heartbeat, unless this holder has been silent for longer than
   * `selfExpiryMs` (others may have judged it dead and swept its temp files) or its
   * heartbeat file was removed (prune reclaimed it): then the lease is expired for good.
   */
  beat(now = Date.now()): void {
    if (this.released || this.expired) return;
    const gap = now - this.lastBeat;
    if (gap > selfExpiryMs(this.boundMs)) {
      this.expire(`no heartbeat for ${Math.round(gap / 1000)} s (a process lease is reclaimable after ${Math.round(this.boundMs / 1000)} s without one)`);
      return;
    }
    try {
      fs.utimesSync(this.heartbeatFile, now / 1000, now / 1000);
      this.lastBeat = now;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') this.expire(`its heartbeat file was removed (the lease was reclaimed as dead)`);
      // Other failures: retried at the next tick; the gap rule expires the lease if they persist.
    }
  }

  /** Throw `LeaseExpiredError` when this holder must not commit anything more under the lease. Cheap: one utimes. */
  assertAlive(): void {
    if (this.released) throw new LeaseExpiredError(this.id, 'it was released');
    this.beat();
    if (this.expired) throw new LeaseExpiredError(this.id, this.expired);
  }

  override attach(kind: ResourceKind, ref: string): void {
    this.assertAlive();
    super.attach(kind, ref);
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    clearInterval(this.timer);
    unreleased.delete(this);
    try {
      this.leases.remove(this.id);
    } finally {
      try {
        fs.unlinkSync(this.heartbeatFile);
      } catch {
        /* already gone; prune removes heartbeat files of dead owners */
      }
    }
  }

  private expire(why: string): void {
    this.expired = why;
    clearInterval(this.timer);
  }
}

/** Attaches to several holders at once (a command's process lease and the user's `--lease`). */
export class MultiHolder implements ResourceHolder {
  constructor(readonly holders: ResourceHolder[]) {}
  attach(kind: ResourceKind, ref: string): void {
    for (const h of this.holders) h.attach(kind, ref);
  }
}

/** Leases of one store (`store.leases`). Heartbeat files live in `<root>/leases/<lease id>`. */
export class LeaseManager {
  readonly heartbeatDir: string;
  private livenessPolicy: Liveness = DEFAULT_LIVENESS;

  constructor(private readonly meta: Metadata, root: string) {
    this.heartbeatDir = path.join(root, 'leases');
  }

  get liveness(): Liveness {
    return this.livenessPolicy;
  }

  /** Override the heartbeat bound or the process reader (tests, or a store shared with slow peers). */
  setLiveness(p: Partial<Liveness>): void {
    this.livenessPolicy = { ...this.livenessPolicy, ...p };
  }

  /** Create a user lease. Fails when the id is taken. */
  create(opts: CreateLeaseOptions = {}): Lease {
    const id = opts.id ?? `lease-${Date.now().toString(36)}-${crypto.randomBytes(4).toString('hex')}`;
    if (!ID_RE.test(id)) throw new InvalidArgumentError(`invalid lease id ${JSON.stringify(id)}: use letters, digits and . _ : @ - (at most 128)`);
    if (opts.expiresInMs !== undefined && !(Number.isFinite(opts.expiresInMs) && opts.expiresInMs > 0)) {
      throw new InvalidArgumentError(`invalid lease expiry ${opts.expiresInMs} ms: must be positive`);
    }
    const now = Date.now();
    this.meta.write(() => {
      if (this.meta.db.prepare('SELECT 1 FROM leases WHERE id = ?').get(id)) {
        throw new ImgtoolError('ALREADY_EXISTS', `lease ${JSON.stringify(id)} already exists`);
      }
      this.meta.db
        .prepare('INSERT INTO leases (id, labels, created_at, expires_at, pid, pid_start) VALUES (?, ?, ?, ?, NULL, NULL)')
        .run(id, opts.labels && Object.keys(opts.labels).length ? JSON.stringify(opts.labels) : null, now, opts.expiresInMs !== undefined ? now + opts.expiresInMs : null);
    });
    return new Lease(this.meta, id);
  }

  /** Create a lease that lives exactly as long as the current process (and keeps its heartbeat). */
  createProcessLease(labels?: Record<string, string>): ProcessLease {
    const id = `process-${process.pid}-${crypto.randomBytes(6).toString('hex')}`;
    const start = formatStartId(selfIdentity()) ?? null;
    const file = this.heartbeatFile(id);
    const now = Date.now();
    // The heartbeat file exists before the row: a lease is never seen without it.
    try {
      fs.mkdirSync(this.heartbeatDir, { recursive: true });
      fs.writeFileSync(file, `${process.pid}\n${start ?? ''}\n`, { flag: 'wx' });
      fs.utimesSync(file, now / 1000, now / 1000);
    } catch (e) {
      throw new ImgtoolError('PRECONDITION', `cannot create the heartbeat file of process lease ${id} in ${this.heartbeatDir}: ${(e as Error).message}`);
    }
    try {
      this.meta.write(() => {
        this.meta.db
          .prepare('INSERT INTO leases (id, labels, created_at, expires_at, pid, pid_start) VALUES (?, ?, ?, NULL, ?, ?)')
          .run(id, labels && Object.keys(labels).length ? JSON.stringify(labels) : null, now, process.pid, start);
      });
    } catch (e) {
      fs.rmSync(file, { force: true });
      throw e;
    }
    return new ProcessLease(this.meta, id, this, file, this.livenessPolicy.boundMs, now);
  }

  get(id: string): LeaseInfo | undefined {
    const r = this.meta.db.prepare('SELECT * FROM leases WHERE id = ?').get(id) as Row | undefined;
    return r ? this.withHeartbeat(fromRow(r)) : undefined;
  }

  /** The lease as a ResourceHolder; throws when absent or no longer live. */
  open(id: string): Lease {
    const info = this.get(id);
    if (!info) throw new NotFoundError(`lease ${JSON.stringify(id)} not found (see \`imgtool lease ls\`)`);
    if (!this.isLive(info)) {
      const why = info.type === 'process' ? `its process ${info.pid} has exited or stopped renewing it` : `it expired at ${new Date(info.expiresAt!).toISOString()}`;
      throw new ImgtoolError('PRECONDITION', `lease ${JSON.stringify(id)} is no longer live: ${why}`);
    }
    return new Lease(this.meta, id);
  }

  list(): LeaseInfo[] {
    return (this.meta.db.prepare('SELECT * FROM leases ORDER BY created_at, id').all() as Row[]).map((r) => this.withHeartbeat(fromRow(r)));
  }

  resources(id: string): LeaseResource[] {
    return this.meta.db.prepare('SELECT kind, ref FROM lease_resources WHERE lease_id = ? ORDER BY kind, ref').all(id) as LeaseResource[];
  }

  /** Number of resources attached to each lease. */
  resourceCounts(): Map<string, number> {
    const rows = this.meta.db.prepare('SELECT lease_id, COUNT(*) AS n FROM lease_resources GROUP BY lease_id').all() as Array<{ lease_id: string; n: number }>;
    return new Map(rows.map((r) => [r.lease_id, r.n]));
  }

  /**
   * Remove a lease and its resource rows. Returns false when it did not exist. A process
   * lease's heartbeat file stays (this may run inside a transaction that rolls back): its
   * holder removes it on release, `reapHeartbeats` once its owner is dead.
   */
  remove(id: string): boolean {
    return this.meta.write(() => {
      this.meta.db.prepare('DELETE FROM lease_resources WHERE lease_id = ?').run(id);
      return this.meta.db.prepare('DELETE FROM leases WHERE id = ?').run(id).changes > 0;
    });
  }

  isLive(l: LeaseInfo, now = Date.now()): boolean {
    return leaseIsLive(l, now, this.livenessPolicy);
  }

  /**
   * Is the process `owner` (of a temp entry last modified at `activityMs`) dead, by the
   * rule of process leases: proved dead from here, or — when it cannot be proved either
   * way — silent for longer than the bound: neither the entry nor the heartbeat of any
   * process lease of that same process changed within it. A process proved alive is
   * never dead, however old its entries.
   */
  ownerIsDead(owner: ProcessIdentity, activityMs: () => number, now = Date.now(), leases: LeaseInfo[] = this.list()): boolean {
    const verdict = processVerdict(owner, this.livenessPolicy.proc);
    if (verdict !== 'unknown') return verdict === 'dead';
    const bound = this.livenessPolicy.boundMs;
    for (const l of leases) {
      if (l.type === 'process' && l.heartbeatAt !== undefined && now - l.heartbeatAt <= bound && sameIdentity(leaseOwner(l), owner)) return false;
    }
    return now - activityMs() > bound;
  }

  /**
   * Heartbeat files without a lease row whose owner is dead (a process killed between
   * its lease being removed and its file); removed unless `dryRun`. Returns their paths.
   */
  reapHeartbeats(now = Date.now(), dryRun = false): string[] {
    let names: string[];
    try {
      names = fs.readdirSync(this.heartbeatDir);
    } catch {
      return [];
    }
    const leases = this.list();
    const ids = new Set(leases.map((l) => l.id));
    const out: string[] = [];
    for (const n of names) {
      if (ids.has(n)) continue;
      const f = path.join(this.heartbeatDir, n);
      let text: string;
      let mtime: number;
      try {
        mtime = fs.lstatSync(f).mtimeMs;
        text = fs.readFileSync(f, 'utf8');
      } catch {
        continue;
      }
      const [pid, start] = text.split('\n');
      if (!/^\d+$/.test(pid ?? '')) continue; // not a heartbeat file: not ours to judge
      if (!this.ownerIsDead(parseStartId(Number(pid), start), () => mtime, now, leases)) continue;
      // A file just created for a lease whose row is not inserted yet has a live owner: kept.
      if (!dryRun) fs.rmSync(f, { force: true });
      out.push(f);
    }
    return out;
  }

  private heartbeatFile(id: string): string {
    return path.join(this.heartbeatDir, id);
  }

  private withHeartbeat(info: LeaseInfo): LeaseInfo {
    if (info.type !== 'process') return info;
    try {
      info.heartbeatAt = fs.statSync(this.heartbeatFile(info.id)).mtimeMs;
    } catch {
      /* none: an older imgtool, or removed */
    }
    return info;
  }
}

/** Minimal view of the Store this module needs (avoids an import cycle with src/store). */
export interface LeaseStore {
  leases: LeaseManager;
}

/** Take a temporary lease that lives as long as this process (release it when done). */
export function acquireProcessLease(store: LeaseStore, labels?: Record<string, string>): ProcessLease {
  return store.leases.createProcessLease(labels);
}

/**
 * Run a command's work under a process lease, from before its first write or read until
 * it finishes; with `userLeaseId` (`--lease ID`) everything is attached to that lease
 * too. An unknown or expired user lease fails before anything is done.
 */
export async function withCommandLease<T>(
  store: LeaseStore,
  userLeaseId: string | undefined,
  fn: (lease: ResourceHolder) => Promise<T>,
): Promise<T> {
  const user = userLeaseId !== undefined ? store.leases.open(userLeaseId) : undefined;
  const proc = acquireProcessLease(store, userLeaseId !== undefined ? { 'imgtool/user-lease': userLeaseId } : undefined);
  try {
    return await fn(user ? new MultiHolder([proc, user]) : proc);
  } finally {
    proc.release();
  }
}

/** Parse a duration like `90s`, `10m`, `24h`, `7d`, `1h30m` (or plain ms digits) into ms. */
export function parseDuration(s: string): number {
  const t = s.trim();
  if (/^\d+$/.test(t)) {
    const n = Number(t);
    if (n > 0) return n;
  }
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/gy;
  const unit: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
  let total = 0;
  let pos = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(t))) {
    total += Number(m[1]) * unit[m[2]];
    pos = re.lastIndex;
  }
  if (pos !== t.length || pos === 0 || !(total > 0)) {
    throw new InvalidArgumentError(`invalid duration ${JSON.stringify(s)}: use e.g. 90s, 10m, 24h, 7d, 1h30m`);
  }
  return Math.round(total);
}
