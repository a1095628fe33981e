import * as crypto from 'node:crypto';
import { Metadata } from '../metadata';
import { ResourceHolder } from '../content';
import { ImgtoolError, InvalidArgumentError, NotFoundError } from '../errors';
import { isProcessAlive, selfStartId } from './process';

export { isProcessAlive, processStartId, processStartTimeMs, parseProcStat } from './process';

export type ResourceKind = 'content' | 'snapshot' | 'image';

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

/** Is the lease alive at `now`: a user lease not expired, a process lease whose process still runs. */
export function leaseIsLive(l: LeaseInfo, now = Date.now()): boolean {
  if (l.type === 'process') return isProcessAlive(l.pid!, l.pidStart);
  return l.expiresAt === undefined || l.expiresAt > now;
}

/**
 * A lease: holds resources against garbage collection. `attach` inserts into
 * `lease_resources` and joins the caller's write transaction (the content store calls it
 * inside the transaction that commits a blob). What a resource retains is decided at
 * prune time (a snapshot retains its parent chain and every blob recorded for it, also
 * those recorded after it was attached), so nothing is copied here.
 */
export class Lease implements ResourceHolder {
  constructor(private readonly meta: Metadata, readonly id: string) {}

  attach(kind: ResourceKind, ref: string): void {
    this.meta.write(() => {
      const exists = this.meta.db.prepare('SELECT 1 FROM leases WHERE id = ?').get(this.id);
      if (!exists) throw new NotFoundError(`lease ${JSON.stringify(this.id)} no longer exists (removed, expired and pruned, or its process lease was cleared)`);
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

/** A process lease: released by `release()` (idempotent) or when the process exits normally. */
export class ProcessLease extends Lease {
  private released = false;

  constructor(meta: Metadata, id: string, private readonly leases: LeaseManager) {
    super(meta, id);
    installExitHook();
    unreleased.add(this);
  }

  get isReleased(): boolean {
    return this.released;
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    unreleased.delete(this);
    this.leases.remove(this.id);
  }
}

/** Attaches to several holders at once (a command's process lease and the user's `--lease`). */
export class MultiHolder implements ResourceHolder {
  constructor(readonly holders: ResourceHolder[]) {}
  attach(kind: ResourceKind, ref: string): void {
    for (const h of this.holders) h.attach(kind, ref);
  }
}

/** Leases of one store (`store.leases`). */
export class LeaseManager {
  constructor(private readonly meta: Metadata) {}

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

  /** Create a lease that lives exactly as long as the current process. */
  createProcessLease(labels?: Record<string, string>): ProcessLease {
    const id = `process-${process.pid}-${crypto.randomBytes(6).toString('hex')}`;
    const start = selfStartId() ?? null;
    this.meta.write(() => {
      this.meta.db
        .prepare('INSERT INTO leases (id, labels, created_at, expires_at, pid, pid_start) VALUES (?, ?, ?, NULL, ?, ?)')
        .run(id, labels && Object.keys(labels).length ? JSON.stringify(labels) : null, Date.now(), process.pid, start);
    });
    return new ProcessLease(this.meta, id, this);
  }

  get(id: string): LeaseInfo | undefined {
    const r = this.meta.db.prepare('SELECT * FROM leases WHERE id = ?').get(id) as Row | undefined;
    return r ? fromRow(r) : undefined;
  }

  /** The lease as a ResourceHolder; throws when absent or no longer live. */
  open(id: string): Lease {
    const info = this.get(id);
    if (!info) throw new NotFoundError(`lease ${JSON.stringify(id)} not found (see \`imgtool lease ls\`)`);
    if (!leaseIsLive(info)) {
      const why = info.type === 'process' ? `its process ${info.pid} has exited` : `it expired at ${new Date(info.expiresAt!).toISOString()}`;
      throw new ImgtoolError('PRECONDITION', `lease ${JSON.stringify(id)} is no longer live: ${why}`);
    }
    return new Lease(this.meta, id);
  }

  list(): LeaseInfo[] {
    return (this.meta.db.prepare('SELECT * FROM leases ORDER BY created_at, id').all() as Row[]).map(fromRow);
  }

  resources(id: string): LeaseResource[] {
    return this.meta.db.prepare('SELECT kind, ref FROM lease_resources WHERE lease_id = ? ORDER BY kind, ref').all(id) as LeaseResource[];
  }

  /** Number of resources attached to each lease. */
  resourceCounts(): Map<string, number> {
    const rows = this.meta.db.prepare('SELECT lease_id, COUNT(*) AS n FROM lease_resources GROUP BY lease_id').all() as Array<{ lease_id: string; n: number }>;
    return new Map(rows.map((r) => [r.lease_id, r.n]));
  }

  /** Remove a lease and its resource rows. Returns false when it did not exist. */
  remove(id: string): boolean {
    return this.meta.write(() => {
      this.meta.db.prepare('DELETE FROM lease_resources WHERE lease_id = ?').run(id);
      return this.meta.db.prepare('DELETE FROM leases WHERE id = ?').run(id).changes > 0;
    });
  }

  isLive(l: LeaseInfo, now = Date.now()): boolean {
    return leaseIsLive(l, now);
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
