/**
 * Archives written by `saveImages` read by real peers: skopeo (docker-archive: and
 * oci-archive:), containerd's ctr (import --no-unpack --all-platforms --digests, then
 * `images check`), and umoci (unpack from the extracted OCI layout).
 * A missing peer skips loudly, and fails under CI=true (test/helpers/peers.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFile } from 'node:child_process';
import { Store, saveImages, sha256, hostPlatform, formatPlatform, SaveOptions } from '../../src';
import { tmpDir, rmrf } from '../helpers/cli';
import { requirePeer, startContainerd, stopContainerd, ctr } from '../helpers/peers';
import { addImage, addIndex, addAttestation, addVariant, readTar, FixtureImage } from '../unit/archive/export-fixtures';

function run(cmd: string, args: string[], opts: { cwd?: string } = {}): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { encoding: 'buffer', maxBuffer: 256 << 20, cwd: opts.cwd }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stderr.toString()}`));
      else resolve(stdout);
    });
  });
}

const host = hostPlatform();
const other = formatPlatform(host) === 'linux/arm64' ? { os: 'linux', architecture: 'amd64' } : { os: 'linux', architecture: 'arm64' };

interface Fixture {
  root: string;
  multi: { host: FixtureImage; other: FixtureImage; index: string };
  app: FixtureImage;
  plain: FixtureImage;
  zs: FixtureImage;
}

describe('save interop', () => {
  let dir: string;
  let fx: Fixture;
  beforeAll(async () => {
    dir = tmpDir('imgtool-xp-');
    const root = path.join(dir, 'store');
    const store = Store.open(root);
    try {
      const h = await addImage(store, { platform: host, layers: [{ 'etc/os-release': 'ID=fixture\n' }, { 'usr/bin/tool': '#!/bin/sh\necho host\n' }], label: 'host' });
      const o = await addImage(store, { platform: other, layers: [{ 'etc/os-release': 'ID=other\n' }], label: 'other' });
      const att = await addAttestation(store, h.manifest);
      const idx = await addIndex(store, [h, o], [att]);
      store.images.put('docker.io/library/multi:1', idx);
      const app = await addImage(store, { platform: host, layers: [{ 'app/main': 'docker typed\n' }, { 'app/conf': 'x=1\n' }], docker: true, label: 'app' });
      store.images.put('example.com/team/app:v1', app.manifest);
      store.images.put('docker.io/library/app-alias:latest', app.manifest);
      const plain = await addImage(store, { platform: host, layers: [{ 'hello.txt': 'hello\n', 'dir/a': 'A' }, { 'dir/b': 'B' }], compression: 'none', label: 'plain' });
      store.images.put('docker.io/library/plain:1', plain.manifest);
      const zs = await addImage(store, { platform: host, layers: [{ 'z.txt': 'zstd layer\n' }], label: 'zs' });
      await addVariant(store, zs.layers[0], 'zstd');
      store.images.put('docker.io/library/zs:1', zs.manifest);
      fx = { root, multi: { host: h, other: o, index: idx.digest }, app, plain, zs };
    } finally {
      store.close();
    }
  });
  afterAll(() => rmrf(dir));

  async function save(name: string, refs: string[], opts: Partial<SaveOptions> = {}): Promise<string> {
    const out = path.join(dir, name);
    const store = Store.open(fx.root);
    try {
      await saveImages(store, refs, { output: out, ...opts });
    } finally {
      store.close();
    }
    return out;
  }

  /** skopeo's view of one image: config digest (sha256 of its raw config) and diffIDs. */
  async function skopeoConfig(ref: string): Promise<{ digest: string; diffIds: string[] }> {
    const raw = await run('skopeo', ['inspect', '--raw', '--config', ref]);
    return { digest: sha256(raw), diffIds: JSON.parse(raw.toString()).rootfs.diff_ids };
  }

  /**
   * `skopeo copy` and the config digest + diffIDs found in the copy. From docker-archive:
   * the copy goes to `dir:` (skopeo keeps schema2 there; converting to OCI would make it
   * re-serialise the config), from oci-archive: to an `oci:` layout.
   */
  async function skopeoCopy(src: string, sub: string): Promise<{ digest: string; diffIds: string[] }> {
    const d = path.join(dir, sub);
    rmrf(d);
    const toDir = src.startsWith('docker-archive:');
    await run('skopeo', ['copy', '--quiet', src, toDir ? `dir:${d}` : `oci:${d}:x`]);
    const blob = (digest: string) => fs.readFileSync(toDir ? path.join(d, digest.slice(7)) : path.join(d, 'blobs', 'sha256', digest.slice(7)));
    const m = toDir
      ? JSON.parse(fs.readFileSync(path.join(d, 'manifest.json'), 'utf8'))
      : JSON.parse(blob(JSON.parse(fs.readFileSync(path.join(d, 'index.json'), 'utf8')).manifests[0].digest).toString());
    const cfg = blob(m.config.digest);
    expect(sha256(cfg)).toBe(m.config.digest);
    return { digest: m.config.digest, diffIds: JSON.parse(cfg.toString()).rootfs.diff_ids };
  }

  const want = (img: FixtureImage) => ({ digest: img.config.digest, diffIds: img.layers.map((l) => l.diffId) });

  it('skopeo reads the default (oci+docker) archive through both transports', async () => {
    if (!requirePeer('skopeo')) return;
    const f = await save('all.tar', ['multi:1', 'example.com/team/app:v1', 'app-alias', 'plain:1']);
    // docker-archive: (manifest.json, RepoTags)
    expect(await skopeoConfig(`docker-archive:${f}:multi:1`)).toEqual(want(fx.multi.host));
    expect(await skopeoConfig(`docker-archive:${f}:example.com/team/app:v1`)).toEqual(want(fx.app));
    expect(await skopeoConfig(`docker-archive:${f}:app-alias:latest`)).toEqual(want(fx.app));
    expect(await skopeoCopy(`docker-archive:${f}:plain:1`, 'c1')).toEqual(want(fx.plain));
    expect(await skopeoCopy(`docker-archive:${f}:example.com/team/app:v1`, 'c2')).toEqual(want(fx.app));
    // oci-archive: (index.json, org.opencontainers.image.ref.name = full name)
    expect(await skopeoConfig(`oci-archive:${f}:docker.io/library/multi:1`)).toEqual(want(fx.multi.host));
    expect(await skopeoCopy(`oci-archive:${f}:docker.io/library/plain:1`, 'c3')).toEqual(want(fx.plain));
    // skopeo's OCI transport only looks up index entries of OCI media types, so an image
    // with a Docker schema2 manifest (app) is found through docker-archive: only. imgtool
    // keeps the stored manifest (its digest) rather than converting it.
    expect(await skopeoConfig(`docker-archive:${f}:app-alias:latest`)).toEqual(want(fx.app));
  });

  it('skopeo reads --format docker, --format oci, zstd and platform-subset archives', async () => {
    if (!requirePeer('skopeo')) return;
    const d = await save('docker.tar', ['multi:1', 'plain:1'], { format: 'docker' });
    expect(await skopeoCopy(`docker-archive:${d}:multi:1`, 'd1')).toEqual(want(fx.multi.host));
    expect(await skopeoConfig(`docker-archive:${d}:plain:1`)).toEqual(want(fx.plain));
    // plain:1 has no zstd variant: the default (every exporter's) resolver converts it…
    const o = await save('oci.tar', ['plain:1', 'zs:1'], { format: 'oci', compression: 'zstd', layerResolver: undefined });
    expect(await skopeoConfig(`oci-archive:${o}:docker.io/library/plain:1`)).toEqual(want(fx.plain));
    // …and zs:1 (zstd variant recorded) saves as zstd and skopeo reads it.
    const z = await save('zstd.tar', ['zs:1'], { format: 'oci', compression: 'zstd' });
    const entries = await readTar(z);
    expect(entries.some((e) => e.name === 'manifest.json')).toBe(false);
    expect(await skopeoCopy(`oci-archive:${z}:docker.io/library/zs:1`, 'z1')).toEqual(want(fx.zs));
    const sub = await save('sub.tar', ['multi:1'], { platforms: [other] });
    expect(await skopeoConfig(`oci-archive:${sub}:docker.io/library/multi:1`).catch(() => undefined)).toBeUndefined(); // no host platform in it
    const raw = JSON.parse((await run('skopeo', ['inspect', '--raw', `oci-archive:${sub}:docker.io/library/multi:1`])).toString());
    expect(raw.manifests.map((m: { digest: string }) => m.digest)).toEqual([fx.multi.other.manifest.digest]);
    expect(await skopeoConfig(`docker-archive:${sub}:multi:1`)).toEqual(want(fx.multi.other));
  });

  it('ctr imports the archive (--no-unpack --all-platforms --digests): names as saved, images complete', async () => {
    if (!requirePeer('containerd')) return;
    const cdir = tmpDir('ictr-');
    try {
      const sock = await startContainerd(cdir);
      const f = await save('ctr.tar', ['multi:1', 'example.com/team/app:v1', 'plain:1']);
      await ctr(sock, ['images', 'import', '--no-unpack', '--all-platforms', '--digests', f]);
      const names = (await ctr(sock, ['images', 'ls', '-q'])).trim().split('\n').sort();
      for (const n of ['docker.io/library/multi:1', 'example.com/team/app:v1', 'docker.io/library/plain:1']) expect(names).toContain(n);
      expect(names.filter((n) => !n.includes('@'))).toHaveLength(3);
      const check = await ctr(sock, ['images', 'check']);
      const lines = check.trim().split('\n').slice(1);
      expect(lines.length).toBeGreaterThanOrEqual(3);
      for (const l of lines) expect(l).toMatch(/\scomplete \((\d+)\/\1\)/);
      const multiLine = lines.find((l) => l.startsWith('docker.io/library/multi:1 '))!;
      expect(multiLine).toContain(fx.multi.index);

      // A platform subset gets a new index that references only what the archive holds,
      // so a strict all-platforms import into an empty namespace succeeds and is complete
      // (containerd's own export copies the old index and this import would fail).
      const sub = await save('ctr-sub.tar', ['multi:1'], { platforms: [host] });
      await ctr(sock, ['images', 'import', '--no-unpack', '--all-platforms', '--digests', sub], { namespace: 'subset' });
      const check2 = await ctr(sock, ['images', 'check'], { namespace: 'subset' });
      const l2 = check2.split('\n').find((l) => l.startsWith('docker.io/library/multi:1 '))!;
      expect(l2).toBeDefined();
      expect(l2).not.toContain(fx.multi.index);
      expect(l2).toMatch(/\scomplete \((\d+)\/\1\)/);
      const content = await ctr(sock, ['content', 'ls', '-q'], { namespace: 'subset' });
      expect(content).not.toContain(fx.multi.other.manifest.digest);
    } finally {
      await stopContainerd(cdir).catch(() => undefined);
      rmrf(cdir);
    }
  });

  it('umoci unpacks images from the extracted OCI layout', async () => {
    if (!requirePeer('umoci')) return;
    const f = await save('umoci.tar', ['plain:1', 'docker.io/library/zs:1'], { format: 'oci' });
    const layout = path.join(dir, 'layout');
    rmrf(layout);
    fs.mkdirSync(layout);
    await run('tar', ['-xf', f, '-C', layout]);
    const bundle = path.join(dir, 'bundle');
    rmrf(bundle);
    await run('umoci', ['unpack', '--image', `${layout}:docker.io/library/plain:1`, bundle]);
    expect(fs.readFileSync(path.join(bundle, 'rootfs', 'hello.txt'), 'utf8')).toBe('hello\n');
    expect(fs.readFileSync(path.join(bundle, 'rootfs', 'dir', 'b'), 'utf8')).toBe('B');
    const bundle2 = path.join(dir, 'bundle2');
    rmrf(bundle2);
    await run('umoci', ['unpack', '--image', `${layout}:docker.io/library/zs:1`, bundle2]);
    expect(fs.readFileSync(path.join(bundle2, 'rootfs', 'z.txt'), 'utf8')).toBe('zstd layer\n');
  });
});
