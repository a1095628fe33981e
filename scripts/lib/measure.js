'use strict';
// Run a command and measure wall time and the peak RSS of its process tree's largest member
// (getrusage(RUSAGE_CHILDREN).ru_maxrss via python3, which every test machine has).
const { spawnSync } = require('node:child_process');

const PY = `
import resource, subprocess, sys, time, json
t = time.monotonic()
p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL if sys.stdout.isatty() else None)
el = time.monotonic() - t
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
sys.stderr.write(json.dumps({"code": p.returncode, "secs": el, "cpu": ru.ru_utime + ru.ru_stime, "maxrss_kb": ru.ru_maxrss}) + "\\n")
`;

/** Run `cmd` (argv array) through bash -c when given a string. Returns {code, secs, rssMB, stderr}. */
function measure(cmd, opts = {}) {
  const argv = Array.isArray(cmd) ? cmd : ['bash', '-c', cmd];
  const r = spawnSync('python3', ['-c', PY, ...argv], { env: { ...process.env, ...(opts.env || {}) }, stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 64 << 20 });
  const lines = r.stderr.toString().trim().split('\n');
  const last = JSON.parse(lines.pop());
  return { code: last.code, secs: last.secs, cpu: last.cpu, rssMB: last.maxrss_kb / 1024, stderr: lines.join('\n') };
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/**
 * Run `prepare()` then `cmd` `runs` times; return medians. `prepare` resets state (e.g. a fresh store)
 * and is not timed.
 */
function bench(name, cmd, { runs = 3, prepare, env } = {}) {
  const times = [];
  const rss = [];
  const cpu = [];
  for (let i = 0; i < runs; i++) {
    if (prepare) prepare(i);
    const m = measure(typeof cmd === 'function' ? cmd(i) : cmd, { env });
    if (m.code !== 0) throw new Error(`${name}: exit ${m.code}\n${m.stderr}`);
    times.push(m.secs);
    rss.push(m.rssMB);
    cpu.push(m.cpu);
  }
  return { name, secs: median(times), cpu: median(cpu), rssMB: Math.max(...rss), runs, all: times };
}

module.exports = { measure, bench, median };
