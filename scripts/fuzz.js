#!/usr/bin/env node
/**
 * Seeded, repeatable fuzzing of imgtool's archive commands (verify, ls-archive, load,
 * load --no-unpack, unpack, export-rootfs, save) over mutated fixtures, on a pool of
 * long-lived workers with a watchdog and outside memory measurement (see scripts/fuzz/).
 * Run after `npm run build`:
 *
 *   npm run fuzz -- [--cases N] [--seed S] [--workers W] [--timeout MS] [--mem-limit MiB]
 *                   [--bomb-mib MiB] [--only m1,m2] [--no-save] [--replay] [--corpus DIR] [--verbose]
 *
 * Same seed and N → the same cases. Each distinct failure is filed in the regression corpus
 * (test/fuzz-corpus/<class>/…, archive + JSON sidecar) unless --no-save; the jest suite
 * replays it (test/cli/fuzz-corpus.test.ts). --replay replays the corpus instead.
 * Exits 1 when any case failed.
 */
'use strict';
const path = require('node:path');
const fs = require('node:fs');
const { runFuzz, replayCorpus, CORPUS, DIST } = require('./fuzz/run');

function args(argv) {
  const o = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--cases') o.cases = Number(val());
    else if (a === '--seed') o.seed = Number(val());
    else if (a === '--workers') o.workers = Number(val());
    else if (a === '--timeout') o.timeoutMs = Number(val());
    else if (a === '--mem-limit') o.memLimitMiB = Number(val());
    else if (a === '--bomb-mib') o.bombMiB = Number(val());
    else if (a === '--only') o.only = val().split(',');
    else if (a === '--corpus') o.corpus = path.resolve(val());
    else if (a === '--no-save') o.corpus = false;
    else if (a === '--replay') o.replay = true;
    else if (a === '--verbose' || a === '-v') o.verbose = true;
    else throw new Error(`unknown option ${a}`);
  }
  for (const k of ['cases', 'seed', 'workers', 'timeoutMs', 'memLimitMiB', 'bombMiB']) if (o[k] !== undefined && !Number.isFinite(o[k])) throw new Error(`--${k}: not a number`);
  return o;
}

const mib = (b) => `${Math.round(b / 2 ** 20)} MiB`;

async function main() {
  let o;
  try {
    o = args(process.argv.slice(2));
  } catch (e) {
    console.error(`fuzz: ${e.message}`);
    process.exit(2);
  }
  if (!fs.existsSync(path.join(DIST, 'src', 'index.js'))) {
    console.error('fuzz: dist/ is missing: run `npm run build` first');
    process.exit(2);
  }
  if (o.replay) {
    const res = await replayCorpus({ ...o, corpus: o.corpus || CORPUS });
    let bad = 0;
    for (const r of res) {
      const ok = r.failures.length === 0;
      if (!ok) bad++;
      console.log(`${ok ? 'ok  ' : 'FAIL'} ${path.relative(process.cwd(), r.meta.path)}${ok ? '' : `: ${r.failures.map((f) => `${f.class}: ${f.detail}`).join('; ').slice(0, 300)}`}`);
    }
    console.log(`\nreplayed ${res.length} corpus file(s): ${bad} still failing`);
    process.exit(bad ? 1 : 0);
  }
  let done = 0;
  const t0 = Date.now();
  const r = await runFuzz({
    ...o,
    onCase: (c, v, f) => {
      done++;
      if (o.verbose || f.length) {
        if (f.length || o.verbose) console.log(`${f.length ? 'FAIL' : 'ok  '} #${c.n} ${c.command} [${c.seedName}/${c.mutation}${c.wrap !== 'none' ? `/${c.wrap}` : ''}] ${c.detail.slice(0, 120)}${f.length ? `\n     ${f.map((x) => `${x.class}: ${x.detail}`).join('\n     ').slice(0, 600)}` : ''}`);
      }
      if (done % 500 === 0) console.error(`fuzz: ${done} cases, ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    },
  });
  const table = (obj) => Object.entries(obj).sort((a, b) => b[1] - a[1]).map(([k, v]) => `  ${k.padEnd(24)} ${v}`).join('\n');
  console.log(`\nseed ${r.seed}: ${r.cases} cases in ${r.seconds.toFixed(1)} s (${(r.cases / r.seconds).toFixed(1)}/s); peak worker RSS ${mib(r.peakRss)}; slowest case ${r.maxMs} ms (${r.slowest})`);
  console.log(`cases per command (mean ms):\n${Object.entries(r.byCommand).sort((a, b) => b[1] - a[1]).map(([k, v]) => `  ${k.padEnd(24)} ${String(v).padEnd(6)} ${Math.round(r.msByCommand[k] / v)} ms`).join('\n')}`);
  console.log(`cases per mutation:\n${table(r.byMutation)}`);
  console.log(`outcomes:\n${table(r.outcomes)}`);
  console.log(`failed cases: ${r.failed}${r.failed ? `\nfailures per class:\n${table(r.byClass)}` : ''}`);
  if (r.filed.length) console.log(`filed ${r.filed.length} new corpus file(s):\n${r.filed.map((f) => `  ${path.relative(process.cwd(), f)}`).join('\n')}`);
  process.exit(r.failed ? 1 : 0);
}

main().catch((e) => {
  console.error(`fuzz: ${e && e.stack ? e.stack : e}`);
  process.exit(2);
});
