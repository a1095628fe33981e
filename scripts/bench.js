#!/usr/bin/env node
'use strict';
/**
 * npm run bench [-- --size-mib N] [--runs R] [--cache DIR] [--only startup,save,load,unpack,convert,kind,delta,pull,push]
 *                 [--startup-runs N] [--startup-images 1000,10000] [--one-layer-mib N]
 *
 * Side-by-side, in one run, medians of R runs (default 3): wall time, CPU time and peak RSS of
 * imgtool and of the real peers (skopeo, ctr/containerd, umoci) and physical baselines (cat, sha256sum,
 * sync), on a generated two-layer image (one incompressible, one text layer; default 1 GiB),
 * generated once into the cache dir. Ratios are printed against the targets of the issues.
 * Everything is fsynced: outputs are synced by imgtool itself and by `sync FILE` for baselines.
 *
 * startup (issue 16): wall time of short commands as ratios to `node -e 0` measured in the same
 * rounds (commands interleaved, so machine noise hits all alike; medians of --startup-runs,
 * default 15): --version, images on an empty store, on 300 names of one image, on stores of
 * --startup-images distinct images (built once by scripts/big-store.js into the cache), and a
 * second convert of a small image; each row says whether its target is met, and a store of N
 * images what each image adds. The row for oclif alone (`require('@oclif/core/execute')`, which
 * every command paid before the CLI replaced it, see src/cli/dispatch.ts) says what was replaced.
 *
 * convert (issues 5, 16): gzip -> zstd of the two-layer image against skopeo, and of a ONE-layer
 * image (--one-layer-mib, default 200: the acceptance fixture's size; most base images are one big
 * layer) against its physical floor, `zcat LAYER > /dev/null` (gunzip is serial) plus start-up
 * (`node -e 0`), and against skopeo; peak RSS of every convert, measured from outside
 * (ru_maxrss of the child, scripts/lib/measure.js). Each line says whether its target is met.
 */
const fs = require('node:fs');
const path = require('node:path');
const os = require('node:os');
const { execFileSync, spawnSync } = require('node:child_process');
const { bench, measure, median } = require('./lib/measure');

const REPO = path.resolve(__dirname, '..');
const BIN = `${process.execPath} ${path.join(REPO, 'bin', 'run.js')}`;

function parseArgs(argv) {
  const o = { sizeMib: 1024, runs: 3, cache: path.join(REPO, '.cache', 'bench'), only: null, startupRuns: 15, startupImages: [1000, 10000], oneLayerMib: 200 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--size-mib') o.sizeMib = Number(argv[++i]);
    else if (a === '--runs') o.runs = Number(argv[++i]);
    else if (a === '--cache') o.cache = path.resolve(argv[++i]);
    else if (a === '--only') o.only = new Set(argv[++i].split(','));
    else if (a === '--startup-runs') o.startupRuns = Number(argv[++i]);
    else if (a === '--one-layer-mib') o.oneLayerMib = Number(argv[++i]);
    else if (a === '--startup-images') o.startupImages = argv[++i].split(',').filter(Boolean).map(Number);
    else throw new Error(`unknown argument ${a}`);
  }
  return o;
}

const have = (b) => spawnSync('bash', ['-c', `command -v ${b}`]).status === 0;
const sh = (cmd) => execFileSync('bash', ['-c', cmd], { stdio: ['ignore', 'pipe', 'inherit'] }).toString();
const q = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;

const rows = [];
function row(section, r, note = '') {
  rows.push({ section, ...r, note });
  console.log(`  ${r.name.padEnd(52)} ${r.secs.toFixed(2).padStart(7)} s  cpu ${r.cpu.toFixed(2).padStart(6)} s  rss ${r.rssMB.toFixed(0).padStart(5)} MB ${note}`);
  return r;
}
const ratios = [];
/** 'met' / 'NOT met' for a target like '<= 1.5', '>= 3', '< 200'; '' without a target. */
function verdict(value, target) {
  const m = /^\s*(<=|>=|<|>)\s*([\d.]+)/.exec(target || '');
  if (!m) return '';
  const t = Number(m[2]);
  const ok = m[1] === '<=' ? value <= t : m[1] === '>=' ? value >= t : m[1] === '<' ? value < t : value > t;
  return ok ? 'met' : 'NOT met';
}
function ratio(label, a, b, target) {
  const x = typeof a === 'number' ? a : a.secs / b.secs;
  ratios.push({ label, value: x, target });
  console.log(`  => ${label}: ${x.toFixed(2)}x${target ? `  (target ${target}: ${verdict(x, target)})` : ''}`);
}

/** Peak RSS of a measured imgtool run against issue 16's target (< 200 MB). */
function rss(label, r, target = '< 200') {
  ratios.push({ label: `${label}: peak RSS (MB)`, value: r.rssMB, target, unit: ' MB' });
  console.log(`  => ${label}: peak RSS ${r.rssMB.toFixed(0)} MB  (target ${target} MB: ${verdict(r.rssMB, target)})`);
}

/**
 * Start-up ratios. Each round runs every command once, in turn; the medians over the rounds are
 * compared with `node -e 0`'s median.
 */
function startup(o) {
  console.log(`\n== start-up (issue 16: --version <= 1.3x, images empty <= 1.6x, 300 images <= 1.8x, second convert <= 2x node -e 0)`);
  const dir = path.join(o.cache, 'startup');
  fs.mkdirSync(dir, { recursive: true });
  const empty = path.join(dir, 'empty-store');
  fs.rmSync(empty, { recursive: true, force: true });
  const node = process.execPath;
  const run = path.join(REPO, 'bin', 'run.js');
  const lib = (f) => JSON.stringify(path.join(REPO, 'dist', 'src', f));
  // 300 names of one image, and a small image converted once already (the second convert reuses every layer).
  const s300 = path.join(dir, 'store-300');
  const conv = path.join(dir, 'store-convert');
  fs.rmSync(s300, { recursive: true, force: true });
  fs.rmSync(conv, { recursive: true, force: true });
  execFileSync(node, ['-e', `
    const { Store, loadArchive } = require(${lib('index.js')});
    const { ImageBuilder } = require(${lib('builder')});
    (async () => {
      const b = new ImageBuilder(${JSON.stringify(path.join(dir, 'build'))});
      const l1 = await b.layer([{ path: 'a.bin', content: { size: 2 << 20, seed: 'startup-a' } }]);
      const l2 = await b.layer([{ path: 'b.txt', content: { size: 2 << 20, seed: 'startup-b', text: true } }]);
      const tar = ${JSON.stringify(path.join(dir, 'small.tar'))};
      await b.ociArchive(tar, { images: [{ target: b.image({ layers: [l1, l2], format: 'oci' }), names: ['example.com/startup/small:1'] }] });
      for (const root of [${JSON.stringify(s300)}, ${JSON.stringify(conv)}]) {
        const s = Store.open(root);
        await loadArchive(s, tar, { unpack: false });
        if (root === ${JSON.stringify(s300)}) {
          const t = s.images.get('example.com/startup/small:1').target;
          s.meta.write(() => { for (let i = 1; i < 300; i++) s.images.put('example.com/startup/small:' + (i + 1), t); });
        }
        s.close();
      }
    })().catch((e) => { console.error(e); process.exit(1); });`], { stdio: 'inherit' });
  sh(`IMGTOOL_ROOT=${q(conv)} ${BIN} convert -q --compression zstd example.com/startup/small:1 example.com/startup/small:zstd0 >/dev/null`);
  const big = [];
  for (const n of o.startupImages) {
    const root = path.join(dir, `store-${n}-images`);
    if (!fs.existsSync(path.join(root, '.bench-complete'))) {
      console.log(`  building a store of ${n} images (once, cached in ${root})`);
      execFileSync(node, [path.join(REPO, 'scripts', 'big-store.js'), 'build', root, '--images', String(n), '--blobs', '1', '--layers', '3'], { stdio: ['ignore', 'ignore', 'inherit'] });
      fs.writeFileSync(path.join(root, '.bench-complete'), '');
    }
    big.push({ n, root });
  }
  // What the replaced framework costs on its own (oclif is a devDependency for this row only;
  // the CLI no longer loads it): `require('@oclif/core/execute')`, the least a command needed.
  let oclifOnly;
  try {
    const entry = require.resolve('@oclif/core/execute', { paths: [REPO] });
    oclifOnly = path.join(dir, 'oclif-require.js');
    fs.writeFileSync(oclifOnly, `require(${JSON.stringify(entry)});\n`);
  } catch {
    console.log('  (@oclif/core is not installed: its row is left out)');
  }
  let convertRun = 0;
  const cmds = [
    { name: 'node -e 0', argv: () => [node, '-e', '0'] },
    ...(oclifOnly ? [{ name: 'node: require @oclif/core/execute (replaced, not loaded)', argv: () => [node, oclifOnly] }] : []),
    { name: 'imgtool --version', argv: () => [node, run, '--version'], target: 1.3 },
    { name: 'imgtool images (empty store)', argv: () => [node, run, 'images'], root: empty, target: 1.6 },
    { name: 'imgtool images (300 names of one image)', argv: () => [node, run, 'images'], root: s300, target: 1.8 },
    ...big.map((b) => ({ name: `imgtool images (${b.n} images)`, argv: () => [node, run, 'images'], root: b.root, images: b.n })),
    { name: 'imgtool convert (second, same image, small)', argv: () => [node, run, 'convert', '-q', '--compression', 'zstd', 'example.com/startup/small:1', `example.com/startup/small:zstd${++convertRun}`], root: conv, target: 2 },
  ];
  const times = cmds.map(() => []);
  const cpus = cmds.map(() => []);
  const rss = cmds.map(() => 0);
  for (let r = 0; r < o.startupRuns; r++) {
    cmds.forEach((c, i) => {
      const m = measure(c.argv(), { env: c.root ? { IMGTOOL_ROOT: c.root } : {} });
      if (m.code !== 0) throw new Error(`${c.name}: exit ${m.code}\n${m.stderr}`);
      times[i].push(m.secs);
      cpus[i].push(m.cpu);
      rss[i] = Math.max(rss[i], m.rssMB);
    });
  }
  const base = median(times[0]);
  const emptyIdx = cmds.findIndex((c) => c.name === 'imgtool images (empty store)');
  cmds.forEach((c, i) => {
    const secs = median(times[i]);
    const x = secs / base;
    let note = i ? `${x.toFixed(2)}x node` : '';
    if (c.target) note += `  target <= ${c.target}: ${x <= c.target ? 'met' : 'NOT met'}`;
    // A listing of N distinct images: what each image adds over the empty store's start-up.
    if (c.images) note += `  (+${(((secs - median(times[emptyIdx])) / c.images) * 1000).toFixed(3)} ms per image)`;
    const r = row('startup', { name: c.name, secs, cpu: median(cpus[i]), rssMB: rss[i] }, note);
    if (i) ratios.push({ label: `${c.name} / node -e 0`, value: r.secs / base, target: c.target ? `<= ${c.target}` : undefined });
  });
}

/**
 * Write to `out` an OCI archive of example.com/bench/image:2: the bench image's first (random)
 * layer and a new 16 MiB text top layer made from `seed` (a delta changes only the top layer).
 */
function buildTopChanged(info, ociDir, seed, out) {
  const script = `
    const B = require(${JSON.stringify(path.join(REPO, 'dist', 'src', 'builder'))});
    (async () => {
      const info = ${JSON.stringify(info)};
      const b = new B.ImageBuilder(${JSON.stringify(ociDir)});
      const top = await b.layer([{ path: 'data/', type: 'dir' }, { path: 'data/text.txt', content: { size: 16 << 20, seed: ${JSON.stringify(seed)}, text: true } }]);
      const base = { digest: info.layers[0].digest, size: info.layers[0].size, diffId: info.layers[0].diffId, uncompressedSize: info.layers[0].uncompressedSize, compression: 'gzip' };
      const img = b.image({ layers: [base, top], format: 'oci' });
      await b.ociArchive(${JSON.stringify(out)}, { images: [{ target: img, names: ['example.com/bench/image:2'] }] });
    })().catch((e) => { console.error(e); process.exit(1); });`;
  execFileSync(process.execPath, ['-e', script], { stdio: 'inherit' });
}

function main() {
  const o = parseArgs(process.argv.slice(2));
  const want = (s) => !o.only || o.only.has(s);
  if (want('startup')) startup(o);
  if (o.only && [...o.only].every((s) => s === 'startup')) return summary(o);
  const img = path.join(o.cache, `image-${o.sizeMib}`);
  fs.mkdirSync(img, { recursive: true });
  console.log(`== bench image (${o.sizeMib} MiB) in ${img}`);
  execFileSync(process.execPath, [path.join(REPO, 'scripts', 'gen-bench-image.js'), img, '--size-mib', String(o.sizeMib)], { stdio: 'inherit' });
  const info = JSON.parse(fs.readFileSync(path.join(img, 'bench.json'), 'utf8'));
  const NAME = info.files['bench.oci.tar'].name;
  const OCI_TAR = path.join(img, 'bench.oci.tar');
  const OCI_DIR = path.join(img, 'oci');
  const blobFiles = [info.manifest, info.config, ...info.layers.map((l) => l.digest)].map((d) => path.join(OCI_DIR, 'blobs', 'sha256', d.slice(7)));
  const work = fs.mkdtempSync(path.join(o.cache, 'run-'));
  const store = path.join(work, 'store');
  const out = path.join(work, 'out.tar');
  const fresh = () => { fs.rmSync(store, { recursive: true, force: true }); fs.rmSync(out, { force: true }); };
  const R = o.runs;
  const env = { IMGTOOL_ROOT: store };
  let ctrSock;
  const ctrDir = path.join(work, 'containerd');
  if (have('containerd') && have('ctr') && process.getuid && process.getuid() === 0) {
    try {
      ctrSock = sh(`bash ${q(path.join(REPO, 'scripts', 'peers', 'containerd-up.sh'))} ${q(ctrDir)}`).trim().split('\n').pop();
    } catch (e) {
      console.log(`  (containerd did not start: ${e.message}; ctr rows skipped)`);
    }
  }
  const ctr = ctrSock ? `ctr -a ${q(ctrSock)}` : null;
  let ns = 0;
  console.log(`== machine: ${os.cpus().length} cores, node ${process.version}; peers: ${['skopeo', 'ctr', 'umoci'].map((p) => `${p}=${have(p) ? 'yes' : 'no'}`).join(' ')}`);

  try {
    if (want('load')) {
      console.log('\n== load --no-unpack (issue 3: >= 3x faster than ctr import --no-unpack; <= 1.5x hash+write+sync)');
      const base = row('load', bench('baseline: sha256sum + write + sync of the archive', `tee ${q(out)} < ${q(OCI_TAR)} | sha256sum >/dev/null && sync ${q(out)}`, { runs: R, prepare: fresh }));
      const me = row('load', bench('imgtool load --no-unpack', `${BIN} load --no-unpack -q -i ${q(OCI_TAR)} >/dev/null`, { runs: R, prepare: fresh, env }));
      ratio('imgtool load / (hash+write+sync)', me, base, '<= 1.5');
      if (ctr) {
        const c = row('load', bench('ctr images import --no-unpack', (i) => `${ctr} -n bench-load-${ns++}-${i} images import --no-unpack --all-platforms ${q(OCI_TAR)} >/dev/null`, { runs: R }));
        ratio('ctr import / imgtool load (speed-up)', c, me, '>= 3');
      }
    }

    if (want('save')) {
      console.log('\n== save (issue 3: >= 2x faster than skopeo; <= 1.5x cat of the blobs + sync)');
      fresh();
      sh(`IMGTOOL_ROOT=${q(store)} ${BIN} load --no-unpack -q -i ${q(OCI_TAR)} >/dev/null`);
      const rmOut = () => fs.rmSync(out, { force: true });
      const base = row('save', bench('baseline: cat blobs > file + sync', `cat ${blobFiles.map(q).join(' ')} > ${q(out)} && sync ${q(out)}`, { runs: R, prepare: rmOut }));
      row('save', bench('baseline: sha256sum of the blobs', `sha256sum ${blobFiles.map(q).join(' ')} >/dev/null`, { runs: R }));
      const me = row('save', bench('imgtool save (oci+docker)', `${BIN} save -q -o ${q(out)} ${q(NAME)} >/dev/null`, { runs: R, prepare: rmOut, env }));
      ratio('imgtool save / (cat + sync)', me, base, '<= 1.5');
      if (have('skopeo')) {
        const s1 = row('save', bench('skopeo copy oci: -> docker-archive:', `skopeo copy -q oci:${OCI_DIR}:bench docker-archive:${out}:bench/image:1 >/dev/null`, { runs: R, prepare: rmOut }));
        ratio('skopeo docker-archive / imgtool save (speed-up)', s1, me, '>= 2');
        const s2 = row('save', bench('skopeo copy oci: -> oci-archive:', `skopeo copy -q oci:${OCI_DIR}:bench oci-archive:${out}:bench >/dev/null`, { runs: R, prepare: rmOut }));
        ratio('skopeo oci-archive / imgtool save (speed-up)', s2, me, '>= 2');
      }
      if (ctr) {
        const n = `bench-save-${ns++}`;
        sh(`${ctr} -n ${n} images import --no-unpack --all-platforms ${q(OCI_TAR)} >/dev/null`);
        const c = row('save', bench('ctr images export', `${ctr} -n ${n} images export ${q(out)} ${q(NAME)} >/dev/null && sync ${q(out)}`, { runs: R, prepare: rmOut }));
        ratio('ctr export / imgtool save (speed-up)', c, me);
      }
    }

    if (want('unpack')) {
      console.log('\n== unpack (issue 4) and layer rebuild from snapshot');
      const prep = () => { fresh(); sh(`IMGTOOL_ROOT=${q(store)} ${BIN} load --no-unpack -q -i ${q(OCI_TAR)} >/dev/null`); };
      const me = row('unpack', bench('imgtool unpack', `${BIN} unpack -q ${q(NAME)} >/dev/null`, { runs: R, prepare: prep, env }));
      const snapBytes = Number(sh(`du -sb --apparent-size ${q(path.join(store, 'snapshots'))} | cut -f1`));
      const layerBytes = info.layers.reduce((a, l) => a + l.uncompressedSize, 0);
      console.log(`  snapshot apparent size ${(snapBytes / 1048576).toFixed(1)} MiB vs sum of uncompressed layers ${(layerBytes / 1048576).toFixed(1)} MiB: ${(snapBytes / layerBytes).toFixed(3)}x (target <= 1.1)`);
      ratios.push({ label: 'snapshot storage / sum of layers', value: snapBytes / layerBytes, target: '<= 1.1' });
      if (have('umoci')) {
        const bundle = path.join(work, 'bundle');
        const u = row('unpack', bench('umoci unpack', `umoci unpack --rootless --image ${q(OCI_DIR)}:bench ${q(bundle)} >/dev/null 2>&1`, { runs: R, prepare: () => fs.rmSync(bundle, { recursive: true, force: true }) }));
        ratio('umoci unpack / imgtool unpack (speed-up)', u, me);
        fs.rmSync(bundle, { recursive: true, force: true });
      }
      if (ctr) {
        const c = row('unpack', bench('ctr import + unpack (native snapshotter)', (i) => `${ctr} -n bench-unpack-${ns++}-${i} images import --snapshotter native ${q(OCI_TAR)} >/dev/null`, { runs: R }));
        ratio('ctr import+unpack / imgtool unpack', c, me);
      }
      // Rebuild: after --discard-layers, save --compression none must rebuild both layers from snapshots.
      const prepDiscard = () => { fresh(); sh(`IMGTOOL_ROOT=${q(store)} ${BIN} load -q --discard-layers -i ${q(OCI_TAR)} >/dev/null`); };
      const unc = path.join(work, 'uncompressed');
      const rb = row('unpack', bench('imgtool save --compression none after discard (rebuild)', `${BIN} save -q --format oci --compression none -o ${q(out)} ${q(NAME)} >/dev/null`, { runs: R, prepare: prepDiscard, env }));
      const catUnc = row('unpack', bench('baseline: zcat of the original layer blobs + sync', `cat ${blobFiles.slice(2).map(q).join(' ')} | gzip -dc > ${q(unc)} && sync ${q(unc)}`, { runs: R }));
      ratio('rebuild-from-snapshot save / zcat of original blobs', rb, catUnc);
      fs.rmSync(unc, { force: true });
    }

    if (want('convert')) {
      console.log('\n== convert gzip -> zstd, two layers (issues 5, 16: >= 1.5x skopeo speed; reuse < 5% of first; RSS < 200 MB)');
      const prep = () => { fresh(); sh(`IMGTOOL_ROOT=${q(store)} ${BIN} load --no-unpack -q -i ${q(OCI_TAR)} >/dev/null`); };
      const first = row('convert', bench('imgtool convert --compression zstd (first)', `${BIN} convert -q --compression zstd ${q(NAME)} bench/zstd:1 >/dev/null`, { runs: R, prepare: prep, env }));
      const again = row('convert', bench('imgtool convert --compression zstd (reuse)', (i) => `${BIN} convert -q --compression zstd ${q(NAME)} bench/zstd:again${i} >/dev/null`, { runs: R, env }));
      console.log(`  cpu utilisation (first): ${(first.cpu / first.secs).toFixed(2)} cores`);
      ratio('reuse / first', again, first, '< 0.05');
      rss('convert (two layers)', first);
      if (have('skopeo')) {
        const dst = path.join(work, 'zstd-oci');
        const s = row('convert', bench('skopeo copy --dest-compress-format zstd (oci: -> oci:)', `skopeo copy -q --dest-compress-format zstd oci:${OCI_DIR}:bench oci:${dst}:bench >/dev/null`, { runs: R, prepare: () => fs.rmSync(dst, { recursive: true, force: true }) }));
        ratio('skopeo zstd / imgtool convert (speed-up)', s, first, '>= 1.5');
        fs.rmSync(dst, { recursive: true, force: true });
      }

      // One big layer: bound by the serial gunzip; the other stages run beside it.
      const oneDir = path.join(o.cache, `image-1layer-${o.oneLayerMib}`);
      console.log(`\n== convert gzip -> zstd, ONE layer of ${o.oneLayerMib} MiB (issue 16: <= 1.25x the zcat floor plus start-up; RSS < 200 MB)`);
      execFileSync(process.execPath, [path.join(REPO, 'scripts', 'gen-bench-image.js'), oneDir, '--size-mib', String(o.oneLayerMib), '--layers', '1'], { stdio: 'inherit' });
      const one = JSON.parse(fs.readFileSync(path.join(oneDir, 'bench.json'), 'utf8'));
      const oneTar = path.join(oneDir, 'bench.oci.tar');
      const oneLayer = path.join(oneDir, 'oci', 'blobs', 'sha256', one.layers[0].digest.slice(7));
      const oneStore = path.join(work, 'store-1layer');
      const oneEnv = { IMGTOOL_ROOT: oneStore };
      const prepOne = () => { fs.rmSync(oneStore, { recursive: true, force: true }); sh(`IMGTOOL_ROOT=${q(oneStore)} ${BIN} load --no-unpack -q -i ${q(oneTar)} >/dev/null && sync`); };
      const zcat = row('convert', bench('floor: zcat LAYER > /dev/null', `zcat ${q(oneLayer)} >/dev/null`, { runs: R }));
      const node0 = row('convert', bench('start-up: node -e 0', `${process.execPath} -e 0`, { runs: R }));
      const conv1 = row('convert', bench('imgtool convert --compression zstd (one layer)', `${BIN} convert -q --compression zstd ${q(one.files['bench.oci.tar'].name)} bench/zstd-one:1 >/dev/null`, { runs: R, prepare: prepOne, env: oneEnv }));
      console.log(`  cpu utilisation: ${(conv1.cpu / conv1.secs).toFixed(2)} cores; floor + start-up = ${(zcat.secs + node0.secs).toFixed(2)} s`);
      ratio('one layer: (imgtool convert - node -e 0) / zcat', (conv1.secs - node0.secs) / zcat.secs, null, '<= 1.25');
      ratio('one layer: imgtool convert / (zcat + node -e 0)', conv1, { secs: zcat.secs + node0.secs });
      rss('convert (one layer)', conv1);
      if (have('skopeo')) {
        const dst = path.join(work, 'zstd-oci-1');
        const s1 = row('convert', bench('skopeo copy --dest-compress-format zstd (one layer)', `skopeo copy -q --dest-compress-format zstd oci:${path.join(oneDir, 'oci')}:bench oci:${dst}:bench >/dev/null`, { runs: R, prepare: () => fs.rmSync(dst, { recursive: true, force: true }) }));
        ratio('one layer: skopeo zstd / imgtool convert (speed-up)', s1, conv1);
        fs.rmSync(dst, { recursive: true, force: true });
      }
    }

    if (want('kind') && ctr) {
      console.log('\n== KIND preload + import into containerd (issue 7)');
      fresh();
      sh(`IMGTOOL_ROOT=${q(store)} ${BIN} load --no-unpack -q -i ${q(OCI_TAR)} >/dev/null`);
      const pre = path.join(work, 'preload.tar');
      const me = row('kind', bench('imgtool kind preload + ctr import --no-unpack', (i) => `${BIN} kind preload -q -o ${q(pre)} ${q(NAME)} >/dev/null && ${ctr} -n bench-kind-${ns++}-${i} images import --no-unpack --all-platforms --digests ${q(pre)} >/dev/null`, { runs: R, env, prepare: () => fs.rmSync(pre, { force: true }) }));
      if (have('skopeo')) {
        const s = row('kind', bench('skopeo oci-archive + ctr import --no-unpack', (i) => `skopeo copy -q oci:${OCI_DIR}:bench oci-archive:${q(pre)}:${NAME} >/dev/null && ${ctr} -n bench-kind-s-${ns++}-${i} images import --no-unpack --all-platforms --digests ${q(pre)} >/dev/null`, { runs: R, prepare: () => fs.rmSync(pre, { force: true }) }));
        ratio('skopeo+ctr / imgtool preload+ctr (speed-up)', s, me);
      }
      // Delta: the node has the image; a new image shares the big random layer and changes only the top one.
      const exec = `env CONTAINERD_ADDRESS=${ctrSock}`;
      const full = measure(`${BIN} kind load -q --json --full --name bench --nodes local --exec ${q(exec)} ${q(NAME)} > ${q(path.join(work, 'full.json'))}`, { env });
      if (full.code !== 0) throw new Error(`kind load --full failed: ${full.stderr}`);
      const layoutOut = path.join(work, 'delta.oci.tar');
      buildTopChanged(info, OCI_DIR, 'bench-text-v2', layoutOut);
      sh(`IMGTOOL_ROOT=${q(store)} ${BIN} load --no-unpack -q -i ${q(layoutOut)} >/dev/null`);
      const d = measure(`${BIN} kind load -q --json --name bench --nodes local --exec ${q(exec)} example.com/bench/image:2 > ${q(path.join(work, 'delta.json'))}`, { env });
      if (d.code !== 0) throw new Error(`kind load (delta) failed: ${d.stderr}`);
      const f = measure(`${ctr} -n k8s.io images rm example.com/bench/image:2 >/dev/null; ${BIN} kind load -q --json --full --name bench --nodes local --exec ${q(exec)} example.com/bench/image:2 > ${q(path.join(work, 'full2.json'))}`, { env });
      const bytes = (file) => {
        try {
          const m = /"bytesSent":(\d+)/.exec(JSON.stringify(JSON.parse(fs.readFileSync(path.join(work, file), 'utf8'))));
          return m ? Number(m[1]) : NaN;
        } catch { return NaN; }
      };
      console.log(`  kind load delta after changing the top layer: ${d.secs.toFixed(2)} s, ${(bytes('delta.json') / 1048576).toFixed(1)} MiB sent`);
      console.log(`  kind load --full of the same image:           ${f.secs.toFixed(2)} s, ${(bytes('full2.json') / 1048576).toFixed(1)} MiB sent`);
      rows.push({ section: 'kind', name: 'kind load delta (top layer changed)', secs: d.secs, cpu: d.cpu, rssMB: d.rssMB, note: `${bytes('delta.json')} bytes` });
      rows.push({ section: 'kind', name: 'kind load --full (same image)', secs: f.secs, cpu: f.cpu, rssMB: f.rssMB, note: `${bytes('full2.json')} bytes` });
    }
    if (want('delta')) {
      console.log('\n== delta archive after changing the top layer (issue 14): save --have vs a full save');
      fresh();
      sh(`IMGTOOL_ROOT=${q(store)} ${BIN} load --no-unpack -q -i ${q(OCI_TAR)} >/dev/null`);
      // The receiver holds the bench image; the sender has it plus image:2 = same base layer, new top layer.
      const recv = path.join(work, 'recv');
      sh(`IMGTOOL_ROOT=${q(recv)} ${BIN} load --no-unpack -q -i ${q(OCI_TAR)} >/dev/null`);
      const haveFile = path.join(work, 'have.json');
      sh(`IMGTOOL_ROOT=${q(recv)} ${BIN} have -o ${q(haveFile)}`);
      const v2 = path.join(work, 'v2.oci.tar');
      buildTopChanged(info, OCI_DIR, 'bench-delta-v2', v2);
      sh(`IMGTOOL_ROOT=${q(store)} ${BIN} load --no-unpack -q -i ${q(v2)} >/dev/null`);
      const rmOut = () => fs.rmSync(out, { force: true });
      const full = row('delta', bench('imgtool save (full) of image:2', `${BIN} save -q -o ${q(out)} example.com/bench/image:2 >/dev/null`, { runs: R, prepare: rmOut, env }));
      const fullBytes = fs.statSync(out).size;
      const dl = row('delta', bench('imgtool save --have of image:2', `${BIN} save -q -o ${q(out)} example.com/bench/image:2 --have ${q(haveFile)} >/dev/null`, { runs: R, prepare: rmOut, env }));
      const deltaBytes = fs.statSync(out).size;
      console.log(`  archive size: full ${(fullBytes / 1048576).toFixed(1)} MiB, delta ${(deltaBytes / 1048576).toFixed(1)} MiB (${((100 * deltaBytes) / fullBytes).toFixed(1)}%)`);
      ratios.push({ label: 'delta / full archive size', value: deltaBytes / fullBytes });
      ratio('full save / delta save (speed-up)', full, dl);
      row('delta', bench('imgtool load of the delta (receiver)', `${BIN} load --no-unpack -q -i ${q(out)} >/dev/null`, { runs: 1, env: { IMGTOOL_ROOT: recv } }));
    }
    // pull/push against the local registry (issue 13): scripts/bench/registry.js.
    if (want('pull') || want('push')) require('./bench/registry').run({ REPO, BIN, info, NAME, OCI_DIR, OCI_TAR, work, R, row, ratio, bench, have, sh, q });
  } finally {
    if (ctrSock) spawnSync('bash', [path.join(REPO, 'scripts', 'peers', 'containerd-down.sh'), ctrDir]);
    fs.rmSync(work, { recursive: true, force: true });
  }

  summary(o);
}

function summary(o) {
  console.log('\n== summary (median of runs; peak RSS is the max over runs)');
  const maxRss = Math.max(...rows.filter((r) => r.name.startsWith('imgtool')).map((r) => r.rssMB), 0);
  for (const r of ratios) console.log(`  ${r.label.padEnd(56)} ${r.value.toFixed(2)}${r.unit ?? 'x'} ${r.target ? `(target ${r.target}: ${verdict(r.value, r.target)})` : ''}`);
  console.log(`  imgtool peak RSS over all runs: ${maxRss.toFixed(0)} MB (target < 200 MB)`);
  fs.writeFileSync(path.join(o.cache, `results-${o.sizeMib}.json`), JSON.stringify({ when: new Date().toISOString(), sizeMib: o.sizeMib, rows, ratios }, null, 2));
}

try {
  main();
} catch (e) {
  console.error(`bench: ${e.message}`);
  process.exit(1);
}
