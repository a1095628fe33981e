import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { Store } from '../../src';
import { runCli, tmpDir, rmrf } from '../helpers/cli';
import { makeImage, makeLayer, ociImageArchive, ociArchive, dockerArchive, imageBlobs, blobEntry, indexDoc, compress, ownStderr } from '../unit/archive/import-fixtures';

describe('imgtool load (CLI)', () => {
  let dir: string;
  let root: string;
  beforeEach(() => {
    dir = tmpDir('imgtool-load-cli-');
    root = path.join(dir, 'store');
  });
  afterEach(() => rmrf(dir));
  const file = (name: string, b: Buffer) => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, b);
    return p;
  };

  it('loads a Docker archive from -i FILE and prints each name; images lists it', async () => {
    const img = makeImage({ oci: false, layers: [makeLayer({ a: 'b' }, 'none', false)] });
    const f = file('d.tar', dockerArchive([{ img, repoTags: ['busybox:latest', 'busybox:1'] }]));
    const r = await runCli(['load', '-i', f], { root });
    expect(ownStderr(r.stderr)).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^loaded docker.io\/library\/busybox:latest sha256:[0-9a-f]{12} linux\/amd64$/m);
    expect(r.stdout).toMatch(/^loaded docker.io\/library\/busybox:1 /m);
    const imgs = await runCli(['images', '--json'], { root });
    expect(JSON.parse(imgs.stdout).map((x: { name: string }) => x.name)).toEqual(['docker.io/library/busybox:1', 'docker.io/library/busybox:latest']);
  });

  it('reads stdin (absent -i and -i -), gzip/zstd wrapped; --json output', async () => {
    const img = makeImage();
    const plain = ociImageArchive(img, 'x.io/a:1');
    const a = await runCli(['load', '--json'], { root, input: compress(plain, 'gzip') });
    expect(a.code).toBe(0);
    const j = JSON.parse(a.stdout);
    expect(j).toEqual(expect.objectContaining({ source: 'stdin', format: 'oci', compression: 'gzip' }));
    expect(j.images).toEqual([expect.objectContaining({ names: ['x.io/a:1'], digest: img.manifest.digest, platforms: ['linux/amd64'], partial: false })]);
    const b = await runCli(['load', '-i', '-', '--json'], { root, input: { file: file('z.tar.zst', compress(plain, 'zstd')) } });
    expect(b.code).toBe(0);
    expect(JSON.parse(b.stdout).compression).toBe('zstd');
  });

  it('partial index: warning and (partial) in output; --strict and --all-platforms fail and register nothing', async () => {
    const amd = makeImage({ arch: 'amd64' });
    const arm = makeImage({ arch: 'arm64' });
    const idx = indexDoc([{ ...amd.manifest.desc, platform: { os: 'linux', architecture: 'amd64' } }, { ...arm.manifest.desc, platform: { os: 'linux', architecture: 'arm64' } }]);
    const f = file('p.tar', ociArchive([{ ...idx.desc, annotations: { 'io.containerd.image.name': 'x.io/m:1' } }], [...imageBlobs(amd), blobEntry(idx.bytes)]));
    for (const flag of ['--strict', '--all-platforms']) {
      const s = await runCli(['load', '-i', f, flag], { root });
      expect(s.code).not.toBe(0);
      expect(ownStderr(s.stderr)).toMatch(/^imgtool: error: x.io\/m:1: 1 manifest\(s\) of index .* not in the archive \(partial\): linux\/arm64 sha256:[0-9a-f]{64}; nothing loaded\n$/);
    }
    expect(JSON.parse((await runCli(['images', '--json'], { root })).stdout)).toEqual([]);
    const ok = await runCli(['load', '-i', f], { root });
    expect(ok.code).toBe(0);
    expect(ownStderr(ok.stderr)).toMatch(/^imgtool: warning: x.io\/m:1: 1 manifest\(s\) .* \(partial\)/m);
    expect(ok.stdout).toMatch(/^loaded x.io\/m:1 sha256:[0-9a-f]{12} linux\/amd64 \(partial: linux\/arm64 absent\)$/m);
  });

  it('--digests, --base-name, --index-name, and the skipped-name warning', async () => {
    const img = makeImage();
    const f = file('t.tar', ociArchive([{ ...img.manifest.desc, annotations: { 'org.opencontainers.image.ref.name': 'v1' } }], imageBlobs(img)));
    const none = await runCli(['load', '-i', f], { root });
    expect(none.code).toBe(0);
    expect(ownStderr(none.stderr)).toMatch(/warning: image sha256:[0-9a-f]{64} has no usable name: its org.opencontainers.image.ref.name "v1" is only a tag \(give --base-name\); skipped/);
    const r = await runCli(['load', '-i', f, '--base-name', 'reg.local/app', '--digests', '--index-name', 'reg.local/app:all'], { root });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('loaded reg.local/app:v1 ');
    expect(r.stdout).toContain(`loaded reg.local/app@${img.manifest.digest} `);
    expect(r.stdout).toMatch(/loaded reg.local\/app:all sha256:[0-9a-f]{12} \(whole index\)/);
  });

  it('--lease attaches what is loaded; an unknown lease fails before reading', async () => {
    const img = makeImage();
    const f = file('l.tar', ociImageArchive(img, 'x.io/l:1'));
    const bad = await runCli(['load', '-i', f, '--lease', 'nope'], { root });
    expect(bad.code).not.toBe(0);
    expect(ownStderr(bad.stderr)).toMatch(/lease "nope" not found/);
    expect((await runCli(['lease', 'create', '--id', 'keep'], { root })).code).toBe(0);
    expect((await runCli(['load', '-i', f, '--lease', 'keep'], { root })).code).toBe(0);
    const s = Store.open(root);
    try {
      const res = s.leases.resources('keep').map((x) => `${x.kind}:${x.ref}`);
      expect(res).toEqual(expect.arrayContaining([`content:${img.manifest.digest}`, `content:${img.layers[0].digest}`, 'image:x.io/l:1']));
    } finally {
      s.close();
    }
  });

  it('unpacks by default, not with --no-unpack; --discard-layers frees blobs and save rebuilds them', async () => {
    const img = makeImage({ layers: [makeLayer({ 'etc/a': 'one\n' }, 'gzip'), makeLayer({ 'etc/b': 'two\n' }, 'zstd')] });
    const f = file('u.tar', ociImageArchive(img, 'x.io/u:1'));
    const noUnpack = await runCli(['load', '--no-unpack', '-i', f], { root: path.join(dir, 'r1') });
    expect(noUnpack.code).toBe(0);
    expect(noUnpack.stdout).not.toMatch(/^unpacked/m);
    expect(JSON.parse((await runCli(['snapshots', '--json'], { root: path.join(dir, 'r1') })).stdout)).toEqual([]);

    const r = await runCli(['load', '-i', f], { root });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^unpacked x\.io\/u:1 linux\/amd64: 2 layer\(s\), 2 applied, 0 already present$/m);
    const snaps = JSON.parse((await runCli(['snapshots', '--json'], { root })).stdout);
    expect(snaps).toHaveLength(2);

    const d = await runCli(['load', '--discard-layers', '-i', f], { root: path.join(dir, 'r2') });
    expect(ownStderr(d.stderr)).toBe('');
    expect(d.code).toBe(0);
    expect(d.stdout).toMatch(/discarded 2 layer blob\(s\)/);
    const store = Store.open(path.join(dir, 'r2'));
    try {
      for (const l of img.layers) expect(store.content.has(l.digest)).toBe(false);
    } finally {
      store.close();
    }
    const listed = JSON.parse((await runCli(['images', '--json'], { root: path.join(dir, 'r2') })).stdout);
    expect(listed).toEqual([expect.objectContaining({ name: 'x.io/u:1', partial: false, rebuildable: 2 })]);
    const out = path.join(dir, 'out.tar');
    const s = await runCli(['save', '-o', out, 'x.io/u:1'], { root: path.join(dir, 'r2') });
    expect(s.code).toBe(0);
    expect((await runCli(['verify', out])).code).toBe(0);
  });

  it('a layer whose bytes do not give the config diffID fails the load and registers nothing', async () => {
    const good = makeLayer({ 'etc/a': 'real\n' }, 'gzip');
    const liar = { ...good, diffId: makeLayer({ 'etc/a': 'claimed\n' }, 'gzip').diffId };
    const img = makeImage({ layers: [liar] });
    const f = file('bad.tar', ociImageArchive(img, 'x.io/bad:1'));
    const r = await runCli(['load', '-i', f], { root });
    expect(r.code).not.toBe(0);
    expect(ownStderr(r.stderr)).toMatch(/^imgtool: error: .*diff ?id/i);
    const imgs = await runCli(['images', '--json'], { root });
    expect(JSON.parse(imgs.stdout)).toEqual([]);
    // A failed load leaves a name it would have moved where it was.
    const okImg = makeImage({ layers: [makeLayer({ 'etc/a': 'fine\n' }, 'gzip')] });
    expect((await runCli(['load', '-i', file('ok.tar', ociImageArchive(okImg, 'x.io/bad:1'))], { root })).code).toBe(0);
    expect((await runCli(['load', '-i', f], { root })).code).not.toBe(0);
    const after = JSON.parse((await runCli(['images', '--json'], { root })).stdout);
    expect(after).toEqual([expect.objectContaining({ name: 'x.io/bad:1', digest: okImg.manifest.digest })]);
    // Content-only loads do not decompress layers, so the same archive loads with --no-unpack.
    expect((await runCli(['load', '--no-unpack', '-i', f], { root })).code).toBe(0);
  });

  it('a gzip-wrapped truncated archive on stdin fails with one line', async () => {
    const gz = zlib.gzipSync(ociImageArchive(makeImage(), 'x.io/a:1'));
    const r = await runCli(['load'], { root, input: gz.subarray(0, gz.length - 20) });
    expect(r.code).not.toBe(0);
    expect(ownStderr(r.stderr)).toMatch(/^imgtool: error: stdin: gzip stream is truncated\n$/);
  });
});
