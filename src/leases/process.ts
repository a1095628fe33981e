import * as fs from 'node:fs';

/**
 * Process identity, and what can be proved about a process from here.
 *
 * A PID alone identifies nothing: PIDs are reused, and two containers sharing a store
 * volume each have their own PID namespace (both have a PID 1). A process is named by
 * its PID namespace (the inode of `/proc/self/ns/pid`), the boot id, its PID and its
 * start time (field 22 of `/proc/<pid>/stat`, clock ticks after boot): together they
 * name one process for the life of the machine. Process leases record it
 * (`<boot id>:<start ticks>:<pid namespace>` next to the PID) and temp files and
 * directories carry it in their names (`tempOwnerTag()`).
 *
 * From here we can only *prove* a process dead when it lives in our PID namespace and
 * boot, /proc is the one of our namespace, and its PID is gone (confirmed by
 * `kill(pid, 0)` = ESRCH, since under `hidepid` another user's /proc entry is merely
 * invisible), is a zombie, or now belongs to a process that started at another time.
 * Everything else is 'unknown', and the caller falls back to a heartbeat or age bound
 * (see `LeaseManager.isLive`): judging a live process dead loses its data, judging a
 * dead one alive only leaks space until the bound.
 */

export interface ProcessIdentity {
  /** PID namespace inode ('' when unknown). */
  ns: string;
  /** Boot id as in /proc/sys/kernel/random/boot_id ('' when unknown). */
  boot: string;
  pid: number;
  /** Start time in clock ticks after boot ('' when unknown). */
  start: string;
}

interface ProcStat {
  state: string;
  /** Field 22: start time in clock ticks after boot. */
  startTicks: string;
}

/** What this module reads about processes; injectable for tests (e.g. a `hidepid` /proc). */
export interface ProcReader {
  /** `/proc/<pid>/stat` parsed; 'gone' when absent (ENOENT/ESRCH), 'unreadable' for any other failure. */
  readStat(pid: number): ProcStat | 'gone' | 'unreadable';
  /** `kill(pid, 0)`: 'gone' on ESRCH, 'exists' on success or EPERM, 'unknown' otherwise. */
  signal(pid: number): 'exists' | 'gone' | 'unknown';
  /** Our PID namespace inode, '' when unknown. */
  pidNamespace(): string;
  /** The boot id, '' when unknown. */
  bootId(): string;
  /** Does /proc show our own PID namespace (`/proc/self` is `process.pid`)? */
  procIsOurs(): boolean;
}

/** Parse `/proc/<pid>/stat`. The comm field (2) may hold spaces and parentheses: split after the last ')'. */
export function parseProcStat(text: string): ProcStat | undefined {
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const rest = text.slice(close + 1).trim().split(/\s+/);
  // rest[0] is field 3 (state); field N is rest[N - 3].
  if (rest.length < 20) return undefined;
  return { state: rest[0], startTicks: rest[22 - 3] };
}

function once<T>(f: () => T): () => T {
  let done = false;
  let v: T;
  return () => {
    if (!done) {
      v = f();
      done = true;
    }
    return v;
  };
}

/** The real /proc and kill(2). */
export const systemProc: ProcReader = {
  readStat(pid) {
    let text: string;
    try {
      text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      return code === 'ENOENT' || code === 'ESRCH' ? 'gone' : 'unreadable';
    }
    return parseProcStat(text) ?? 'unreadable';
  },
  signal(pid) {
    try {
      process.kill(pid, 0);
      return 'exists';
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      return code === 'ESRCH' ? 'gone' : code === 'EPERM' ? 'exists' : 'unknown';
    }
  },
  pidNamespace: once(() => {
    try {
      return /\[(\d+)\]/.exec(fs.readlinkSync('/proc/self/ns/pid'))?.[1] ?? '';
    } catch {
      return '';
    }
  }),
  bootId: once(() => {
    try {
      return fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    } catch {
      return '';
    }
  }),
  procIsOurs: once(() => {
    try {
      return fs.readlinkSync('/proc/self') === String(process.pid);
    } catch {
      return false;
    }
  }),
};

let selfCache: ProcessIdentity | undefined;

/** The identity of the current process (cached). */
export function selfIdentity(): ProcessIdentity {
  if (!selfCache || selfCache.pid !== process.pid) {
    const st = systemProc.readStat(process.pid);
    selfCache = { ns: systemProc.pidNamespace(), boot: systemProc.bootId(), pid: process.pid, start: typeof st === 'object' ? st.startTicks : '' };
  }
  return selfCache;
}

/** `<boot id>:<start ticks>:<pid namespace>`, the `pid_start` column of a process lease. */
export function formatStartId(id: ProcessIdentity): string | undefined {
  if (!id.boot && !id.start && !id.ns) return undefined;
  return `${id.boot}:${id.start}:${id.ns}`;
}

/** The identity a process lease row records (`pid`, `pid_start`); missing parts are ''. */
export function parseStartId(pid: number, startId: string | null | undefined): ProcessIdentity {
  const [boot = '', start = '', ns = ''] = (startId ?? '').split(':');
  return { ns, boot, pid, start };
}

const HEX32 = /^[0-9a-f]{32}$/;

/**
 * Filesystem-safe owner tag for temp names: `p<ns>_<boot id hex>_<pid>_<start ticks>`.
 * Every temp file or directory a process creates in the store (or next to an output
 * file) is named `<tag>-<what>-<random>` so that the sweeper can tell its owner.
 */
export function tempOwnerTag(id: ProcessIdentity = selfIdentity()): string {
  return `p${id.ns}_${id.boot.replace(/-/g, '').toLowerCase()}_${id.pid}_${id.start}`;
}

/**
 * The owner of a temp entry from its name: `<tempOwnerTag()>-…`, or the older
 * `<pid>-…` (namespace, boot and start unknown). Undefined for any other name.
 */
export function parseTempOwner(name: string): ProcessIdentity | undefined {
  const m = /^p(\d*)_([0-9a-f]*)_(\d+)_(\d*)-/.exec(name);
  if (m) {
    const b = m[2];
    const boot = HEX32.test(b) ? `${b.slice(0, 8)}-${b.slice(8, 12)}-${b.slice(12, 16)}-${b.slice(16, 20)}-${b.slice(20)}` : b;
    return { ns: m[1], boot, pid: Number(m[3]), start: m[4] };
  }
  const legacy = /^(\d+)-/.exec(name);
  if (legacy) return { ns: '', boot: '', pid: Number(legacy[1]), start: '' };
  return undefined;
}

export function sameIdentity(a: ProcessIdentity, b: ProcessIdentity): boolean {
  return a.pid === b.pid && a.ns === b.ns && a.start === b.start && a.boot.replace(/-/g, '').toLowerCase() === b.boot.replace(/-/g, '').toLowerCase();
}

export type ProcessVerdict = 'alive' | 'dead' | 'unknown';

/**
 * What can be proved about the process `id` from here: 'alive' or 'dead' only when it
 * is in our PID namespace and boot and /proc shows that namespace; 'unknown' otherwise
 * (another container, a previous boot, no /proc, a `hidepid` /proc hiding it, a record
 * without a start time). See the module comment.
 */
export function processVerdict(id: ProcessIdentity, proc: ProcReader = systemProc): ProcessVerdict {
  if (!Number.isInteger(id.pid) || id.pid <= 0) return 'dead';
  const ns = proc.pidNamespace();
  const boot = proc.bootId();
  if (!id.ns || !ns || id.ns !== ns) return 'unknown';
  if (!id.boot || !boot || id.boot.replace(/-/g, '').toLowerCase() !== boot.replace(/-/g, '').toLowerCase()) return 'unknown';
  if (!proc.procIsOurs()) return 'unknown';
  const st = proc.readStat(id.pid);
  if (typeof st !== 'object') {
    // Absent or unreadable in /proc. Under hidepid another user's entry is invisible
    // or unreadable, so only kill(pid, 0) = ESRCH proves the PID unused.
    return proc.signal(id.pid) === 'gone' ? 'dead' : 'unknown';
  }
  if (st.state === 'Z' || st.state === 'X') return 'dead';
  if (!id.start) return 'unknown';
  return st.startTicks === id.start ? 'alive' : 'dead';
}

/**
 * `<boot id>:<start ticks>:<pid namespace>` for a process (as seen from this PID
 * namespace), or undefined when it does not exist or /proc is unavailable.
 */
export function processStartId(pid: number): string | undefined {
  const st = systemProc.readStat(pid);
  if (typeof st !== 'object') return undefined;
  return formatStartId({ ns: systemProc.pidNamespace(), boot: systemProc.bootId(), pid, start: st.startTicks });
}

/** Start id of the current process (cached). */
export function selfStartId(): string | undefined {
  return formatStartId(selfIdentity());
}

/**
 * Might the process that recorded (`pid`, `startId`) still run? False only when it is
 * proved dead (`processVerdict`); a process in another PID namespace, or one this
 * process cannot see, counts as running.
 */
export function isProcessAlive(pid: number, startId: string | null | undefined, proc: ProcReader = systemProc): boolean {
  return processVerdict(parseStartId(pid, startId), proc) !== 'dead';
}
