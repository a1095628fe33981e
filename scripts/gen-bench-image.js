#!/usr/bin/env node
/**
 * Generate the benchmark image once (skipped when DIR/bench.json exists):
 *
 *   node scripts/gen-bench-image.js DIR [--size-mib N] [--layers 2|1] [--compression gzip|zstd|none] [--force]
 *
 * Two layers of N/2 MiB each (default N = 1024): one incompressible pseudo-random file,
 * one compressible text file. `--layers 1`: the same two files in ONE layer of N MiB (most base
 * images are one big layer; a one-layer convert is bound by its slowest serial stage, gunzip).
 * Written, streaming with flat memory, as
 *   DIR/oci/             OCI layout directory (index.json ref.name "bench")
 *   DIR/bench.oci.tar    OCI archive of it (ctr-style name example.com/bench/image:1)
 *   DIR/bench.docker.tar docker save >= 25 archive (uncompressed layers), tag bench/image:1
 *   DIR/bench.json       what was written (digests, sizes, seconds, peak RSS)
 * Run after `npm run build` (loads dist/src/builder).
 */
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const REPO = path.resolve(__dirname, '..');
let B;
try {
  B = require(path.join(REPO, 'dist', 'src', 'builder'));
} catch (e) {
  console.error(`gen-bench-image: cannot load dist/src/builder (run \`npm run build\` first): ${e.message}`);
  process.exit(1);
}
const { ImageBuilder } = B;

function usage(msg) {
  if (msg) console.error(`gen-bench-image: ${msg}`);
  console.error('usage: node scripts/gen-bench-image.js DIR [--size-mib N] [--layers 2|1] [--compression gzip|zstd|none] [--force]');
  process.exit(2);
}

function parseArgs(argv) {
  const o = { dir: undefined, sizeMib: 1024, layers: 2, compression: 'gzip', force: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--size-mib') o.sizeMib = Number(argv[++i]);
    else if (a.startsWith('--size-mib=')) o.sizeMib = Number(a.slice('--size-mib='.length));
    else if (a === '--layers') o.layers = Number(argv[++i]);
    else if (a.startsWith('--layers=')) o.layers = Number(a.slice('--layers='.length));
    else if (a === '--compression') o.compression = argv[++i];
    else if (a.startsWith('--compression=')) o.compression = a.slice('--compression='.length);
    else if (a === '--force') o.force = true;
    else if (a === '-h' || a === '--help') usage();
    else if (a.startsWith('-')) usage(`unknown option ${a}`);
    else if (!o.dir) o.dir = a;
    else usage(`unexpected argument ${a}`);
  }
  if (!o.dir) usage('DIR is required');
  if (!Number.isInteger(o.sizeMib) || o.sizeMib < 2) usage('--size-mib must be an integer >= 2');
  if (o.layers !== 1 && o.layers !== 2) usage('--layers must be 1 or 2');
  if (!['gzip', 'zstd', 'none'].includes(o.compression)) usage('--compression must be gzip, zstd or none');
  return o;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const dir = path.resolve(o.dir);
  const manifestFile = path.join(dir, 'bench.json');
  if (!o.force && fs.existsSync(manifestFile)) {
    const prev = JSON.parse(fs.readFileSync(manifestFile, 'utf8'));
    const ok = ['oci/index.json', 'bench.oci.tar', 'bench.docker.tar'].every((f) => fs.existsSync(path.join(dir, f)));
    if (ok && prev.sizeMib === o.sizeMib && prev.compression === o.compression && (prev.layerCount ?? 2) === o.layers) {
      console.log(`bench image already present in ${dir} (${prev.sizeMib} MiB, ${o.layers} layer(s), ${prev.compression}); use --force to regenerate`);
      return;
    }
  }
  for (const f of ['oci', '.work', 'bench.oci.tar', 'bench.docker.tar', 'bench.json']) fs.rmSync(path.join(dir, f), { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const t0 = Date.now();
  let peak = 0;
  const sample = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 200);
  const step = (what, t) => console.log(`${what.padEnd(44)} ${((Date.now() - t) / 1000).toFixed(1)}s`);

  const half = Math.floor((o.sizeMib * 1024 * 1024) / 2);
  const random = { path: 'data/random.bin', content: { size: half, seed: 'bench-random' } };
  const text = { path: 'data/text.txt', content: { size: half, seed: 'bench-text', text: true } };
  const specs = o.layers === 1
    ? [{ name: 'one', entries: [{ path: 'data/', type: 'dir' }, random, text], createdBy: 'bench: one layer (random + text)' }]
    : [
      { name: 'random', entries: [{ path: 'data/', type: 'dir' }, random], createdBy: 'bench: random layer' },
      { name: 'text', entries: [{ path: 'data/', type: 'dir' }, text], createdBy: 'bench: text layer' },
    ];
  const config = { Cmd: ['/bin/true'], Labels: { 'org.imgtool.bench': String(o.sizeMib) } };

  // 1. uncompressed layers in a scratch blob dir (they become the docker archive's layers)
  const work = new ImageBuilder(path.join(dir, '.work'));
  const raw = [];
  for (const s of specs) {
    const t = Date.now();
    raw.push(await work.layer(s.entries, { compression: 'none', createdBy: s.createdBy }));
    step(`layer ${s.name} (uncompressed tar)`, t);
  }
  // 2. compressed blobs for the OCI layout, from the uncompressed tars (same diffIDs)
  const b = new ImageBuilder(path.join(dir, 'oci'));
  const layers = [];
  for (let i = 0; i < raw.length; i++) {
    const t = Date.now();
    layers.push(await b.layerFromTar(work.blobs.path(raw[i].digest), { compression: o.compression, createdBy: specs[i].createdBy }));
    step(`layer ${specs[i].name} (${o.compression})`, t);
  }
  const img = b.image({ layers, format: 'oci', config });
  b.ociLayout({ images: [{ target: img, names: ['bench'] }], annotate: 'skopeo-full' });
  let t = Date.now();
  const oci = await b.ociArchive(path.join(dir, 'bench.oci.tar'), { images: [{ target: img, names: ['example.com/bench/image:1'] }] });
  step('bench.oci.tar', t);
  // 3. docker archive from the uncompressed layers (same config, same diffIDs)
  const dimg = work.image({ layers: raw, format: 'oci', config });
  if (dimg.config.digest !== img.config.digest) throw new Error('internal: config digests differ between the OCI and docker images');
  t = Date.now();
  const docker = await work.dockerArchive(path.join(dir, 'bench.docker.tar'), { images: [{ image: dimg, tags: ['bench/image:1'] }] });
  step('bench.docker.tar', t);
  fs.rmSync(path.join(dir, '.work'), { recursive: true, force: true });
  clearInterval(sample);
  peak = Math.max(peak, process.memoryUsage().rss);

  const info = {
    sizeMib: o.sizeMib,
    layerCount: o.layers,
    compression: o.compression,
    manifest: img.descriptor.digest,
    config: img.config.digest,
    layers: layers.map((l, i) => ({ name: specs[i].name, digest: l.digest, size: l.size, diffId: l.diffId, uncompressedSize: l.uncompressedSize })),
    files: {
      'oci/': { ref: 'bench' },
      'bench.oci.tar': { sha256: oci.digest, size: oci.size, name: 'example.com/bench/image:1' },
      'bench.docker.tar': { sha256: docker.digest, size: docker.size, tag: 'bench/image:1' },
    },
    seconds: (Date.now() - t0) / 1000,
    peakRssMib: Math.round(peak / 1048576),
  };
  fs.writeFileSync(manifestFile, JSON.stringify(info, null, 2) + '\n');
  console.log(`wrote ${dir}: oci/, bench.oci.tar (${oci.size} B), bench.docker.tar (${docker.size} B) in ${info.seconds.toFixed(1)}s, peak RSS ${info.peakRssMib} MiB`);
}

main().catch((e) => {
  console.error(`gen-bench-image: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
