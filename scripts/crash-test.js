#!/usr/bin/env node
/*
 * Crash-safety test: run load / save / convert / unpack / prune through the built CLI and
 * SIGKILL them at random (seeded) moments, then check the store with `imgtool fsck`:
 *   - no corruption (every blob's digest and size, every row against the files),
 *   - no visible partial blob, no snapshot under a chainID that is not complete,
 *   - no output file at a save's final path unless it is a complete, verifying archive,
 *   - every image whose command completed still saves and verifies at the end.
 *
 * Usage: npm run build && node scripts/crash-test.js [--seed N] [--kills N] [--layer-mib N]
 *          [--fsck-every N] [--root DIR] [--keep] [--verbose]
 * Exit status: 0 when no failure was found, 1 otherwise, 2 when it cannot run.
 */
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { DIST, prng, hasCommand, run } = require('./lib/stress');

function parseArgs(argv) {
  const o = { seed: 1, kills: 100, layerMib: 16, fsckEvery: 1, root: undefined, keep: false, verbose: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = () => argv[++i];
    if (a === '--seed') o.seed = Number(v());
    else if (a === '--kills') o.kills = Number(v());
    else if (a === '--layer-mib') o.layerMib = Number(v());
    else if (a === '--fsck-every') o.fsckEvery = Number(v());
    else if (a === '--root') o.root = v();
    else if (a === '--keep') o.keep = true;
    else if (a === '--verbose' || a === '-v') o.verbose = true;
    else if (a === '--help' || a === '-h') {
      console.log(fs.readFileSync(__filename, 'utf8').split('\n').slice(1, 14).join('\n'));
      process.exit(0);
    } else {
      console.error(`crash-test: unknown argument ${a}`);
      process.exit(2);
    }
  }
  return o;
}

async function buildArchives(dir, layerMib) {
  const { ImageBuilder } = require(path.join(DIST, 'src', 'builder'));
  const b = new ImageBuilder(path.join(dir, 'blobs'));
  const big = (seed) => [{ path: `data/${seed}.bin`, content: { size: layerMib << 20, seed } }];
  const base = await b.layer([{ path: 'etc/', type: 'dir' }, { path: 'etc/os-release', content: 'ID=crash\n' }, ...big('base')]);
  const a1 = await b.layer([{ path: 'app/', type: 'dir' }, ...big('a1').map((e) => ({ ...e, path: 'app/a1.bin' }))]);
  const a2 = await b.layer([{ path: 'app/a2.txt', content: { size: layerMib << 19, seed: 'a2', text: true } }]);
  const b1 = await b.layer([{ path: 'srv/b1.bin', content: { size: layerMib << 20, seed: 'b1' } }]);
  const imgA = b.image({ layers: [base, a1, a2], platform: 'linux/amd64', format: 'oci' });
  const imgB = b.image({ layers: [base, b1], platform: 'linux/amd64', format: 'docker' });
  const archives = {
    a: path.join(dir, 'a.tar'),
    b: path.join(dir, 'b.tar'),
  };
  await b.ociArchive(archives.a, { images: [{ target: imgA, names: ['crash.local/a:1'] }] });
  await b.dockerArchive(archives.b, { images: [{ image: imgB, tags: ['crash.local/b:1'] }] });
  return archives;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (!fs.existsSync(path.join(DIST, 'commands'))) {
    console.error('crash-test: dist/ not built; run `npm run build` first');
    process.exit(2);
  }
  const ops = ['load', 'save', 'convert', 'unpack', 'prune'];
  const missing = ops.filter((c) => !hasCommand(c));
  for (const m of missing) console.error(`crash-test: SKIP: command \`imgtool ${m}\` is not available; not exercised`);
  for (const need of ['load', 'fsck', 'verify']) {
    if (!hasCommand(need)) {
      console.error(`crash-test: cannot run: \`imgtool ${need}\` is not available`);
      process.exit(2);
    }
  }
  const enabled = ops.filter((c) => hasCommand(c));
  const rnd = prng(o.seed);
  const pick = (arr) => arr[Math.floor(rnd() * arr.length)];
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'imgtool-crash-'));
  const root = o.root ? path.resolve(o.root) : path.join(work, 'store');
  const outDir = path.join(work, 'out');
  fs.mkdirSync(outDir, { recursive: true });
  const log = (...a) => o.verbose && console.log(...a);

  console.log(`crash-test: seed ${o.seed}, ${o.kills} kills, layers ${o.layerMib} MiB, store ${root}`);
  const archives = await buildArchives(path.join(work, 'build'), o.layerMib);

  const failures = [];
  const fail = (step, what, r) => {
    const msg = `step ${step}: ${what}${r ? ` (exit ${r.code}${r.signal ? ' ' + r.signal : ''}): ${r.stderr.trim().split('\n').slice(0, 3).join(' | ')}` : ''}`;
    failures.push(msg);
    console.log(`FAIL ${msg}`);
  };
  const stats = { kills: 0, completed: {}, killedByOp: {}, fsckRuns: 0, orphansSeen: 0, savesChecked: 0, partialOutputsLeft: 0 };
  for (const op of enabled) {
    stats.completed[op] = 0;
    stats.killedByOp[op] = 0;
  }
  /** Images whose creating command completed (they must save and verify at the end). */
  const completedImages = new Set();
  let convN = 0;
  let saveN = 0;

  const verifyArchive = async (file, step, what) => {
    const v = await run(['verify', file], { root });
    if (v.code !== 0) fail(step, `${what}: ${path.basename(file)} does not verify`, v);
    return v.code === 0;
  };

  const fsckCheck = async (step) => {
    const r = await run(['fsck', '--json'], { root });
    stats.fsckRuns++;
    let j;
    try {
      j = JSON.parse(r.stdout);
    } catch {
      fail(step, 'fsck printed no JSON', r);
      return;
    }
    stats.orphansSeen += j.orphans;
    if (!j.ok || r.code !== 0) fail(step, `fsck found ${j.errors} error(s): ${j.problems.filter((p) => p.severity === 'error').map((p) => p.message).join('; ')}`);
  };

  // Seed the store, and measure each operation uncut (kill moments are drawn from that).
  const calib = {};
  const first = await run(['load', '-i', archives.a], { root });
  if (first.code !== 0) {
    console.error(`crash-test: cannot run: initial load failed: ${first.stderr}`);
    process.exit(2);
  }
  calib.load = first.ms;
  completedImages.add('crash.local/a:1');
  const second = await run(['load', '-i', archives.b], { root });
  if (second.code === 0) completedImages.add('crash.local/b:1');
  const imgs = () => [...completedImages];
  const mkArgs = (op) => {
    if (['save', 'convert', 'unpack', 'rmi'].includes(op) && imgs().length === 0) op = 'load';
    switch (op) {
      case 'rmi': {
        // Not killed: removes a name so prune really deletes content and later loads,
        // converts and unpacks have real work to do.
        const img = pick(imgs());
        return { args: ['rmi', img], removes: img, uncut: true };
      }
      case 'load': {
        const which = rnd() < 0.5 ? 'a' : 'b';
        const a = ['load', '-i', archives[which]];
        const x = rnd();
        if (x < 0.3) a.push('--no-unpack');
        else if (x < 0.5) a.push('--discard-layers');
        return { args: a, names: [`crash.local/${which}:1`] };
      }
      case 'save': {
        const img = pick(imgs());
        const out = path.join(outDir, `save-${++saveN}.tar`);
        const comp = pick(['keep', 'keep', 'gzip', 'zstd']);
        return { args: ['save', '-o', out, '--compression', comp, img], out };
      }
      case 'convert': {
        const src = pick(imgs());
        const dst = `crash.local/conv-${++convN}:1`;
        return { args: ['convert', '--compression', pick(['zstd', 'gzip', 'none']), src, dst], names: [dst] };
      }
      case 'unpack':
        return { args: ['unpack', pick(imgs())] };
      case 'prune':
        return { args: rnd() < 0.3 ? ['prune', '--all'] : ['prune'] };
      default:
        throw new Error(op);
    }
  };
  for (const op of enabled) {
    if (calib[op]) continue;
    const c = mkArgs(op);
    const r = await run(c.args, { root });
    if (r.code !== 0) fail('calibration', `${op} failed uncut`, r);
    else (c.names ?? []).forEach((n) => completedImages.add(n));
    if (c.out && r.code === 0) await verifyArchive(c.out, 'calibration', 'save');
    calib[op] = Math.max(r.ms, 300);
  }
  console.log(`crash-test: uncut durations (ms): ${JSON.stringify(calib)}`);
  await fsckCheck('calibration');

  // Start-up cost of the CLI (node + oclif) before any store work.
  let startup = Infinity;
  for (let i = 0; i < 3; i++) startup = Math.min(startup, (await run(['lease', 'ls'], { root })).ms);
  console.log(`crash-test: CLI start-up ${startup} ms`);

  const weights = { load: 3, save: 3, convert: 2, unpack: 2, prune: 2 };
  const bag = [...enabled.flatMap((op) => Array(weights[op]).fill(op)), ...(hasCommand('rmi') ? ['rmi'] : [])];
  const runsOf = {};
  let step = 0;
  const t0 = Date.now();
  while (stats.kills < o.kills) {
    step++;
    const c = mkArgs(pick(bag));
    const op = c.args[0];
    runsOf[op] = (runsOf[op] ?? 0) + 1;
    // Every 4th run of an operation goes uncut: it re-measures the duration and gives
    // completed commands whose results must survive later kills. Otherwise the kill
    // lands anywhere from late start-up to the typical duration of uncut runs (a fifth
    // of kills anywhere from the very start).
    let at;
    if (!c.uncut && runsOf[op] % 4 !== 0) {
      const from = rnd() < 0.2 ? 0 : Math.min(startup * 0.6, calib[op] * 0.5);
      at = Math.floor(from + rnd() * Math.max(calib[op] - from, 50));
    }
    const r = await run(c.args, { root, killAfterMs: at });
    if (r.killed) {
      stats.kills++;
      stats.killedByOp[op]++;
      log(`step ${step}: ${c.args.join(' ')} killed at ${at} ms`);
      if (c.out && fs.existsSync(c.out)) {
        stats.partialOutputsLeft++;
        // A file at the final path must be complete.
        await verifyArchive(c.out, step, `killed save left an output file at the final path`);
      }
      if (stats.kills % o.fsckEvery === 0) await fsckCheck(step);
    } else {
      if (at === undefined && calib[op]) calib[op] = Math.round(calib[op] * 0.6 + r.ms * 0.4);
      startup = Math.min(startup, r.ms);
      if (r.code !== 0) {
        fail(step, `${c.args.join(' ')} failed`, r);
        continue;
      }
      stats.completed[op] = (stats.completed[op] ?? 0) + 1;
      (c.names ?? []).forEach((n) => completedImages.add(n));
      if (c.removes) completedImages.delete(c.removes);
      if (c.out) {
        stats.savesChecked++;
        await verifyArchive(c.out, step, 'completed save');
      }
      log(`step ${step}: ${c.args.join(' ')} completed in ${r.ms} ms`);
    }
    if (step % 10 === 0) console.log(`crash-test: step ${step}, ${stats.kills} kills, ${failures.length} failure(s), ${Math.round((Date.now() - t0) / 1000)} s`);
  }

  // Final checks: fsck, then every completed image saves and verifies.
  await fsckCheck('final');
  const listed = await run(['images', '--json'], { root });
  const present = new Set(listed.code === 0 ? JSON.parse(listed.stdout).map((i) => i.name) : []);
  let finalSaves = 0;
  for (const name of completedImages) {
    if (!present.has(name)) {
      fail('final', `image ${name} completed but is no longer in the store`);
      continue;
    }
    const out = path.join(outDir, `final-${finalSaves++}.tar`);
    const r = await run(['save', '-o', out, name], { root });
    if (r.code !== 0) fail('final', `save ${name} failed`, r);
    else await verifyArchive(out, 'final', `save ${name}`);
  }
  const prune = await run(['prune', '--json'], { root });
  if (prune.code !== 0) fail('final', 'prune failed', prune);
  await fsckCheck('final after prune');

  const summary = {
    seed: o.seed,
    steps: step,
    kills: stats.kills,
    killedByOp: stats.killedByOp,
    completedByOp: stats.completed,
    fsckRuns: stats.fsckRuns,
    orphansSeenByFsck: stats.orphansSeen,
    killedSavesWithFinalFile: stats.partialOutputsLeft,
    completedSavesVerified: stats.savesChecked,
    finalImagesSaved: finalSaves,
    failures: failures.length,
    seconds: Math.round((Date.now() - t0) / 1000),
  };
  console.log(`crash-test: ${JSON.stringify(summary)}`);
  if (failures.length) {
    console.log('crash-test: FAILURES:');
    for (const f of failures) console.log(`  ${f}`);
  }
  if (!o.keep && !o.root) fs.rmSync(work, { recursive: true, force: true });
  else console.log(`crash-test: kept ${work}`);
  process.exit(failures.length ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  process.exit(2);
});
