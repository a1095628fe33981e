import * as path from 'node:path';
import { Store } from '../../src/store';
import { unpackImage } from '../../src/snapshots';
import { MediaType } from '../../src/images/mediatypes';
import { Index, Manifest } from '../../src/images/types';
import { ImageBuilder } from '../../src/builder';
import { runCli, tmpDir, rmrf } from '../helpers/cli';
import { entries } from '../unit/compression/fixture';

/** CLI: imgtool convert (and inspect on the result). The store is prepared with an OCI archive and `imgtool load`. */
describe('imgtool convert (CLI)', () => {
  let dir: string;
  let root: string;
  let archive: string;
  let amdLayers: Array<{ digest: string; diffId: string }>;
  const cli = (args: string[]) => runCli(args, { root });
  const json = <T>(s: string) => JSON.parse(s) as T;

  beforeAll(async () => {
    dir = tmpDir('imgtool-convert-cli-');
    root = path.join(dir, 'store');
    const b = new ImageBuilder(path.join(dir, 'build'));
    // ~5 MiB per layer, so conversion takes measurably longer than reuse
    const l = async (seed: number) => b.layer(entries(seed, 4 * 1024 * 1024), { compression: 'gzip' });
    const base = await l(1);
    const amd = b.image({ layers: [base, await l(2), await l(3)], platform: 'linux/amd64' });
    const arm = b.image({ layers: [base, await l(4)], platform: 'linux/arm64' });
    amdLayers = amd.layers;
    const idx = b.index({ images: [amd, arm], attestations: true });
    archive = path.join(dir, 'app.tar');
    await b.ociArchive(archive, { images: [{ target: idx.descriptor, names: ['example.com/app:1'] }] });
    const r = await cli(['load', '--no-unpack', '-i', archive]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });
  afterAll(() => rmrf(dir));

  it('converts to zstd (OCI), records variants, and a second convert reuses them in a fraction of the time', async () => {
    const r1 = await cli(['convert', '--compression', 'zstd', '--json', 'example.com/app:1', 'example.com/app:zstd']);
    expect(r1.stderr).toBe('');
    expect(r1.code).toBe(0);
    const c1 = json<{ name: string; target: { mediaType: string; digest: string }; layers: Array<{ source: string; to: { mediaType: string } }>; seconds: number }>(r1.stdout);
    expect(c1.name).toBe('example.com/app:zstd');
    expect(c1.target.mediaType).toBe(MediaType.OCI_INDEX);
    expect(c1.layers.every((x) => x.to.mediaType === MediaType.OCI_LAYER_ZSTD)).toBe(true);
    expect(new Set(c1.layers.map((x) => x.source))).toEqual(new Set(['converted']));

    const r2 = await cli(['convert', '--compression', 'zstd', '--json', 'example.com/app:1', 'example.com/app:zstd-again']);
    expect(r2.code).toBe(0);
    const c2 = json<typeof c1>(r2.stdout);
    expect(c2.target.digest).toBe(c1.target.digest);
    expect(c2.layers.every((x) => x.source === 'existing')).toBe(true);
    expect(c2.seconds).toBeLessThan(c1.seconds / 2);

    const img = await cli(['images', '--json']);
    const names = json<Array<{ name: string; platforms: string[]; partial: boolean }>>(img.stdout);
    expect(names.find((n) => n.name === 'example.com/app:zstd')).toMatchObject({ platforms: ['linux/amd64', 'linux/arm64'], partial: false });
  });

  it('plain output: names the new image, the manifests that changed and what happened to the layers', async () => {
    const r = await cli(['convert', '--compression', 'none', 'example.com/app:1', 'example.com/app:plain']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^linux\/amd64: sha256:[0-9a-f]{12} -> sha256:[0-9a-f]{12}$/m);
    expect(r.stdout).toMatch(/^example\.com\/app:plain sha256:[0-9a-f]{64}$/m);
    expect(r.stdout).toMatch(/^layers: 5 \(5 converted\)/m);
  });

  it('--platform converts a subset; inspect shows every variant of each layer', async () => {
    const r = await cli(['convert', '--compression', 'gzip', '--level', '1', '--oci', '--platform', 'linux/arm64', '--json', 'example.com/app:1', 'example.com/app:arm']);
    expect(r.code).toBe(0);
    const c = json<{ target: { digest: string } }>(r.stdout);
    const ins = await cli(['inspect', 'example.com/app:arm']);
    expect(ins.code).toBe(0);
    const i = json<{ target: { digest: string }; index: Index; platforms: string[]; manifests: Array<{ platform?: string; attestation: boolean; manifest: Manifest; layers: Array<{ diffId: string; chainId: string; variants: Array<{ compression: string; level?: number; present: boolean; referenced: boolean }>; snapshot: { present: boolean } }> }> }>(ins.stdout);
    expect(i.target.digest).toBe(c.target.digest);
    expect(i.platforms).toEqual(['linux/arm64']);
    expect(i.index.manifests).toHaveLength(2); // arm64 + its attestation
    const m = i.manifests.find((x) => !x.attestation)!;
    expect(m.manifest.mediaType).toBe(MediaType.OCI_MANIFEST);
    const base = m.layers[0];
    expect(base.diffId).toBe(amdLayers[0].diffId);
    expect(base.chainId).toBe(amdLayers[0].diffId); // chainID of the first layer is its diffID
    expect(base.snapshot.present).toBe(false);
    const kinds = base.variants.map((v) => `${v.compression}${v.level ? `:${v.level}` : ''}`);
    expect(kinds).toEqual(expect.arrayContaining(['gzip', 'gzip:1', 'zstd:3', 'none']));
    expect(base.variants.filter((v) => v.referenced).map((v) => v.level)).toEqual([1]);
    expect(base.variants.every((v) => v.present)).toBe(true);
  });

  it('layers whose blobs were discarded are rebuilt from their snapshots, byte-identical in gzip', async () => {
    const store = Store.open(root);
    try {
      await unpackImage(store, 'example.com/app:1', { platform: 'linux/amd64' });
      // what load --discard-layers does after verifying the rebuild: drop the compressed blobs
      store.meta.write(() => { for (const l of amdLayers) store.content.deleteLocked(l.digest); });
      // and the other variants made by earlier tests
      store.meta.write(() => {
        for (const l of amdLayers) for (const v of store.variants.forDiffId(l.diffId)) store.content.deleteLocked(v.digest);
      });
    } finally {
      store.close();
    }
    const back = await cli(['convert', '--compression', 'gzip', '--platform', 'linux/amd64', '--json', 'example.com/app:1', 'example.com/app:amd-gz']);
    expect(back.stderr).toBe('');
    expect(back.code).toBe(0);
    const c = json<{ layers: Array<{ source: string; from: { digest: string }; to: { digest: string } }> }>(back.stdout);
    expect(c.layers.map((x) => x.source)).toEqual(['rebuilt', 'rebuilt', 'rebuilt']);
    expect(c.layers.map((x) => x.to.digest)).toEqual(c.layers.map((x) => x.from.digest));
    const ins = json<{ manifests: Array<{ layers: Array<{ snapshot: { present: boolean }; variants: Array<{ present: boolean; referenced: boolean }> }> }> }>((await cli(['inspect', 'example.com/app:amd-gz'])).stdout);
    for (const l of ins.manifests[0].layers) {
      expect(l.snapshot.present).toBe(true);
      expect(l.variants.find((v) => v.referenced)!.present).toBe(true);
    }
  });

  it('fails with one clear line and registers nothing when a layer cannot be produced', async () => {
    const store = Store.open(root);
    let gone: string;
    try {
      const arm = (await store.content.readJSON<Index>(store.images.get('example.com/app:1')!.target.digest)).manifests[1];
      const m = await store.content.readJSON<Manifest>(arm.digest);
      gone = m.layers[1].digest;
      const diffId = (await store.content.readJSON<{ rootfs: { diff_ids: string[] } }>(m.config.digest)).rootfs.diff_ids[1];
      store.meta.write(() => { for (const v of store.variants.forDiffId(diffId)) store.content.deleteLocked(v.digest); });
      store.meta.write(() => store.content.deleteLocked(gone));
    } finally {
      store.close();
    }
    const r = await cli(['convert', '--compression', 'zstd', '--level', '5', 'example.com/app:1', 'example.com/app:broken']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/^imgtool: error: image example\.com\/app:1 \(linux\/arm64\) layer 2: layer sha256:[0-9a-f]{64} cannot be produced as zstd/);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack without --debug
    const imgs = json<Array<{ name: string }>>((await cli(['images', '--json'])).stdout);
    expect(imgs.map((x) => x.name)).not.toContain('example.com/app:broken');
  });

  it('rejects bad arguments', async () => {
    const bad = async (args: string[], re: RegExp) => {
      const r = await cli(args);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(re);
    };
    await bad(['convert', '--compression', 'brotli', 'example.com/app:1', 'x:1'], /Expected --compression=brotli to be one of/);
    await bad(['convert', '--compression', 'gzip', '--level', '11', 'example.com/app:1', 'x:1'], /gzip level must be/);
    await bad(['convert', '--compression', 'zstd', 'nope:1', 'x:1'], /imgtool: error: image "nope:1" not found/);
    await bad(['convert', '--compression', 'zstd', '--platform', 'linux/s390x', 'example.com/app:1', 'x:1'], /no platform (matching )?linux\/s390x/);
    await bad(['convert', '--compression', 'zstd', '--lease', 'no-such-lease', 'example.com/app:1', 'x:1'], /lease/);
    await bad(['inspect', 'example.com/app:1', '--platform', 'linux/ppc64le'], /no platform linux\/ppc64le/);
  });

  it('--lease attaches what the convert produced', async () => {
    expect((await cli(['lease', 'create', '--id', 'conv'])).code).toBe(0);
    const r = await cli(['convert', '--compression', 'zstd', '--level', '2', '--platform', 'linux/amd64', '--lease', 'conv', 'example.com/app:amd-gz', 'example.com/app:leased']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const leases = json<Array<{ id: string; resources: number }>>((await cli(['lease', 'ls', '--json'])).stdout);
    // 3 layers + manifest + config + the name, at least
    expect(leases.find((l) => l.id === 'conv')!.resources).toBeGreaterThanOrEqual(6);
  });
});
