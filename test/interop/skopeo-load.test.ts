/**
 * Archives produced by skopeo (docker-archive: and oci-archive:, several names, gzip / zstd /
 * uncompressed layers) load into imgtool with the right names, config digests and diffIDs,
 * and save back to an archive that verifies.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { Store } from '../../src';
import { runCli, tmpDir, rmrf } from '../helpers/cli';
import { requirePeer } from '../helpers/peers';
import { makeImage, makeLayer, indexDoc, Image, ownStderr } from '../unit/archive/import-fixtures';

const run = promisify(execFile);

async function skopeo(...args: string[]): Promise<string> {
  const { stdout } = await run('skopeo', ['--insecure-policy', ...args], { maxBuffer: 64 << 20 });
  return stdout;
}

/** Write an OCI layout directory holding `images`, each named by its ref.name tag. */
function writeLayout(dir: string, images: Array<{ tag: string; img: Image }>): void {
  const blobs = path.join(dir, 'blobs', 'sha256');
  fs.mkdirSync(blobs, { recursive: true });
  const put = (b: Buffer, digest: string) => fs.writeFileSync(path.join(blobs, digest.slice(7)), b);
  for (const { img } of images) {
    put(img.config.bytes, img.config.digest);
    put(img.manifest.bytes, img.manifest.digest);
    for (const l of img.layers) put(l.blob, l.digest);
  }
  fs.writeFileSync(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const idx = indexDoc(images.map(({ tag, img }) => ({ ...img.manifest.desc, platform: img.platform, annotations: { 'org.opencontainers.image.ref.name': tag } })));
  fs.writeFileSync(path.join(dir, 'index.json'), idx.bytes);
}

describe('skopeo-produced archives load into imgtool', () => {
  let dir: string;
  let src: string;
  const a = makeImage({ layers: [makeLayer({ 'etc/a': 'alpha\n'.repeat(500) }, 'none'), makeLayer({ 'usr/bin/x': 'x'.repeat(7000) }, 'none')] });
  const b = makeImage({ arch: 'arm64', layers: [makeLayer({ 'b/file': 'beta\n' }, 'gzip')] });

  beforeAll(() => {
    dir = tmpDir('imgtool-skopeo-load-');
    src = path.join(dir, 'src');
    writeLayout(src, [{ tag: 'a', img: a }, { tag: 'b', img: b }]);
  });
  afterAll(() => rmrf(dir));

  /** Load `file` into a fresh store; returns the store root and the load JSON. */
  async function load(file: string, extra: string[] = []) {
    const root = path.join(dir, `store-${path.basename(file)}-${Math.random().toString(36).slice(2)}`);
    const r = await runCli(['load', '-i', file, '--json', ...extra], { root });
    expect(ownStderr(r.stderr)).toBe('');
    expect(r.code).toBe(0);
    return { root, result: JSON.parse(r.stdout) };
  }

  /** Config digest and diffIDs of `name` in the store at `root`, plus each layer's variant. */
  async function describe_(root: string, name: string) {
    const s = Store.open(root);
    try {
      const rec = s.images.get(name)!;
      expect(rec).toBeDefined();
      const m = await s.content.readJSON<{ config: { digest: string }; layers: Array<{ digest: string; mediaType: string }> }>(rec.target.digest);
      const cfg = await s.content.readJSON<{ rootfs: { diff_ids: string[] } }>(m.config.digest);
      const variants = m.layers.map((l) => s.variants.get(l.digest));
      return { config: m.config.digest, diffIds: cfg.rootfs.diff_ids, layers: m.layers, variants };
    } finally {
      s.close();
    }
  }

  it('docker-archive with several names (--additional-tag): names, config digest, diffIDs', async () => {
    if (!requirePeer('skopeo')) return;
    const f = path.join(dir, 'a.docker.tar');
    await skopeo('copy', '--additional-tag', 'example.com/team/a:2', `oci:${src}:a`, `docker-archive:${f}:example.com/team/a:1`);
    const { root, result } = await load(f);
    expect(result.format).toBe('docker');
    expect(result.images).toHaveLength(1);
    expect(result.images[0].names.sort()).toEqual(['example.com/team/a:1', 'example.com/team/a:2']);
    const d = await describe_(root, 'example.com/team/a:1');
    expect(d.config).toBe(a.config.digest);
    expect(d.diffIds).toEqual(a.layers.map((l) => l.diffId));
    expect(d.variants.map((v) => v && { diffId: v.diffId, compression: v.compression })).toEqual(a.layers.map((l) => ({ diffId: l.diffId, compression: 'none' })));

    // Another image in its own archive, loaded into the same store.
    const f2 = path.join(dir, 'b.docker.tar');
    await skopeo('copy', `oci:${src}:b`, `docker-archive:${f2}:b:latest`);
    const r2 = await runCli(['load', '-i', f2], { root });
    expect(r2.code).toBe(0);
    expect(r2.stdout).toMatch(/^loaded docker.io\/library\/b:latest sha256:[0-9a-f]{12} linux\/arm64$/m);
    const db = await describe_(root, 'docker.io/library/b:latest');
    expect(db.config).toBe(b.config.digest);
    expect(db.variants[0]).toEqual(expect.objectContaining({ diffId: b.layers[0].diffId, compression: 'none' }));
  });

  it.each([
    ['uncompressed', ['--dest-oci-accept-uncompressed-layers'], 'none'],
    ['gzip', ['--dest-compress', '--dest-compress-format', 'gzip'], 'gzip'],
    ['zstd', ['--dest-compress', '--dest-compress-format', 'zstd'], 'zstd'],
  ])('oci-archive, %s layers: names, config digest, diffIDs, variants; saves back', async (label, flags, compression) => {
    if (!requirePeer('skopeo')) return;
    const f = path.join(dir, `a.${label}.oci.tar`);
    await skopeo('copy', ...flags, `oci:${src}:a`, `oci-archive:${f}:example.com/team/a:${label}`);
    const { root, result } = await load(f);
    expect(result.format).toBe('oci');
    const name = `example.com/team/a:${label}`;
    expect(result.images.map((i: { names: string[] }) => i.names)).toEqual([[name]]);
    const d = await describe_(root, name);
    expect(d.config).toBe(a.config.digest);
    expect(d.diffIds).toEqual(a.layers.map((l) => l.diffId));
    for (let i = 0; i < a.layers.length; i++) {
      expect(d.variants[i]).toEqual(expect.objectContaining({ digest: d.layers[i].digest, diffId: a.layers[i].diffId, compression }));
    }
    // Save back and check the archive offline.
    const back = path.join(dir, `back.${label}.tar`);
    const s = await runCli(['save', '-o', back, name], { root });
    // A zstd image stays in manifest.json with one warning (Docker before 23 cannot load it), nothing else.
    const warned = ownStderr(s.stderr).split('\n').filter(Boolean);
    expect(warned.filter((l) => !/manifest\.json names zstd layer .*which Docker before 23 cannot load/.test(l))).toEqual([]);
    expect(warned).toHaveLength(compression === 'zstd' ? 1 : 0);
    expect(s.code).toBe(0);
    const v = await runCli(['verify', back, '--json']);
    expect(v.code).toBe(0);
    expect(JSON.parse(v.stdout).images[0].names).toEqual([name]);
    // skopeo reads it back with the same config.
    const cfg = JSON.parse(await skopeo('inspect', '--config', `oci-archive:${back}:${name}`));
    expect(cfg.rootfs.diff_ids).toEqual(a.layers.map((l) => l.diffId));
  });

  it('oci-archive with a bare-tag ref.name: skipped by default, named with --base-name or --digests', async () => {
    if (!requirePeer('skopeo')) return;
    const f = path.join(dir, 'bare.oci.tar');
    await skopeo('copy', `oci:${src}:b`, `oci-archive:${f}:v7`);
    const root = path.join(dir, 'store-bare');
    const none = await runCli(['load', '-i', f], { root });
    expect(none.code).toBe(0);
    expect(ownStderr(none.stderr)).toMatch(/only a tag/);
    const named = await runCli(['load', '-i', f, '--base-name', 'registry.local/b', '--digests', '--json'], { root });
    expect(named.code).toBe(0);
    expect(JSON.parse(named.stdout).images[0].names).toEqual(['registry.local/b:v7', `registry.local/b@${b.manifest.digest}`]);
  });
});
