#!/usr/bin/env node
'use strict';
// Demo: build a small multi-layer image (whiteouts, hard links, symlinks, gzip + zstd layers)
// with imgtool's own builder, load it into a temporary store, unpack, save it back as one
// OCI+Docker archive, verify the archive, and print what happened at each step.
// Run: npm run demo   (after npm ci)
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const dist = path.join(__dirname, '..', 'dist', 'src');
if (!fs.existsSync(path.join(dist, 'index.js'))) {
  console.error('demo: run `npm run build` first (npm run demo does it)');
  process.exit(1);
}
const { ImageBuilder } = require(path.join(dist, 'builder'));
const BIN = path.join(__dirname, '..', 'bin', 'run.js');

function imgtool(root, args, { show = true } = {}) {
  const printable = ['imgtool', ...args].join(' ');
  if (show) console.log(`\n$ ${printable}`);
  const r = spawnSync(process.execPath, [BIN, ...args], { env: { ...process.env, IMGTOOL_ROOT: root }, encoding: 'utf8' });
  if (show) {
    if (r.stdout.trim()) console.log(r.stdout.trimEnd());
    if (r.stderr.trim()) console.log(r.stderr.trimEnd());
  }
  if (r.status !== 0) {
    console.error(`demo: \`${printable}\` failed with exit code ${r.status}`);
    process.exit(1);
  }
  return r.stdout;
}

async function main() {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'imgtool-demo-'));
  const root = path.join(work, 'store');
  try {
    console.log(`demo: working in ${work}`);
    const b = new ImageBuilder(path.join(work, 'build'));
    const base = await b.layer([
      { path: 'etc/', type: 'dir' },
      { path: 'etc/motd', content: 'Welcome to the imgtool demo\n' },
      { path: 'bin/', type: 'dir' },
      { path: 'bin/tool', content: { size: 256 * 1024, seed: 1 }, mode: 0o755 },
      { path: 'bin/tool-link', type: 'hardlink', target: 'bin/tool' },
      { path: 'usr/bin/', type: 'dir' },
      { path: 'usr/bin/tool', type: 'symlink', target: '/bin/tool' },
      { path: 'var/cache/', type: 'dir' },
      { path: 'var/cache/stale', content: 'old\n' },
    ], { compression: 'gzip' });
    const change = await b.layer([
      { path: 'etc/motd', type: 'whiteout' },
      { path: 'var/cache', type: 'opaque' },
      { path: 'var/cache/fresh', content: 'new\n' },
      { path: 'opt/app/README', content: { size: 128 * 1024, seed: 2, text: true } },
    ], { compression: 'zstd' });
    const img = b.image({ layers: [base, change], platform: 'linux/amd64', config: { Cmd: ['/bin/tool'] } });
    const input = path.join(work, 'demo-input.oci.tar');
    await b.ociArchive(input, { images: [{ target: img.descriptor, names: ['example.com/demo/app:1.0'] }] });
    console.log(`demo: built ${input} (${fs.statSync(input).size} bytes): 2 layers (gzip, zstd), whiteout, opaque dir, hard link, symlink`);

    imgtool(root, ['load', '-i', input]);
    imgtool(root, ['images']);
    imgtool(root, ['snapshots']);
    imgtool(root, ['tag', 'example.com/demo/app:1.0', 'demo:latest']);
    const out = path.join(work, 'demo-output.tar');
    imgtool(root, ['save', '-o', out, 'example.com/demo/app:1.0', 'demo:latest']);
    imgtool(root, ['verify', out]);
    imgtool(root, ['ls-archive', out]);
    const tree = path.join(work, 'rootfs');
    imgtool(root, ['export-rootfs', 'demo:latest', '--dir', tree]);
    const files = [];
    const walk = (d, rel = '') => {
      for (const e of fs.readdirSync(d, { withFileTypes: true }).sort((x, y) => x.name.localeCompare(y.name))) {
        const r = path.posix.join(rel, e.name);
        files.push(e.isDirectory() ? r + '/' : e.isSymbolicLink() ? `${r} -> ${fs.readlinkSync(path.join(d, e.name))}` : r);
        if (e.isDirectory()) walk(path.join(d, e.name), r);
      }
    };
    walk(tree);
    console.log(`\ndemo: merged root filesystem (etc/motd whited out, var/cache made opaque):\n  ${files.join('\n  ')}`);
    console.log(`\ndemo: OK — loaded, unpacked, saved and verified. Archive: ${out}`);
  } finally {
    if (!process.env.IMGTOOL_DEMO_KEEP) fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(`demo: ${e.stack || e}`);
  process.exit(1);
});
