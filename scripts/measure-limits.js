#!/usr/bin/env node
/**
 * Measure real layers against the hostile-input limits (src/limits), to pick and check the
 * defaults. Not part of CI: run it by hand after `npm run build`.
 *
 *   node scripts/measure-limits.js [--zeros SIZE]... [--gzip-level N] [--zstd-level N] [--json] DIR...
 *
 * Each DIR is taken as one layer: GNU tar (pax format, as image builders write) streams it,
 * the tar is compressed with gzip (default level 6, as docker/containerd) and zstd (default
 * level 3, as buildkit/containerd) while streaming, and the directory is walked (iteratively)
 * for entries, the longest path and the longest name component, in bytes. `--zeros SIZE`
 * (e.g. 4G) adds a layer holding one sparse zero-filled file of that size (an empty VM disk
 * image: tar reads it as zeros, as a layer stores it). Prints one row per layer and codec and
 * checks each figure against DEFAULT_LIMITS (the ratio only counts past RATIO_FLOOR, as
 * unpack applies it), with the margin (limit / figure); exits 1 when a layer fails a default.
 */
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const zlib = require('node:zlib');
const { spawn } = require('node:child_process');
const { once } = require('node:events');
const { CompressStream } = require('zstd-napi');

let limits;
try {
  limits = require('../dist/src/limits');
} catch {
  console.error('measure-limits: run `npm run build` first (needs dist/src/limits)');
  process.exit(2);
}
const { DEFAULT_LIMITS, RATIO_FLOOR, NAME_MAX, MAX_PATH, parseSize, fmtLimit } = limits;

function usage(msg) {
  if (msg) console.error(`measure-limits: ${msg}`);
  console.error('usage: node scripts/measure-limits.js [--zeros SIZE]... [--gzip-level N] [--zstd-level N] [--json] DIR...');
  process.exit(2);
}

const args = process.argv.slice(2);
const dirs = [];
const zeros = [];
let gzipLevel = 6;
let zstdLevel = 3;
let json = false;
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--zeros') zeros.push(parseSize(args[++i] ?? usage('--zeros needs a size'), '--zeros'));
  else if (a === '--gzip-level') gzipLevel = Number(args[++i]);
  else if (a === '--zstd-level') zstdLevel = Number(args[++i]);
  else if (a === '--json') json = true;
  else if (a === '-h' || a === '--help') usage();
  else if (a.startsWith('-')) usage(`unknown option ${a}`);
  else dirs.push(a);
}
if (!dirs.length && !zeros.length) usage('no layer to measure');

/** Entries, longest in-layer path and component (bytes), walked iteratively. */
function walk(dir) {
  let entries = 0;
  let longestPath = 0;
  let longestName = 0;
  let deepest = 0;
  const stack = [{ abs: dir, rel: Buffer.alloc(0), depth: 0 }];
  while (stack.length) {
    const d = stack.pop();
    for (const name of fs.readdirSync(d.abs, { encoding: 'buffer' })) {
      const abs = path.join(d.abs, name.toString('latin1'));
      const rel = d.rel.length ? Buffer.concat([d.rel, Buffer.from('/'), name]) : name;
      entries++;
      longestPath = Math.max(longestPath, rel.length);
      longestName = Math.max(longestName, name.length);
      deepest = Math.max(deepest, d.depth + 1);
      const st = fs.lstatSync(Buffer.from(abs, 'latin1'));
      if (st.isDirectory()) stack.push({ abs, rel, depth: d.depth + 1 });
    }
  }
  return { entries, longestPath, longestName, deepest };
}

/** Stream `tar -C dir .` through gzip and zstd at once; sizes of the three. */
async function compressSizes(dir) {
  const tar = spawn('tar', ['--format=pax', '--numeric-owner', '--sort=name', '-C', dir, '-cf', '-', '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const gz = zlib.createGzip({ level: gzipLevel });
  const zs = new CompressStream({ compressionLevel: zstdLevel });
  const out = { tar: 0, gzip: 0, zstd: 0 };
  gz.on('data', (c) => (out.gzip += c.length));
  zs.on('data', (c) => (out.zstd += c.length));
  const done = Promise.all([once(gz, 'end'), once(zs, 'end')]);
  const exited = once(tar, 'close');
  for await (const chunk of tar.stdout) {
    out.tar += chunk.length;
    const a = gz.write(chunk);
    const b = zs.write(chunk);
    if (!a) await once(gz, 'drain');
    if (!b) await once(zs, 'drain');
  }
  gz.end();
  zs.end();
  await done;
  const [code] = await exited;
  if (code !== 0) throw new Error(`tar -C ${dir} exited with ${code}`);
  return out;
}

function check(m, codec) {
  const compressed = m.sizes[codec];
  const ratio = m.sizes.tar / compressed;
  const fails = [];
  const margins = {
    layerSize: DEFAULT_LIMITS.layerSize / m.sizes.tar,
    entries: DEFAULT_LIMITS.entries / Math.max(1, m.walk.entries),
    path: MAX_PATH / Math.max(1, m.walk.longestPath),
    name: NAME_MAX / Math.max(1, m.walk.longestName),
    // the ratio is only checked past RATIO_FLOOR decompressed bytes
    ratio: m.sizes.tar <= RATIO_FLOOR ? Infinity : DEFAULT_LIMITS.ratio / ratio,
  };
  for (const [k, v] of Object.entries(margins)) if (v < 1) fails.push(k);
  return { codec, compressed, ratio, margins, fails };
}

const fmt = (n) => (n >= 1024 ** 3 ? `${(n / 1024 ** 3).toFixed(2)} GiB` : n >= 1024 ** 2 ? `${(n / 1024 ** 2).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`);
const fmtMargin = (v) => (v === Infinity ? 'n/a' : `${v >= 100 ? Math.round(v) : v.toFixed(1)}x`);

async function main() {
  const layers = dirs.map((d) => ({ label: d, dir: path.resolve(d) }));
  const temps = [];
  for (const z of zeros) {
    const t = fs.mkdtempSync(path.join(os.tmpdir(), 'measure-zeros-'));
    fs.writeFileSync(path.join(t, 'README'), 'one zero-filled file, as an empty VM disk image\n');
    const f = path.join(t, 'disk.img');
    fs.closeSync(fs.openSync(f, 'w'));
    fs.truncateSync(f, z);
    temps.push(t);
    layers.push({ label: `zeros ${fmtLimit(z)}`, dir: t });
  }
  const rows = [];
  try {
    for (const l of layers) {
      const t0 = Date.now();
      const w = walk(l.dir);
      const sizes = await compressSizes(l.dir);
      const m = { label: l.label, walk: w, sizes, seconds: (Date.now() - t0) / 1000 };
      m.checks = [check(m, 'gzip'), check(m, 'zstd')];
      rows.push(m);
      if (!json) process.stderr.write(`measured ${l.label} in ${m.seconds.toFixed(1)} s\n`);
    }
  } finally {
    for (const t of temps) fs.rmSync(t, { recursive: true, force: true });
  }
  if (json) {
    process.stdout.write(JSON.stringify({ defaults: { ...DEFAULT_LIMITS, ratioFloor: RATIO_FLOOR, nameMax: NAME_MAX, maxPath: MAX_PATH }, gzipLevel, zstdLevel, layers: rows }, null, 2) + '\n');
  } else {
    console.log(`defaults: --max-layer-size ${fmtLimit(DEFAULT_LIMITS.layerSize)}, --max-ratio ${DEFAULT_LIMITS.ratio} (past ${fmtLimit(RATIO_FLOOR)}), --max-entries ${DEFAULT_LIMITS.entries}, path ${MAX_PATH} B, name ${NAME_MAX} B; gzip -${gzipLevel}, zstd -${zstdLevel}`);
    console.log('');
    console.log('| layer | entries | depth | longest path | longest name | tar | codec | compressed | ratio | margin size / entries / path / name / ratio | verdict |');
    console.log('| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | --- | --- |');
    for (const r of rows) {
      for (const c of r.checks) {
        const mg = c.margins;
        console.log(`| ${r.label} | ${r.walk.entries} | ${r.walk.deepest} | ${r.walk.longestPath} B | ${r.walk.longestName} B | ${fmt(r.sizes.tar)} | ${c.codec} | ${fmt(c.compressed)} | ${c.ratio.toFixed(1)}:1 | ${[mg.layerSize, mg.entries, mg.path, mg.name, mg.ratio].map(fmtMargin).join(' / ')} | ${c.fails.length ? `FAILS ${c.fails.join(', ')}` : 'ok'} |`);
      }
    }
  }
  if (rows.some((r) => r.checks.some((c) => c.fails.length))) process.exitCode = 1;
}

main().catch((e) => {
  console.error(`measure-limits: ${e.message}`);
  process.exit(2);
});
