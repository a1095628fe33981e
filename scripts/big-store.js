#!/usr/bin/env node
/**
 * Build a large store fast, and measure how other commands fare while `prune` runs on it.
 *
 *   node scripts/big-store.js build DIR [--images 1000] [--blobs 20000] [--layers 10] [--seed 1]
 *   node scripts/big-store.js measure DIR [--images …] [--bin path/to/bin/run.js]
 *
 * build: DIR becomes a store of --images images (OCI manifest + config + --layers gzip
 * layers each, two of them shared from a small base pool), their variant rows, and
 * unreferenced blobs up to --blobs blobs in all (what prune will remove). Blobs and rows
 * are written directly through the library (file at its final path + `registerLocked`, in
 * batched write transactions), not by 1,000 CLI loads: ~20,000 blobs take seconds.
 *
 * measure: build DIR (replacing it), time `imgtool images --json` on the idle store, then
 * run probes while `imgtool prune` runs: `imgtool images --json` back to back, and a
 * library probe process sampling a reader (Store.open + image names) and a writer
 * (Store.open + lease create/remove) every 50 ms; print, as JSON, prune's duration and
 * the latencies and failures of the samples that overlapped it. `--bin` measures another
 * build of imgtool (its bin/run.js, with its dist/ beside it), e.g. an older one.
 *
 * Run after `npm run build` (loads dist/src). Not part of the test suite.
 */
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const zlib = require('node:zlib');
const crypto = require('node:crypto');
const { spawn } = require('node:child_process');
const { REPO, BIN, prng } = require('./lib/stress');

function usage(msg) {
  if (msg) console.error(`big-store: ${msg}`);
  console.error('usage: node scripts/big-store.js build|measure DIR [--images N] [--blobs N] [--layers N] [--seed N] [--bin BIN]');
  process.exit(2);
}

function parse(argv) {
  const [cmd, dir, ...rest] = argv;
  if (!['build', 'measure'].includes(cmd) || !dir) usage();
  const o = { cmd, dir: path.resolve(dir), images: 1000, blobs: 20000, layers: 10, seed: 1, bin: BIN };
  for (let i = 0; i < rest.length; i += 2) {
    const k = rest[i].replace(/^--/, '');
    if (!(k in o) || rest[i + 1] === undefined) usage(`unknown or incomplete option ${rest[i]}`);
    o[k] = k === 'bin' ? path.resolve(rest[i + 1]) : Number(rest[i + 1]);
    if (k !== 'bin' && !(o[k] > 0)) usage(`--${k} must be a positive number`);
  }
  return o;
}

const sha256 = (b) => 'sha256:' + crypto.createHash('sha256').update(b).digest('hex');

function build(o) {
  let lib;
  try {
    lib = require(path.join(REPO, 'dist', 'src'));
  } catch (e) {
    console.error(`big-store: cannot load dist/src (run \`npm run build\` first): ${e.message}`);
    process.exit(1);
  }
  const { Store, MediaType } = lib;
  const t0 = Date.now();
  fs.rmSync(o.dir, { recursive: true, force: true });
  const store = Store.open(o.dir);
  fs.mkdirSync(store.content.blobsDir, { recursive: true });
  const rnd = prng(o.seed);
  const bytes = (n) => {
    const b = Buffer.alloc(n + 3);
    for (let i = 0; i < n; i += 4) b.writeUInt32LE((rnd() * 2 ** 32) >>> 0, i);
    return b.subarray(0, n);
  };
  let blobs = 0;
  const put = (buf) => {
    const d = sha256(buf);
    fs.writeFileSync(store.content.blobPath(d), buf);
    store.content.registerLocked(d, buf.length);
    blobs++;
    return { digest: d, size: buf.length };
  };
  const layer = () => {
    const raw = bytes(256 + Math.floor(rnd() * 768));
    const gz = zlib.gzipSync(raw, { level: 1 });
    const b = put(gz);
    store.variants.recordProof({ digest: b.digest, diffId: sha256(raw), compression: 'gzip', size: gz.length, mediaType: MediaType.OCI_LAYER_GZIP });
    return { ...b, diffId: sha256(raw) };
  };
  const BATCH = 50;
  const base = store.meta.write(() => Array.from({ length: 20 }, layer));
  for (let start = 0; start < o.images; start += BATCH) {
    store.meta.write(() => {
      for (let i = start; i < Math.min(o.images, start + BATCH); i++) {
        const ls = [base[i % base.length], base[(i * 7 + 3) % base.length], ...Array.from({ length: Math.max(0, o.layers - 2) }, layer)];
        const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: ls.map((l) => l.diffId) }, config: { Env: [`N=${i}`] } }));
        const cfg = put(config);
        const manifest = Buffer.from(JSON.stringify({
          schemaVersion: 2, mediaType: MediaType.OCI_MANIFEST,
          config: { mediaType: MediaType.OCI_CONFIG, digest: cfg.digest, size: cfg.size },
          layers: ls.map((l) => ({ mediaType: MediaType.OCI_LAYER_GZIP, digest: l.digest, size: l.size })),
        }));
        const man = put(manifest);
        store.images.put(`big.example/app${String(i).padStart(4, '0')}:1`, { mediaType: MediaType.OCI_MANIFEST, digest: man.digest, size: man.size });
      }
    });
  }
  const referenced = blobs;
  while (blobs < o.blobs) {
    store.meta.write(() => {
      for (let k = 0; k < 500 && blobs < o.blobs; k++) put(bytes(128 + Math.floor(rnd() * 384)));
    });
  }
  store.close();
  const r = { dir: o.dir, images: o.images, blobs, referenced, garbage: blobs - referenced, secs: (Date.now() - t0) / 1000 };
  return r;
}

function run(bin, args, root) {
  return new Promise((resolve) => {
    const env = { ...process.env, IMGTOOL_ROOT: root };
    delete env.FORCE_COLOR;
    const t0 = process.hrtime.bigint();
    const child = spawn(process.execPath, [bin, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const so = [];
    const se = [];
    child.stdout.on('data', (d) => so.push(d));
    child.stderr.on('data', (d) => se.push(d));
    child.on('close', (code) => resolve({ code, ms: Number(process.hrtime.bigint() - t0) / 1e6, stdout: Buffer.concat(so).toString(), stderr: Buffer.concat(se).toString() }));
  });
}

function stats(xs) {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { n: s.length, min: Math.round(s[0]), median: Math.round(q(0.5)), p90: Math.round(q(0.9)), max: Math.round(s[s.length - 1]) };
}

/**
 * A probe process on the library of `bin`'s build: in a loop, a reader (Store.open + the
 * image names + close: what every command does first) and a writer (Store.open + lease
 * create + remove). Light, so that it measures waiting, not CPU. Prints one JSON line
 * per sample: {kind, start, ms, error}.
 */
const PROBE = `
const path = require('path');
const lib = require(path.join(process.argv[1], 'dist', 'src'));
const root = process.argv[2];
const out = (x) => process.stdout.write(JSON.stringify(x) + '\\n');
let stop = false;
process.stdin.on('data', () => { stop = true; });
process.stdin.on('end', () => { stop = true; });
(async () => {
  let n = 0;
  while (!stop) {
    for (const kind of ['read', 'write']) {
      const start = Date.now();
      let error;
      try {
        const s = lib.Store.open(root);
        try {
          if (kind === 'read') s.images.list();
          else s.leases.remove(s.leases.create({ id: 'probe-' + process.pid + '-' + n++ }).id);
        } finally { s.close(); }
      } catch (e) { error = e.message; }
      out({ kind, start, ms: Date.now() - start, error });
      await new Promise((r) => setTimeout(r, 50));
    }
  }
})();
`;

async function measure(o) {
  const built = build(o);
  const repo = path.resolve(path.dirname(o.bin), '..');
  const idle = [];
  for (let i = 0; i < 3; i++) {
    const a = await run(o.bin, ['images', '--json'], o.dir);
    if (a.code !== 0) throw new Error(`images failed on the idle store: ${a.stderr}`);
    idle.push(a.ms);
  }
  // Library probe (many samples) and CLI probe (`imgtool images`, back to back).
  const probe = spawn(process.execPath, ['-e', PROBE, repo, o.dir], { stdio: ['pipe', 'pipe', 'inherit'] });
  const samples = [];
  let buf = '';
  probe.stdout.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      samples.push(JSON.parse(buf.slice(0, i)));
      buf = buf.slice(i + 1);
    }
  });
  const probeEnded = new Promise((r) => probe.on('close', r));
  let done = false;
  const cli = [];
  const cliLoop = (async () => {
    while (!done) {
      const start = Date.now();
      const a = await run(o.bin, ['images', '--json'], o.dir);
      const okay = a.code === 0 && JSON.parse(a.stdout || '[]').length === o.images;
      cli.push({ start, ms: a.ms, error: okay ? undefined : `exit ${a.code}: ${a.stderr.trim()}` });
    }
  })();
  await new Promise((r) => setTimeout(r, 2000)); // probes warmed up
  const t0 = Date.now();
  const p = await run(o.bin, ['prune', '--json'], o.dir);
  const t1 = Date.now();
  done = true;
  probe.stdin.end();
  await Promise.all([cliLoop, probeEnded]);
  const pr = p.code === 0 ? JSON.parse(p.stdout) : undefined;
  // Samples that overlap the prune.
  const during = (xs) => xs.filter((x) => x.start < t1 && x.start + x.ms > t0);
  const summary = (xs) => ({ ...stats(xs.filter((x) => !x.error).map((x) => x.ms)), errors: xs.filter((x) => x.error).map((x) => x.error).slice(0, 3), failed: xs.filter((x) => x.error).length });
  return {
    bin: o.bin,
    store: built,
    prune: { code: p.code, secs: (t1 - t0) / 1000, blobsRemoved: pr ? pr.blobs.length : undefined, stderr: p.stderr.trim() || undefined },
    cliImagesMs: { idle: stats(idle), duringPrune: summary(during(cli)) },
    libraryMs: {
      idle: { read: stats(samples.filter((x) => x.start + x.ms <= t0 && x.kind === 'read').map((x) => x.ms)), write: stats(samples.filter((x) => x.start + x.ms <= t0 && x.kind === 'write').map((x) => x.ms)) },
      duringPrune: { read: summary(during(samples.filter((x) => x.kind === 'read'))), write: summary(during(samples.filter((x) => x.kind === 'write'))) },
    },
  };
}

const o = parse(process.argv.slice(2));
if (o.cmd === 'build') console.log(JSON.stringify(build(o), null, 2));
else measure(o).then((r) => console.log(JSON.stringify(r, null, 2)), (e) => {
  console.error(`big-store: ${e.message}`);
  process.exit(1);
});
