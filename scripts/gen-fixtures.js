#!/usr/bin/env node
/**
 * Generate the documented fixture set (see fixtures/README.md) with the deterministic
 * builder. Run after `npm run build`:
 *
 *   node scripts/gen-fixtures.js [OUTDIR]     (default fixtures/generated/, gitignored)
 *
 * Same builder + same zlib/zstd versions → byte-identical files. Writes OUTDIR/fixtures.json
 * describing every fixture (file, format, names, manifest digests, layer diffIDs).
 * Tests should call the builder API (src/builder) directly rather than rely on these files.
 */
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const REPO = path.resolve(__dirname, '..');
let B;
try {
  B = require(path.join(REPO, 'dist', 'src', 'builder'));
} catch (e) {
  console.error(`gen-fixtures: cannot load dist/src/builder (run \`npm run build\` first): ${e.message}`);
  process.exit(1);
}
const { ImageBuilder, writeRawTar } = B;

const KiB = 1024;
const CAP_NET_RAW = Buffer.from('0100000200200000000000000000000000000000', 'hex');
const LONG_DIR = 'usr/share/doc/' + 'a-directory-name-long-enough-to-need-an-extended-header-'.repeat(2).slice(0, 110);

/** Layer specs shared by the fixtures. */
const SPECS = {
  base: [
    { path: 'bin/', type: 'dir' },
    { path: 'etc/', type: 'dir' },
    { path: 'etc/motd', content: 'welcome to the fixture image\n' },
    { path: 'etc/os-release', content: 'ID=fixture\nVERSION_ID=1\n' },
    { path: 'etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n' },
    { path: 'bin/sh', content: { size: 64 * KiB, seed: 'sh' }, mode: 0o755 },
    { path: 'bin/ping', content: { size: 16 * KiB, seed: 'ping' }, mode: 0o4755, xattrs: { 'security.capability': CAP_NET_RAW } },
    { path: 'bin/ash', type: 'hardlink', target: 'bin/sh' },
    { path: 'bin/bash', type: 'symlink', target: 'sh' },
    { path: 'usr/', type: 'dir' },
    { path: 'usr/bin/', type: 'dir' },
    { path: 'usr/bin/env', type: 'symlink', target: '/bin/sh' },
    { path: `${LONG_DIR}/`, type: 'dir' },
    { path: `${LONG_DIR}/README-with-a-long-name-as-well.txt`, content: { size: 8 * KiB, seed: 'readme', text: true } },
    { path: 'home/', type: 'dir' },
    { path: 'home/user/', type: 'dir', uid: 1000, gid: 1000, mode: 0o700 },
    { path: 'home/user/.profile', content: 'export PS1="$ "\n', uid: 1000, gid: 1000, uname: 'user', gname: 'user' },
    { path: 'var/', type: 'dir' },
    { path: 'var/cache/', type: 'dir' },
    { path: 'var/cache/old-1', content: 'stale\n' },
    { path: 'var/cache/old-2', content: 'stale\n' },
    { path: 'dev/', type: 'dir' },
    { path: 'dev/null', type: 'char', major: 1, minor: 3 },
    { path: 'dev/loop0', type: 'block', major: 7, minor: 0 },
    { path: 'run/', type: 'dir' },
    { path: 'run/initctl', type: 'fifo', mode: 0o600 },
  ],
  changes: [
    { path: 'etc/motd', type: 'whiteout' },
    { path: 'var/cache/', type: 'dir' },
    { path: 'var/cache/', type: 'opaque' },
    { path: 'var/cache/new', content: 'fresh\n' },
    { path: 'etc/os-release', content: 'ID=fixture\nVERSION_ID=2\n' },
    { path: 'bin/ash', type: 'whiteout' },
  ],
  app: [
    { path: 'opt/', type: 'dir' },
    { path: 'opt/app/', type: 'dir' },
    { path: 'opt/app/data.bin', content: { size: 256 * KiB, seed: 'app-data' } },
    { path: 'opt/app/notes.txt', content: { size: 128 * KiB, seed: 'app-notes', text: true } },
  ],
  extraA: [{ path: 'opt/a', content: 'a\n' }],
  extraB: [{ path: 'opt/b', content: 'b\n' }],
  extraC: [{ path: 'opt/c', content: 'c\n' }],
};

async function main() {
  const out = path.resolve(process.argv[2] || path.join(REPO, 'fixtures', 'generated'));
  fs.mkdirSync(out, { recursive: true });
  const work = path.join(out, '.work');
  fs.rmSync(work, { recursive: true, force: true });
  const b = new ImageBuilder(work);
  const written = [];
  const record = (res, info) => {
    const rel = path.relative(out, res.path);
    written.push({ file: rel, size: res.size, sha256: res.digest, ...info });
    console.log(`${rel.padEnd(44)} ${String(res.size).padStart(9)}  ${info.description}`);
  };
  const f = (name) => path.join(out, name);
  const imgInfo = (img) => ({
    manifest: img.descriptor.digest,
    config: img.config.digest,
    layers: img.layers.map((l) => ({ digest: l.digest, diffId: l.diffId, compression: l.compression, ...(l.level !== undefined ? { level: l.level } : {}) })),
  });

  // --- the multi-layer image, in every container format -------------------------------
  const base = await b.layer(SPECS.base, { compression: 'gzip', createdBy: 'ADD base' });
  const changes = await b.layer(SPECS.changes, { compression: 'gzip', createdBy: 'RUN rm /etc/motd; rm -rf /var/cache/*' });
  const app = await b.layer(SPECS.app, { compression: 'gzip', createdBy: 'COPY app /opt/app' });
  const ml = b.image({ layers: [base, changes, app], config: { Env: ['PATH=/usr/bin:/bin'], Cmd: ['/bin/sh'] } });
  const mlOci = b.image({ layers: [base, changes, app], config: { Env: ['PATH=/usr/bin:/bin'], Cmd: ['/bin/sh'] }, format: 'oci' });
  const MLN = 'example.com/fixtures/multilayer:1';
  const desc = (d) => ({ description: d });
  record(await b.ociArchive(f('multilayer.oci.tar'), { images: [{ target: mlOci, names: [MLN] }] }), {
    ...desc('3 gzip layers (whiteouts, opaque dir, hard links, symlinks, xattr, long names, devices); OCI archive, ctr-style annotations'),
    format: 'oci-archive', names: [MLN], images: [imgInfo(mlOci)],
  });
  record(await b.ociArchive(f('multilayer-docker-types.oci.tar'), { images: [{ target: ml, names: [MLN] }] }), {
    ...desc('same content, Docker schema2 media types in an OCI archive (as ctr export of a docker-pulled image)'),
    format: 'oci-archive', names: [MLN], images: [imgInfo(ml)],
  });
  record(await b.ociArchive(f('multilayer-skopeo.oci.tar'), { images: [{ target: mlOci, names: ['1'] }], annotate: 'skopeo-full' }), {
    ...desc('skopeo-style: org.opencontainers.image.ref.name = "1" only (oci-archive:FILE:1)'),
    format: 'oci-archive', names: ['1'], images: [imgInfo(mlOci)],
  });
  record(await b.ociArchive(f('multilayer-noname.oci.tar'), { images: [{ target: mlOci }] }), {
    ...desc('index.json entry without any annotation'), format: 'oci-archive', names: [], images: [imgInfo(mlOci)],
  });
  record(await b.dockerArchive(f('multilayer.docker-legacy.tar'), { images: [{ image: ml, tags: [MLN] }], layout: 'legacy' }), {
    ...desc('docker save < 25: <v1id>/layer.tar (uncompressed), json, VERSION, <config>.json, manifest.json, repositories'),
    format: 'docker-legacy', names: [MLN], images: [imgInfo(ml)],
  });
  record(await b.dockerArchive(f('multilayer-gzlayers.docker-legacy.tar'), { images: [{ image: ml, tags: [MLN] }], layout: 'legacy', compressedLayers: true }), {
    ...desc('legacy layout whose layer.tar files are gzip-compressed'), format: 'docker-legacy', names: [MLN], images: [imgInfo(ml)],
  });
  record(await b.dockerArchive(f('multilayer.docker25.tar'), { images: [{ image: ml, tags: [MLN] }] }), {
    ...desc('docker save >= 25: OCI layout + manifest.json + repositories, uncompressed layers at blobs/sha256/<diffID>'),
    format: 'docker25', names: [MLN], images: [imgInfo(ml)],
  });
  record(await b.dockerArchive(f('multilayer-containerd-store.docker25.tar'), { images: [{ image: ml, tags: [MLN] }], compressedLayers: true }), {
    ...desc('docker save with the containerd image store: 25+ layout but original (gzip) manifest and blobs'),
    format: 'docker25', names: [MLN], images: [imgInfo(ml)],
  });
  record(await b.dockerArchive(f('multilayer-manifest-last.docker-legacy.tar'), { images: [{ image: ml, tags: [MLN] }], layout: 'legacy', order: 'manifest-last' }), {
    ...desc('legacy layout with manifest.json as the very last entry'), format: 'docker-legacy', names: [MLN], images: [imgInfo(ml)],
  });
  record(await b.ociArchive(f('multilayer-index-last.oci.tar'), { images: [{ target: mlOci, names: [MLN] }], order: 'metadata-last' }), {
    ...desc('OCI archive with blobs before oci-layout/index.json'), format: 'oci-archive', names: [MLN], images: [imgInfo(mlOci)],
  });
  record(await b.ociArchive(f('multilayer.oci.tar.gz'), { images: [{ target: mlOci, names: [MLN] }], wrap: 'gzip' }), {
    ...desc('whole OCI archive gzip-compressed'), format: 'oci-archive+gzip', names: [MLN], images: [imgInfo(mlOci)],
  });
  record(await b.dockerArchive(f('multilayer.docker25.tar.zst'), { images: [{ image: ml, tags: [MLN] }], wrap: 'zstd' }), {
    ...desc('whole docker 25+ archive zstd-compressed'), format: 'docker25+zstd', names: [MLN], images: [imgInfo(ml)],
  });
  {
    const lb = new ImageBuilder(f('multilayer.oci-layout'));
    const l1 = await lb.layer(SPECS.base, { compression: 'gzip', createdBy: 'ADD base' });
    const l2 = await lb.layer(SPECS.changes, { compression: 'gzip', createdBy: 'RUN rm /etc/motd; rm -rf /var/cache/*' });
    const l3 = await lb.layer(SPECS.app, { compression: 'gzip', createdBy: 'COPY app /opt/app' });
    const img = lb.image({ layers: [l1, l2, l3], config: { Env: ['PATH=/usr/bin:/bin'], Cmd: ['/bin/sh'] }, format: 'oci' });
    lb.ociLayout({ images: [{ target: img, names: ['1'] }], annotate: 'skopeo-full' });
    written.push({ file: 'multilayer.oci-layout/', format: 'oci-layout', names: ['1'], images: [imgInfo(img)], description: 'the same image as an OCI layout directory (oci:DIR:1)' });
    console.log(`${'multilayer.oci-layout/'.padEnd(44)} ${'dir'.padStart(9)}  OCI layout directory (skopeo oci:DIR:1, umoci)`);
  }

  // --- multi-platform ----------------------------------------------------------------
  const plats = ['linux/amd64', 'linux/arm64/v8', 'linux/arm/v7'];
  const perArch = [];
  for (const p of plats) {
    const l = await b.layer([{ path: 'etc/arch', content: `${p}\n` }, { path: 'bin/tool', content: { size: 32 * KiB, seed: `tool-${p}` }, mode: 0o755 }], { compression: 'gzip' });
    perArch.push(b.image({ layers: [base, l], platform: p, format: 'oci' }));
  }
  const idx = b.index({ images: perArch, attestations: true });
  const MPN = 'example.com/fixtures/multiplatform:1';
  const idxInfo = { index: idx.descriptor.digest, images: perArch.map((i) => ({ platform: i.platform, ...imgInfo(i) })), attestations: idx.attestations.map((a) => a.descriptor.digest) };
  record(await b.ociArchive(f('multiplatform.oci.tar'), { images: [{ target: idx, names: [MPN] }] }), {
    ...desc('OCI index: linux/amd64, linux/arm64/v8, linux/arm/v7 + 3 attestation manifests (unknown/unknown, in-toto layer)'),
    format: 'oci-archive', names: [MPN], ...idxInfo,
  });
  const missing = [...perArch.slice(1), ...idx.attestations].flatMap((i) => [i.descriptor.digest, i.config.digest, ...i.layers.map((l) => l.digest)]).filter((d) => !perArch[0].layers.some((l) => l.digest === d));
  record(await b.ociArchive(f('multiplatform-amd64-only.oci.tar'), { images: [{ target: idx, names: [MPN] }], omitBlobs: missing }), {
    ...desc('same index, but only linux/amd64 content present (partial multi-platform archive, like ctr export --platform)'),
    format: 'oci-archive', names: [MPN], ...idxInfo,
  });
  const list = b.index({ images: perArch.map((i, n) => b.image({ layers: i.layers, platform: plats[n] })), format: 'docker' });
  record(await b.ociArchive(f('multiplatform-manifest-list.oci.tar'), { images: [{ target: list, names: ['example.com/fixtures/multiplatform:docker'] }] }), {
    ...desc('Docker manifest list (schema2) over the same 3 platforms, no attestations'), format: 'oci-archive', names: ['example.com/fixtures/multiplatform:docker'], index: list.descriptor.digest,
  });

  // --- compression variants: same diffIDs, different blobs ---------------------------
  const variants = {};
  for (const [tag, opts] of [['none', { compression: 'none' }], ['gzip', { compression: 'gzip' }], ['zstd', { compression: 'zstd' }], ['gzip1', { compression: 'gzip', level: 1 }], ['gzip9', { compression: 'gzip', level: 9 }]]) {
    const ls = [];
    for (const s of [SPECS.base, SPECS.app]) ls.push(await b.layer(s, opts));
    const img = b.image({ layers: ls, format: 'oci' });
    variants[tag] = img;
    const name = `example.com/fixtures/compression:${tag}`;
    record(await b.ociArchive(f(`compression-${tag}.oci.tar`), { images: [{ target: img, names: [name] }] }), {
      ...desc(`2 layers (base, app) compressed ${tag}; diffIDs identical across all compression-* fixtures`),
      format: 'oci-archive', names: [name], images: [imgInfo(img)],
    });
  }
  record(
    await b.ociArchive(f('same-diffids-gzip1-gzip9.oci.tar'), { images: [{ target: variants.gzip1, names: ['example.com/fixtures/same:gzip1'] }, { target: variants.gzip9, names: ['example.com/fixtures/same:gzip9'] }] }),
    { ...desc('two images, same diffIDs, gzip level 1 vs level 9 blobs, in one archive'), format: 'oci-archive', names: ['example.com/fixtures/same:gzip1', 'example.com/fixtures/same:gzip9'], images: [imgInfo(variants.gzip1), imgInfo(variants.gzip9)] },
  );
  record(
    await b.ociArchive(f('same-diffids-gzip-zstd.oci.tar'), { images: [{ target: variants.gzip, names: ['example.com/fixtures/same:gzip'] }, { target: variants.zstd, names: ['example.com/fixtures/same:zstd'] }] }),
    { ...desc('two images, same diffIDs, gzip vs zstd blobs, in one archive'), format: 'oci-archive', names: ['example.com/fixtures/same:gzip', 'example.com/fixtures/same:zstd'], images: [imgInfo(variants.gzip), imgInfo(variants.zstd)] },
  );

  // --- several names sharing layers ----------------------------------------------------
  const ea = await b.layer(SPECS.extraA, { compression: 'gzip' });
  const eb = await b.layer(SPECS.extraB, { compression: 'gzip' });
  const ec = await b.layer(SPECS.extraC, { compression: 'gzip' });
  const sa = b.image({ layers: [base, app, ea] });
  const sb = b.image({ layers: [base, app, eb] });
  const sc = b.image({ layers: [base, ec] });
  const shared = [
    { image: sa, tags: ['example.com/fixtures/app-a:1', 'example.com/fixtures/app-a:latest'] },
    { image: sb, tags: ['example.com/fixtures/app-b:1'] },
    { image: sc, tags: ['fixtures/app-c:1'] },
  ];
  const sharedInfo = { names: shared.flatMap((s) => s.tags), images: shared.map((s) => imgInfo(s.image)) };
  record(await b.ociArchive(f('shared-layers.oci.tar'), { images: shared.map((s) => ({ target: s.image, names: s.tags })) }), {
    ...desc('3 images / 4 names sharing base+app layers (each blob stored once)'), format: 'oci-archive', ...sharedInfo,
  });
  record(await b.dockerArchive(f('shared-layers.docker-legacy.tar'), { images: shared, layout: 'legacy' }), {
    ...desc('the same 3 images in one legacy docker archive'), format: 'docker-legacy', ...sharedInfo,
  });
  record(await b.dockerArchive(f('shared-layers.docker25.tar'), { images: shared }), {
    ...desc('the same 3 images in one docker 25+ archive'), format: 'docker25', ...sharedInfo,
  });
  const dup = b.image({ layers: [base, ea, base] });
  record(await b.dockerArchive(f('dup-layer-symlink.docker-legacy.tar'), { images: [{ image: dup, tags: ['fixtures/dup:1'] }], layout: 'legacy' }), {
    ...desc('legacy archive where the 3rd layer.tar is a symlink to the 1st (same diffID twice in one image)'), format: 'docker-legacy', names: ['fixtures/dup:1'], images: [imgInfo(dup)],
  });

  // --- hostile inputs -----------------------------------------------------------------
  fs.mkdirSync(f('hostile'), { recursive: true });
  const ociLayout = { name: 'oci-layout', data: JSON.stringify({ imageLayoutVersion: '1.0.0' }) };
  const hostile = [
    ['path-traversal.tar', [ociLayout, { name: '../escape', data: 'x' }], 'entry named ../escape'],
    ['absolute-path.tar', [ociLayout, { name: '/etc/evil', data: 'x' }], 'entry named /etc/evil'],
    ['symlink-escape.tar', [ociLayout, { name: 'blobs/', type: 'dir' }, { name: 'blobs/sha256', type: 'symlink', linkname: '/tmp' }, { name: 'blobs/sha256/x', data: 'x' }], 'blobs/sha256 is a symlink to /tmp, then a file through it'],
    ['hardlink-escape.tar', [ociLayout, { name: 'index.json', type: 'hardlink', linkname: '/etc/passwd' }], 'index.json is a hard link to /etc/passwd'],
    ['huge-declared-size.tar', [ociLayout, { name: 'index.json', data: '{}', size: 1 << 40 }], 'index.json declares 1 TiB but the file ends'],
    ['no-end-blocks.tar', [ociLayout], 'valid entries but no end-of-archive blocks', { endBlocks: false }],
  ];
  for (const [name, entries, d, opts] of hostile) {
    record(await writeRawTar(f(`hostile/${name}`), entries, opts || {}), { ...desc(d), format: 'raw-tar' });
  }
  const full = await b.ociArchive(f('hostile/truncated.oci.tar'), { images: [{ target: mlOci, names: [MLN] }], truncateAt: 100 * KiB });
  record(full, { ...desc('multilayer.oci.tar cut at 100 KiB (mid-blob)'), format: 'oci-archive', names: [MLN] });

  fs.rmSync(work, { recursive: true, force: true });
  fs.writeFileSync(path.join(out, 'fixtures.json'), JSON.stringify({ generator: 'scripts/gen-fixtures.js', fixtures: written }, null, 2) + '\n');
  console.log(`\n${written.length} fixtures in ${out} (descriptions and digests: ${path.join(out, 'fixtures.json')})`);
}

main().catch((e) => {
  console.error(`gen-fixtures: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
