#!/usr/bin/env node
'use strict';
/**
 * npm run bench [-- --size-mib N] [--runs R] [--cache DIR] [--only save,load,unpack,convert,kind]
 *
 * Side-by-side, in one run, medians of R runs (default 3): wall time, CPU time and peak RSS of
 * imgtool and of the real peers (skopeo, ctr/containerd, umoci) and physical baselines (cat, sha256sum,
 * sync), on a generated two-layer image (one incompressible, one text layer; default 1 GiB),
 * generated once into the cache dir. Ratios are printed against the targets of the issues.
 * Everything is fsynced: outputs are synced by imgtool itself and by `sync FILE` for baselines.
 */
const fs = require('node:fs');
const path = require('node:path');
const os = require('node:os');
const { execFileSync, spawnSync } = require('node:child_process');
const { bench, measure } = require('./lib/measure');

const REPO = path.resolve(__dirname, '..');
const BIN = `${process.execPath} ${path.join(REPO, 'bin', 'run.js')}`;

function parseArgs(argv) {
  const o = { sizeMib: 1024, runs: 3, cache: path.join(REPO, '.cache', 'bench'), only: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--size-mib') o.sizeMib = Number(argv[++i]);
    else if (a === '--runs') o.runs = Number(argv[++i]);
    else if (a === '--cache') o.cache = path.resolve(argv[++i]);
    else if (a === '--only') o.only = new Set(argv[++i].split(','));
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
function ratio(label, a, b, target) {
  const x = a.secs / b.secs;
  ratios.push({ label, value: x, target });
  console.log(`  => ${label}: ${x.toFixed(2)}x${target ? `  (target ${target})` : ''}`);
}

function main() {
  const o = parseArgs(process.argv.slice(2));
  const want = (s) => !o.only || o.only.has(s);
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
      console.log('\n== convert gzip -> zstd (issue 5: >= 1.5x skopeo speed; reuse < 5% of first)');
      const prep = () => { fresh(); sh(`IMGTOOL_ROOT=${q(store)} ${BIN} load --no-unpack -q -i ${q(OCI_TAR)} >/dev/null`); };
      const first = row('convert', bench('imgtool convert --compression zstd (first)', `${BIN} convert -q --compression zstd ${q(NAME)} bench/zstd:1 >/dev/null`, { runs: R, prepare: prep, env }));
      const again = row('convert', bench('imgtool convert --compression zstd (reuse)', (i) => `${BIN} convert -q --compression zstd ${q(NAME)} bench/zstd:again${i} >/dev/null`, { runs: R, env }));
      console.log(`  cpu utilisation (first): ${(first.cpu / first.secs).toFixed(2)} cores`);
      ratio('reuse / first', again, first, '< 0.05');
      if (have('skopeo')) {
        const dst = path.join(work, 'zstd-oci');
        const s = row('convert', bench('skopeo copy --dest-compress-format zstd (oci: -> oci:)', `skopeo copy -q --dest-compress-format zstd oci:${OCI_DIR}:bench oci:${dst}:bench >/dev/null`, { runs: R, prepare: () => fs.rmSync(dst, { recursive: true, force: true }) }));
        ratio('skopeo zstd / imgtool convert (speed-up)', s, first, '>= 1.5');
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
      const deltaScript = `
        const B = require(${JSON.stringify(path.join(REPO, 'dist', 'src', 'builder'))});
        (async () => {
          const info = ${JSON.stringify(info)};
          const b = new B.ImageBuilder(${JSON.stringify(OCI_DIR)});
          const top = await b.layer([{ path: 'data/', type: 'dir' }, { path: 'data/text.txt', content: { size: 16 << 20, seed: 'bench-text-v2', text: true } }]);
          const base = { digest: info.layers[0].digest, size: info.layers[0].size, diffId: info.layers[0].diffId, uncompressedSize: info.layers[0].uncompressedSize, compression: 'gzip' };
          const img = b.image({ layers: [base, top], format: 'oci' });
          await b.ociArchive(${JSON.stringify(layoutOut)}, { images: [{ target: img, names: ['example.com/bench/image:2'] }] });
        })().catch((e) => { console.error(e); process.exit(1); });`;
      execFileSync(process.execPath, ['-e', deltaScript], { stdio: 'inherit' });
      sh(`IMGTOOL_ROOT=${q(store)} ${BIN} load --no-unpack -q -i ${q(layoutOut)} >/dev/null`);
      const d = measure(`${BIN} kind load -q --json --name bench --nodes local --exec ${q(exec)} example.com/bench/image:2 > ${q(path.join(work, 'delta.json'))}`, { env });
      if (d.code !== 0) throw new Error(`kind load (delta) failed: ${d.stderr}`);
      const f = measure(`${ctr} -n k8s.io images rm example.com/bench/image:2 >/dev/null; ${BIN} kind load -q --json --full --name bench --nodes local --exec ${q(exec)} example.com/bench/image:2 > ${q(path.join(work, 'full2.json'))}`, { env });
      const bytes = (file) => {
        try {
          const j = JSON.parse(fs.readFileSync(path.join(work, file), 'utf8'));
          return JSON.stringify(j).match(/"bytesSent":(\d+)/) ? Number(JSON.stringify(j).match(/"bytesSent":(\d+)/)[1]) : NaN;
        } catch { return NaN; }
      };
      console.log(`  kind load delta after changing the top layer: ${d.secs.toFixed(2)} s, ${(bytes('delta.json') / 1048576).toFixed(1)} MiB sent`);
      console.log(`  kind load --full of the same image:           ${f.secs.toFixed(2)} s, ${(bytes('full2.json') / 1048576).toFixed(1)} MiB sent`);
      rows.push({ section: 'kind', name: 'kind load delta (top layer changed)', secs: d.secs, cpu: d.cpu, rssMB: d.rssMB, note: `${bytes('delta.json')} bytes` });
      rows.push({ section: 'kind', name: 'kind load --full (same image)', secs: f.secs, cpu: f.cpu, rssMB: f.rssMB, note: `${bytes('full2.json')} bytes` });
    }
  } finally {
    if (ctrSock) spawnSync('bash', [path.join(REPO, 'scripts', 'peers', 'containerd-down.sh'), ctrDir]);
    fs.rmSync(work, { recursive: true, force: true });
  }

  console.log('\n== summary (median of runs; peak RSS is the max over runs)');
  const maxRss = Math.max(...rows.filter((r) => r.name.startsWith('imgtool')).map((r) => r.rssMB), 0);
  for (const r of ratios) console.log(`  ${r.label.padEnd(56)} ${r.value.toFixed(2)}x ${r.target ? `(target ${r.target})` : ''}`);
  console.log(`  imgtool peak RSS over all runs: ${maxRss.toFixed(0)} MB (target < 200 MB)`);
  fs.writeFileSync(path.join(o.cache, `results-${o.sizeMib}.json`), JSON.stringify({ when: new Date().toISOString(), sizeMib: o.sizeMib, rows, ratios }, null, 2));
}

try {
  main();
} catch (e) {
  console.error(`bench: ${e.message}`);
  process.exit(1);
}
