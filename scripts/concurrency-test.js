#!/usr/bin/env node
/*
 * Concurrency test: 4 worker loops run against ONE store at the same time, through the
 * built CLI. Every round a worker loads a shared archive under its own name, saves and
 * verifies it, converts it (zstd/gzip), saves and verifies the conversion, removes its
 * names and prunes — so prunes constantly race loads, saves and converts of the very
 * same blobs (the archives share layers).
 * Checks: no command fails (in particular never for lack of content), every archive
 * produced verifies, `imgtool fsck` is clean at the end.
 *
 * Usage: npm run build && node scripts/concurrency-test.js [--rounds N] [--workers N]
 *          [--seed N] [--layer-mib N] [--root DIR] [--keep] [--verbose]
 * `--rounds` is per worker (default 50). Exit status 0 = no failure, 1 = failures, 2 = cannot run.
 */
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { DIST, prng, hasCommand, run } = require('./lib/stress');

function parseArgs(argv) {
  const o = { rounds: 50, workers: 4, seed: 1, layerMib: 2, root: undefined, keep: false, verbose: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = () => argv[++i];
    if (a === '--rounds') o.rounds = Number(v());
    else if (a === '--workers') o.workers = Number(v());
    else if (a === '--seed') o.seed = Number(v());
    else if (a === '--layer-mib') o.layerMib = Number(v());
    else if (a === '--root') o.root = v();
    else if (a === '--keep') o.keep = true;
    else if (a === '--verbose' || a === '-v') o.verbose = true;
    else if (a === '--help' || a === '-h') {
      console.log(fs.readFileSync(__filename, 'utf8').split('\n').slice(1, 15).join('\n'));
      process.exit(0);
    } else {
      console.error(`concurrency-test: unknown argument ${a}`);
      process.exit(2);
    }
  }
  return o;
}

/** Archives whose index names images by tag only, so `load --base-name` gives each worker its own name. */
async function buildArchives(dir, layerMib) {
  const { ImageBuilder } = require(path.join(DIST, 'src', 'builder'));
  const b = new ImageBuilder(path.join(dir, 'blobs'));
  const base = await b.layer([{ path: 'etc/', type: 'dir' }, { path: 'etc/os-release', content: 'ID=conc\n' }, { path: 'base.bin', content: { size: layerMib << 20, seed: 'base' } }]);
  const mid = await b.layer([{ path: 'usr/lib.bin', content: { size: layerMib << 20, seed: 'mid' } }]);
  const x = await b.layer([{ path: 'app/x.txt', content: { size: layerMib << 19, seed: 'x', text: true } }]);
  const y = await b.layer([{ path: 'app/y.bin', content: { size: layerMib << 19, seed: 'y' } }]);
  const imgX = b.image({ layers: [base, mid, x], format: 'oci' });
  const imgY = b.image({ layers: [base, mid, y], format: 'docker' });
  const out = { x: path.join(dir, 'x.tar'), y: path.join(dir, 'y.tar') };
  await b.ociArchive(out.x, { images: [{ target: imgX, names: ['conc.local/src:x'] }], annotate: 'skopeo-tag' });
  await b.ociArchive(out.y, { images: [{ target: imgY, names: ['conc.local/src:y'] }], annotate: 'skopeo-tag' });
  return out;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (!fs.existsSync(path.join(DIST, 'commands'))) {
    console.error('concurrency-test: dist/ not built; run `npm run build` first');
    process.exit(2);
  }
  const need = ['load', 'save', 'convert', 'prune', 'rmi', 'verify', 'fsck'];
  const missing = need.filter((c) => !hasCommand(c));
  if (missing.length) {
    console.error(`concurrency-test: cannot run: missing command(s): ${missing.map((m) => `imgtool ${m}`).join(', ')}`);
    process.exit(2);
  }
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'imgtool-conc-'));
  const root = o.root ? path.resolve(o.root) : path.join(work, 'store');
  const outDir = path.join(work, 'out');
  fs.mkdirSync(outDir, { recursive: true });
  console.log(`concurrency-test: ${o.workers} workers x ${o.rounds} rounds, seed ${o.seed}, store ${root}`);
  const archives = await buildArchives(path.join(work, 'build'), o.layerMib);

  const failures = [];
  const counts = { commands: 0, archivesVerified: 0, prunes: 0, bytesPruned: 0 };
  const byCmd = {};
  const t0 = Date.now();

  const worker = async (w) => {
    const rnd = prng(o.seed * 1000 + w);
    const step = async (round, args) => {
      const r = await run(args, { root });
      counts.commands++;
      byCmd[args[0]] = (byCmd[args[0]] ?? 0) + 1;
      if (r.code !== 0) {
        const lack = /not found|missing|MISSING_CONTENT|vanished|ENOENT/i.test(r.stderr);
        const msg = `worker ${w} round ${round}: \`imgtool ${args.join(' ')}\` failed${lack ? ' FOR LACK OF CONTENT' : ''}: ${r.stderr.trim().split('\n').slice(0, 3).join(' | ')}`;
        failures.push(msg);
        console.log(`FAIL ${msg}`);
      } else if (o.verbose) console.log(`w${w} r${round} ${args[0]} ${r.ms} ms`);
      return r;
    };
    const saveVerify = async (round, name, extra) => {
      const out = path.join(outDir, `w${w}-r${round}-${name.replace(/[^a-z0-9]+/gi, '_')}.tar`);
      const s = await step(round, ['save', '-o', out, ...extra, name]);
      if (s.code !== 0) return;
      const v = await step(round, ['verify', out]);
      if (v.code === 0) counts.archivesVerified++;
      fs.rmSync(out, { force: true });
    };
    for (let round = 1; round <= o.rounds; round++) {
      const which = rnd() < 0.5 ? 'x' : 'y';
      const base = `conc.local/w${w}`;
      const name = `${base}:${which}`;
      const conv = `${base}:conv-${round}`;
      const load = ['load', '-i', archives[which], '--base-name', base];
      if (rnd() < 0.4) load.push('--no-unpack');
      if ((await step(round, load)).code !== 0) continue;
      await saveVerify(round, name, []);
      const comp = rnd() < 0.6 ? 'zstd' : 'gzip';
      if ((await step(round, ['convert', '--compression', comp, name, conv])).code === 0) {
        await saveVerify(round, conv, rnd() < 0.5 ? ['--compression', comp === 'zstd' ? 'gzip' : 'zstd'] : []);
        await step(round, ['rmi', conv]);
      }
      await step(round, ['rmi', name]);
      const p = await step(round, rnd() < 0.3 ? ['prune', '--all', '--json'] : ['prune', '--json']);
      if (p.code === 0) {
        counts.prunes++;
        try {
          counts.bytesPruned += JSON.parse(p.stdout).bytesFreed;
        } catch {
          /* counted as a failure above only if the exit code was non-zero */
        }
      }
      if (w === 0 && round % 5 === 0) console.log(`concurrency-test: worker 0 at round ${round}, ${counts.commands} commands, ${failures.length} failure(s), ${Math.round((Date.now() - t0) / 1000)} s`);
    }
  };

  await Promise.all(Array.from({ length: o.workers }, (_, w) => worker(w)));

  const f = await run(['fsck', '--json'], { root });
  let fsckSummary;
  try {
    const j = JSON.parse(f.stdout);
    fsckSummary = { ok: j.ok, errors: j.errors, orphans: j.orphans };
    if (!j.ok || f.code !== 0) failures.push(`final fsck: ${j.problems.filter((p) => p.severity === 'error').map((p) => p.message).join('; ')}`);
  } catch {
    failures.push(`final fsck printed no JSON: ${f.stderr}`);
  }
  const summary = {
    workers: o.workers,
    roundsPerWorker: o.rounds,
    rounds: o.workers * o.rounds,
    commands: counts.commands,
    byCommand: byCmd,
    archivesVerified: counts.archivesVerified,
    prunes: counts.prunes,
    bytesPruned: counts.bytesPruned,
    fsck: fsckSummary,
    failures: failures.length,
    seconds: Math.round((Date.now() - t0) / 1000),
  };
  console.log(`concurrency-test: ${JSON.stringify(summary)}`);
  if (failures.length) {
    console.log('concurrency-test: FAILURES:');
    for (const x of failures) console.log(`  ${x}`);
  }
  if (!o.keep && !o.root) fs.rmSync(work, { recursive: true, force: true });
  else console.log(`concurrency-test: kept ${work}`);
  process.exit(failures.length ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  process.exit(2);
});
