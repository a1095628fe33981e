'use strict';
/**
 * The fuzzer's seed archives: small versions of the generated fixtures (scripts/gen-fixtures.js)
 * in every container format, built with the deterministic builder (src/builder), so a case is
 * a pure function of (run seed, case number). Kept small (a few KiB each) so ten thousand
 * cases fit in the time budget; the bombs are added by the mutators, not here.
 */
const fs = require('node:fs');
const path = require('node:path');

const KiB = 1024;
const LONG = 'usr/share/doc/' + 'a-directory-name-long-enough-to-need-an-extended-header-'.repeat(2).slice(0, 110);

const BASE = [
  { path: 'bin/', type: 'dir' },
  { path: 'etc/', type: 'dir' },
  { path: 'etc/motd', content: 'welcome\n' },
  { path: 'etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\n' },
  { path: 'bin/sh', content: { size: 4 * KiB, seed: 'sh' }, mode: 0o755 },
  { path: 'bin/ash', type: 'hardlink', target: 'bin/sh' },
  { path: 'bin/bash', type: 'symlink', target: 'sh' },
  { path: `${LONG}/`, type: 'dir' },
  { path: `${LONG}/README`, content: { size: KiB, seed: 'readme', text: true } },
  { path: 'var/', type: 'dir' },
  { path: 'var/cache/', type: 'dir' },
  { path: 'var/cache/old', content: 'stale\n' },
  { path: 'run/', type: 'dir' },
  { path: 'run/initctl', type: 'fifo', mode: 0o600 },
];
const CHANGES = [
  { path: 'etc/motd', type: 'whiteout' },
  { path: 'var/cache/', type: 'dir' },
  { path: 'var/cache/', type: 'opaque' },
  { path: 'var/cache/new', content: 'fresh\n' },
  { path: 'bin/ash', type: 'whiteout' },
];
const APP = [{ path: 'opt/', type: 'dir' }, { path: 'opt/app', content: { size: 2 * KiB, seed: 'app' } }];

/** Build the seeds into `dir` (once); returns [{ name, format, buf }] of uncompressed tars. */
async function buildSeeds(dist, dir) {
  const { ImageBuilder } = require(path.join(dist, 'src', 'builder', 'index.js'));
  const { hostPlatform, formatPlatform } = require(path.join(dist, 'src', 'platform', 'index.js'));
  const listFile = path.join(dir, 'seeds.json');
  if (fs.existsSync(listFile)) {
    return JSON.parse(fs.readFileSync(listFile, 'utf8')).map((s) => ({ ...s, buf: fs.readFileSync(path.join(dir, s.file)) }));
  }
  fs.mkdirSync(dir, { recursive: true });
  const b = new ImageBuilder(path.join(dir, 'blobs'));
  const host = formatPlatform(hostPlatform());
  const base = await b.layer(BASE, { compression: 'gzip' });
  const changes = await b.layer(CHANGES, { compression: 'gzip' });
  const app = await b.layer(APP, { compression: 'gzip' });
  const ml = b.image({ layers: [base, changes, app], platform: host, config: { Cmd: ['/bin/sh'] } });
  const mlOci = b.image({ layers: [base, changes, app], platform: host, format: 'oci' });
  const zb = await b.layer(BASE, { compression: 'zstd' });
  const za = await b.layer(APP, { compression: 'none' });
  const zimg = b.image({ layers: [zb, za], platform: host, format: 'oci' });
  const other = host === 'linux/arm64' ? 'linux/amd64' : 'linux/arm64';
  const arch = [];
  for (const p of [host, other]) {
    const l = await b.layer([{ path: 'etc/arch', content: `${p}\n` }], { compression: 'gzip' });
    arch.push(b.image({ layers: [base, l], platform: p, format: 'oci' }));
  }
  const idx = b.index({ images: arch, attestations: true });
  const N = 'example.com/fuzz/image:1';
  const seeds = [];
  const add = async (name, format, write) => {
    const file = `${name}.tar`;
    await write(path.join(dir, file));
    seeds.push({ name, format, file });
  };
  await add('oci', 'oci-archive', (f) => b.ociArchive(f, { images: [{ target: mlOci, names: [N] }] }));
  await add('oci-docker-types', 'oci-archive', (f) => b.ociArchive(f, { images: [{ target: ml, names: [N] }], order: 'metadata-last' }));
  await add('oci-zstd', 'oci-archive', (f) => b.ociArchive(f, { images: [{ target: zimg, names: ['example.com/fuzz/zstd:1'] }] }));
  await add('oci-index', 'oci-archive', (f) => b.ociArchive(f, { images: [{ target: idx, names: ['example.com/fuzz/multi:1'] }] }));
  await add('docker25', 'docker25', (f) => b.dockerArchive(f, { images: [{ image: ml, tags: [N] }] }));
  await add('docker25-gz', 'docker25', (f) => b.dockerArchive(f, { images: [{ image: ml, tags: [N] }], compressedLayers: true }));
  await add('docker-legacy', 'docker-legacy', (f) => b.dockerArchive(f, { images: [{ image: ml, tags: [N, 'example.com/fuzz/other:2'] }], layout: 'legacy' }));
  fs.writeFileSync(listFile, JSON.stringify(seeds, null, 2));
  return seeds.map((s) => ({ ...s, buf: fs.readFileSync(path.join(dir, s.file)) }));
}

module.exports = { buildSeeds };
