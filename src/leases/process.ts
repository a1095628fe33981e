import * as fs from 'node:fs';

/**
 * Process identity for per-process leases: a PID alone is not enough (PIDs are reused),
 * so a lease records the PID plus the process start time from `/proc/<pid>/stat`
 * (field 22, clock ticks since boot), the boot id and the PID namespace, which together
 * identify one process for the life of the machine.
 */

let bootIdCache: string | undefined;

function bootId(): string {
  if (bootIdCache === undefined) {
    try {
      bootIdCache = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    } catch {
      bootIdCache = '';
    }
  }
  return bootIdCache;
}

interface ProcStat {
  state: string;
  /** Field 22: start time in clock ticks after boot. */
  startTicks: string;
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

function readStat(pid: number): ProcStat | undefined | null {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH') return undefined; // no such process
    return null; // /proc unavailable or unreadable
  }
  return parseProcStat(text);
}

let pidNsCache: string | undefined;

/** This process's PID namespace (`4026531836` from `pid:[4026531836]`), or '' when unknown. */
function pidNamespace(): string {
  if (pidNsCache === undefined) {
    try {
      pidNsCache = /\[(\d+)\]/.exec(fs.readlinkSync('/proc/self/ns/pid'))?.[1] ?? '';
    } catch {
      pidNsCache = '';
    }
  }
  return pidNsCache;
}

/**
 * `<boot id>:<start ticks>:<pid namespace>` for a process (as seen from this PID
 * namespace), or undefined when it does not exist or /proc is unavailable.
 */
export function processStartId(pid: number): string | undefined {
  const st = readStat(pid);
  if (!st) return undefined;
  return `${bootId()}:${st.startTicks}:${pidNamespace()}`;
}

let selfStart: string | undefined | null = null;

/** Start id of the current process (cached). */
export function selfStartId(): string | undefined {
  if (selfStart === null) selfStart = processStartId(process.pid);
  return selfStart;
}

function procAvailable(): boolean {
  try {
    fs.accessSync('/proc/self/stat');
    return true;
  } catch {
    return false;
  }
}

/**
 * Is the process that recorded (`pid`, `startId`) still running? A different process
 * reusing the PID does not count; a zombie is dead. Without /proc (not Linux) this
 * falls back to `kill(pid, 0)`, which cannot detect PID reuse.
 */
export function isProcessAlive(pid: number, startId: string | null | undefined): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return !startId || startId === selfStartId();
  if (!procAvailable()) {
    try {
      process.kill(pid, 0);
      return true;
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === 'EPERM';
    }
  }
  let boot: string | undefined;
  let ticks: string | undefined;
  if (startId) {
    const parts = startId.split(':');
    boot = parts[0];
    ticks = parts[1];
    const ns = parts[2];
    // Recorded by a process in another PID namespace (another container sharing the
    // store): its PID means nothing here, so it cannot be judged dead from here.
    if (ns && pidNamespace() && ns !== pidNamespace()) return true;
    // Recorded before the last reboot: that process is gone.
    if (boot && bootId() && boot !== bootId()) return false;
  }
  const st = readStat(pid);
  if (st === null) return true; // cannot tell: keep (never sweep on doubt)
  if (!st) return false;
  if (st.state === 'Z' || st.state === 'X') return false;
  if (!startId) return true;
  return st.startTicks === ticks;
}

let clkTck = 100;
let btimeMs: number | undefined;

/**
 * Wall-clock start of a running process in ms since the epoch (from btime in
 * /proc/stat plus field 22 / USER_HZ), or undefined when unknown. Used to tell whether
 * a temp file named after a PID predates the process now holding that PID.
 */
export function processStartTimeMs(pid: number): number | undefined {
  const st = readStat(pid);
  if (!st) return undefined;
  if (btimeMs === undefined) {
    try {
      const m = /^btime\s+(\d+)/m.exec(fs.readFileSync('/proc/stat', 'utf8'));
      if (!m) return undefined;
      btimeMs = Number(m[1]) * 1000;
    } catch {
      return undefined;
    }
  }
  return btimeMs + (Number(st.startTicks) * 1000) / clkTck;
}

/** For tests: override USER_HZ if a platform uses another value. */
export function setClockTicks(hz: number): void {
  clkTck = hz;
}
