'use strict';
/**
 * The fuzz driver: generate cases (./mutate.js over ./seeds.js), run them on the worker
 * pool (./pool.js), turn each outcome into failures, and file new failures in the
 * regression corpus (one archive + a JSON sidecar per distinct failure). Also replays the
 * corpus (`replayCorpus`), which the jest suite does.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Pool } = require('./pool');
const { buildSeeds } = require('./seeds');
const { makeCase } = require('./mutate');
const { signature } = require('./check');
const { prng } = require('../lib/stress');

const REPO = path.resolve(__dirname, '..', '..');
const DIST = path.join(REPO, 'dist');
const CORPUS = path.join(REPO, 'test', 'fuzz-corpus');
const MiB = 2 ** 20;
const EXT = { none: '.tar', gzip: '.tar.gz', zstd: '.tar.zst' };

/**
 * Where the per-case stores live: tmpfs when there is one (fsync is then free, which is what
 * makes ten thousand cases fit in half an hour), else the OS temp dir. IMGTOOL_FUZZ_TMP overrides.
 */
function workBase() {
  if (process.env.IMGTOOL_FUZZ_TMP) return process.env.IMGTOOL_FUZZ_TMP;
  try {
    fs.accessSync('/dev/shm', fs.constants.W_OK);
    return '/dev/shm';
  } catch {
    return os.tmpdir();
  }
}

/** Failures of one case from the pool's verdict (hang / crash / memory / worker checks). */
function failuresOf(v, memLimitBytes) {
  const f = v.kind === 'result' ? [...v.result.failures] : [{ class: v.kind, detail: v.detail }];
  if (v.peakRss > memLimitBytes) f.push({ class: 'memory', detail: `peak RSS ${Math.round(v.peakRss / MiB)} MiB over the ${Math.round(memLimitBytes / MiB)} MiB bound` });
  return f;
}

function readCorpus(dir = CORPUS) {
  const out = [];
  if (!fs.existsSync(dir)) return out;
  for (const cls of fs.readdirSync(dir).sort()) {
    const cdir = path.join(dir, cls);
    if (!fs.statSync(cdir).isDirectory()) continue;
    for (const f of fs.readdirSync(cdir).sort()) {
      if (!f.endsWith('.json')) continue;
      const meta = JSON.parse(fs.readFileSync(path.join(cdir, f), 'utf8'));
      out.push({ ...meta, sidecar: path.join(cdir, f), path: path.join(cdir, meta.file) });
    }
  }
  return out;
}

function fileCase(corpusDir, c, failures, v, known) {
  const primary = failures[0];
  const sig = `${c.command}|${c.mutation}|${signature(primary.class, primary.detail)}`;
  if (known.has(sig)) return undefined;
  known.add(sig);
  const dir = path.join(corpusDir, primary.class);
  fs.mkdirSync(dir, { recursive: true });
  const base = `${c.command.replace(/[^a-z]+/g, '-')}-${c.mutation}-s${c.seed}-n${c.n}`;
  const file = base + EXT[c.wrap];
  fs.writeFileSync(path.join(dir, file), c.bytes);
  const meta = {
    file, class: primary.class, command: c.command, seed: c.seed, n: c.n, fixture: c.seedName, mutation: c.mutation, detail: c.detail, wrap: c.wrap,
    failures, error: v.result?.error, stage: v.result?.stage, signature: sig, found: new Date().toISOString().slice(0, 10),
  };
  fs.writeFileSync(path.join(dir, base + '.json'), JSON.stringify(meta, null, 2) + '\n');
  return path.join(dir, file);
}

function newStats() {
  return { cases: 0, byCommand: {}, msByCommand: {}, byMutation: {}, failed: 0, byClass: {}, outcomes: {}, peakRss: 0, maxMs: 0, slowest: undefined, filed: [] };
}
function count(stats, c, v, failures) {
  stats.cases++;
  stats.byCommand[c.command] = (stats.byCommand[c.command] || 0) + 1;
  stats.msByCommand[c.command] = (stats.msByCommand[c.command] || 0) + (v.ms || 0);
  stats.byMutation[c.mutation] = (stats.byMutation[c.mutation] || 0) + 1;
  const o = v.kind === 'result' ? v.result.outcome : v.kind;
  stats.outcomes[o] = (stats.outcomes[o] || 0) + 1;
  if (failures.length) stats.failed++;
  for (const cls of new Set(failures.map((f) => f.class))) stats.byClass[cls] = (stats.byClass[cls] || 0) + 1;
  stats.peakRss = Math.max(stats.peakRss, v.peakRss || 0);
  if (v.ms > stats.maxMs) (stats.maxMs = v.ms), (stats.slowest = `${c.command} ${c.mutation}: ${c.detail}`.slice(0, 160));
}

/**
 * Run `cases` cases of run seed `seed`. Options: workers, timeoutMs, memLimitMiB, bombMiB
 * (largest bomb; smaller ones are a quarter and a sixteenth of it), corpus (dir, or false
 * to file nothing), only (mutations), onCase(c, v, failures).
 */
async function runFuzz(opts = {}) {
  const o = { cases: 1000, seed: 1, workers: os.cpus().length, timeoutMs: 20000, memLimitMiB: 512, bombMiB: 256, corpus: CORPUS, ...opts };
  const t0 = Date.now();
  const work = fs.mkdtempSync(path.join(workBase(), 'imgtool-fuzz-'));
  const seeds = await buildSeeds(DIST, path.join(work, 'seeds'));
  const bombSizes = [o.bombMiB / 16, o.bombMiB / 4, o.bombMiB].map((m) => Math.round(m * MiB));
  const stats = newStats();
  const known = new Set(o.corpus ? readCorpus(o.corpus).map((m) => m.signature) : []);
  const failures = [];
  await inPool(o, work, o.cases, 'case', async (pool, n, dir) => {
    const c = await makeCase({ dist: DIST, seeds, seed: o.seed, n, prng, bombSizes, only: o.only });
    const file = path.join(dir, 'input' + EXT[c.wrap]);
    fs.writeFileSync(file, c.bytes);
    const v = await pool.run({ id: n, file, command: c.command, dir });
    const f = failuresOf(v, o.memLimitMiB * MiB);
    count(stats, c, v, f);
    if (f.length) {
      failures.push({ seed: c.seed, n, command: c.command, mutation: c.mutation, detail: c.detail, failures: f, error: v.result?.error });
      if (o.corpus) {
        const filed = fileCase(o.corpus, c, f, v, known);
        if (filed) stats.filed.push(filed);
      }
    }
    o.onCase?.(c, v, f);
  });
  return { ...stats, seed: o.seed, seconds: (Date.now() - t0) / 1000, failures };
}

/**
 * Run `count` jobs on a pool of `o.workers` long-lived workers: `job(pool, i, dir)` with a fresh
 * directory `WORK/PREFIX-i` removed after it; the pool is closed and `work` removed at the end.
 */
async function inPool(o, work, count, prefix, job) {
  const pool = new Pool({ size: o.workers, dist: DIST, timeoutMs: o.timeoutMs, hardCapMiB: Math.max(o.memLimitMiB * 3, 1024) });
  let next = 0;
  const one = async () => {
    while (next < count) {
      const i = next++;
      const dir = path.join(work, `${prefix}-${i}`);
      fs.mkdirSync(dir, { recursive: true });
      await job(pool, i, dir);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  };
  try {
    await Promise.all(Array.from({ length: o.workers }, one));
  } finally {
    pool.close();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** Replay every corpus file: [{ meta, failures, verdict }]. */
async function replayCorpus(opts = {}) {
  const o = { workers: os.cpus().length, timeoutMs: 20000, memLimitMiB: 512, corpus: CORPUS, ...opts };
  const entries = readCorpus(o.corpus);
  const work = fs.mkdtempSync(path.join(workBase(), 'imgtool-fuzz-replay-'));
  const out = [];
  await inPool(o, work, entries.length, 'replay', async (pool, i, dir) => {
    const meta = entries[i];
    const v = await pool.run({ id: i, file: meta.path, command: meta.command, dir });
    out[i] = { meta, verdict: v, failures: failuresOf(v, o.memLimitMiB * MiB) };
  });
  return out;
}

module.exports = { runFuzz, replayCorpus, readCorpus, CORPUS, DIST };
