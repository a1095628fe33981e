'use strict';
/**
 * A pool of long-lived worker processes (./worker.js) with a per-case watchdog and memory
 * measured from outside: before a case the parent resets the worker's peak RSS
 * (`/proc/<pid>/clear_refs` ← 5), samples `VmRSS` while it runs (killing it above the hard
 * cap) and reads `VmHWM` when it answers. A worker that does not answer within the timeout
 * is SIGKILLed (an in-process timer cannot fire inside a synchronous loop) and replaced;
 * the case is reported as a hang. A worker that dies is reported as a crash.
 */
const fs = require('node:fs');
const path = require('node:path');
const { fork } = require('node:child_process');

const WORKER = path.join(__dirname, 'worker.js');

function procStatus(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k) => Number((new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s) || [])[1] || 0);
    return { rss: kb('VmRSS') * 1024, hwm: kb('VmHWM') * 1024 };
  } catch {
    return { rss: 0, hwm: 0 };
  }
}
function resetPeak(pid) {
  try {
    fs.writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

class Worker {
  constructor(opts) {
    this.opts = opts;
    this.proc = fork(WORKER, [], {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      execArgv: [`--max-old-space-size=${opts.heapMiB}`],
      env: { ...process.env, IMGTOOL_FUZZ_DIST: opts.dist, FORCE_COLOR: '0' },
      serialization: 'advanced',
    });
    this.stderr = '';
    this.proc.stderr.on('data', (d) => (this.stderr = (this.stderr + d).slice(-4000)));
    this.ready = new Promise((resolve) => this.proc.once('message', resolve));
    this.dead = false;
    this.proc.on('exit', (code, signal) => {
      this.dead = true;
      this.pending?.({ type: 'exit', code, signal });
    });
    this.proc.on('message', (m) => {
      if (m.type === 'result' || m.type === 'crash') this.pending?.(m);
    });
  }

  /** Run one case: resolves { result | hang | crash | memory, peakRss, ms }. */
  async run(msg) {
    await this.ready;
    const pid = this.proc.pid;
    const canReset = resetPeak(pid);
    const t0 = Date.now();
    let maxRss = procStatus(pid).rss;
    let verdict;
    const answer = new Promise((resolve) => (this.pending = resolve));
    const sampler = setInterval(() => {
      const { rss } = procStatus(pid);
      if (rss > maxRss) maxRss = rss;
      if (rss > this.opts.hardCapBytes && !verdict) {
        verdict = { kind: 'memory', detail: `RSS reached ${Math.round(rss / 2 ** 20)} MiB (hard cap ${Math.round(this.opts.hardCapBytes / 2 ** 20)} MiB): worker killed` };
        this.proc.kill('SIGKILL');
      }
    }, 25);
    const watchdog = setTimeout(() => {
      if (!verdict) verdict = { kind: 'hang', detail: `no answer after ${this.opts.timeoutMs} ms: worker killed` };
      this.proc.kill('SIGKILL');
    }, this.opts.timeoutMs);
    this.proc.send({ type: 'case', id: msg.id, ...msg });
    const m = await answer;
    clearInterval(sampler);
    clearTimeout(watchdog);
    this.pending = undefined;
    const st = this.dead ? { hwm: 0 } : procStatus(pid);
    const peakRss = Math.max(maxRss, canReset ? st.hwm : 0);
    const ms = Date.now() - t0;
    if (verdict) return { ...verdict, peakRss, ms };
    if (m.type === 'exit') return { kind: 'crash', detail: `worker exited (code ${m.code}, signal ${m.signal}): ${this.stderr.trim().split('\n').slice(-3).join(' | ')}`, peakRss, ms };
    if (m.type === 'crash') return { kind: 'crash', detail: `${m.kind}: ${m.message}`, peakRss, ms };
    return { kind: 'result', result: m, peakRss, ms };
  }

  kill() {
    if (!this.dead) this.proc.kill('SIGKILL');
  }
}

class Pool {
  constructor({ size, dist, timeoutMs = 20000, heapMiB = 1024, hardCapMiB = 1536 }) {
    this.opts = { dist, timeoutMs, heapMiB, hardCapBytes: hardCapMiB * 2 ** 20 };
    this.idle = [];
    this.waiters = [];
    this.all = new Set();
    for (let i = 0; i < size; i++) this.release(this.spawn());
  }
  spawn() {
    const w = new Worker(this.opts);
    this.all.add(w);
    return w;
  }
  acquire() {
    const w = this.idle.pop();
    return w ? Promise.resolve(w) : new Promise((r) => this.waiters.push(r));
  }
  release(w) {
    const next = this.waiters.shift();
    if (next) next(w);
    else this.idle.push(w);
  }
  /** Run a case on a free worker; a worker that was killed or died is replaced. */
  async run(msg) {
    let w = await this.acquire();
    try {
      return await w.run(msg);
    } finally {
      if (w.dead || w.proc.killed) {
        w.kill();
        this.all.delete(w);
        w = this.spawn();
      }
      this.release(w);
    }
  }
  close() {
    for (const w of this.all) {
      w.kill();
    }
    this.all.clear();
  }
}

module.exports = { Pool, procStatus };
