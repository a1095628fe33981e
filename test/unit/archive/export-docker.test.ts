/**
 * What a Docker-readable archive promises (`save --format docker` and the manifest.json of the
 * default `oci+docker`): one manifest per image name, said aloud when an index has more; a
 * zstd layer in manifest.json (Docker before 23 fails on it with `archive/tar: invalid tar
 * header`) warned about by save; and `verify` reports a manifest.json entry that points at zstd layers.
 */
import * as fs from 'node:fs';
import { Readable } from 'node:stream';
import { saveImages, Descriptor, InvalidArgumentError } from '../../../src';
import { verifyArchive } from '../../../src/archive/verify';
import { warningsOnly } from '../../../src/progress';
import { useTempStore } from '../../helpers/store';
import { addImage, addIndex, readTar, entryJSON, FixtureImage } from './export-fixtures';
import { makeImage, makeLayer, dockerArchive, ociImageArchive } from './import-fixtures';

const amd64 = { os: 'linux', architecture: 'amd64' };
const arm64 = { os: 'linux', architecture: 'arm64' };
const host = amd64;

describe('Docker-readable archives', () => {
  const t = useTempStore('imgtool-export-docker-');
  const file = (n: string) => t.path(n);

  async function multi(): Promise<{ idx: Descriptor; x86: FixtureImage; arm: FixtureImage }> {
    const x86 = await addImage(t.store, { platform: amd64, layers: [{ f: 'amd64' }], label: 'amd64' });
    const arm = await addImage(t.store, { platform: arm64, layers: [{ f: 'arm64' }], label: 'arm64' });
    const idx = await addIndex(t.store, [x86, arm]);
    t.store.images.put('docker.io/library/multi:1', idx);
    return { idx, x86, arm };
  }

  it('--format docker of a multi-platform image says which platform it wrote and which it left out', async () => {
    const { arm } = await multi();
    const warned: string[] = [];
    const res = await saveImages(t.store, ['multi:1'], { output: file('d.tar'), host: arm64, format: 'docker', progress: warningsOnly((m) => warned.push(m)) });
    expect(res.images[0].platforms).toEqual(['linux/arm64']);
    expect(res.images[0].leftOut).toEqual(['linux/amd64']);
    const w = res.warnings.find((x) => /one manifest per image/.test(x));
    expect(w).toMatch(/docker\.io\/library\/multi:1.*wrote linux\/arm64.*left out linux\/amd64/);
    expect(warned).toContain(w);
    const mj = entryJSON(await readTar(file('d.tar')), 'manifest.json');
    expect(mj).toHaveLength(1);
    expect(mj[0].Config).toBe(`blobs/sha256/${arm.config.digest.slice(7)}`);
  });

  it('--format docker with --all-platforms, or with two --platform, is an error that says why', async () => {
    await multi();
    const all = saveImages(t.store, ['multi:1'], { output: file('a.tar'), host, format: 'docker', allPlatforms: true });
    await expect(all).rejects.toThrow(InvalidArgumentError);
    await expect(all).rejects.toThrow(/--all-platforms.*--format docker.*one manifest per image/);
    const two = saveImages(t.store, ['multi:1'], { output: file('b.tar'), host, format: 'docker', platforms: [amd64, arm64] });
    await expect(two).rejects.toThrow(/--format docker.*one platform per image.*linux\/amd64, linux\/arm64/);
    expect(fs.existsSync(file('a.tar')) || fs.existsSync(file('b.tar'))).toBe(false);
    // one platform is fine, and nothing is left out silently
    const one = await saveImages(t.store, ['multi:1'], { output: file('c.tar'), host, format: 'docker', platforms: [arm64] });
    expect(one.images[0]).toMatchObject({ platforms: ['linux/arm64'], leftOut: ['linux/amd64'] });
  });

  it('oci+docker: a zstd image stays in manifest.json, with a warning naming image and layer; verify of the archive says the same', async () => {
    const gz = await addImage(t.store, { layers: [{ a: 'gzip' }], label: 'gz' });
    t.store.images.put('docker.io/library/gz:1', gz.manifest);
    const zs = await addImage(t.store, { layers: [{ a: 'base' }, { b: 'zstd' }], compression: 'zstd', label: 'zs' });
    t.store.images.put('docker.io/library/zs:1', zs.manifest);
    const res = await saveImages(t.store, ['gz:1', 'zs:1'], { output: file('m.tar'), host });
    const entries = await readTar(file('m.tar'));
    const mj = entryJSON(entries, 'manifest.json');
    expect(mj.map((e: { RepoTags: string[] }) => e.RepoTags)).toEqual([['gz:1'], ['zs:1']]);
    expect(entryJSON(entries, 'index.json').manifests).toHaveLength(2);
    const w = res.warnings.filter((x) => /manifest\.json/.test(x));
    expect(w).toHaveLength(1);
    expect(w[0]).toMatch(/^image docker\.io\/library\/zs:1 \(linux\/amd64\): manifest\.json names zstd layer 1 sha256:[0-9a-f]{64} \(and 1 more\), which Docker before 23 cannot load/);
    expect(res.images.find((i) => i.name.endsWith('zs:1'))!.dockerManifest).toBe(zs.manifest.digest);
    // the same archive as verify sees it: OK, and the same two layers named
    const v = await verifyArchive(file('m.tar'));
    expect(v.ok).toBe(true);
    expect(v.warnings.filter((x) => /zstd/.test(x))).toEqual([
      expect.stringMatching(/^zs:1: layer 1\/2 "blobs\/sha256\/[0-9a-f]{64}" in manifest\.json is zstd/),
      expect.stringMatching(/^zs:1: layer 2\/2 /),
    ]);
    // --compression gzip: nothing to warn about
    const g = await saveImages(t.store, ['zs:1'], { output: file('g.tar'), host, compression: 'gzip' });
    expect(g.warnings).toEqual([]);
    expect((await verifyArchive(file('g.tar'))).warnings).toEqual([]);
    // kind's archives are read by containerd (zstd is fine): no Docker warning there
    const k = await saveImages(t.store, ['zs:1'], { output: file('k.tar'), host, dockerWarnings: false });
    expect(k.warnings).toEqual([]);
  });
});

describe('verify: zstd layers named by manifest.json', () => {
  const src = (b: Buffer) => Readable.from([b]);
  it('a Docker archive whose manifest.json names a zstd layer: OK, with a warning naming the image and the layer', async () => {
    const img = makeImage({ oci: false, layers: [makeLayer({ a: '1' }, 'gzip', false), makeLayer({ b: '2' }, 'zstd', false)] });
    const r = await verifyArchive(src(dockerArchive([{ img, repoTags: ['app:1'] }])));
    expect(r.ok).toBe(true);
    const w = r.warnings.filter((x) => /zstd/.test(x));
    expect(w).toHaveLength(1);
    expect(w[0]).toMatch(/app:1: layer 2\/2 "[^"]+" in manifest\.json is zstd.*Docker before 23 cannot load it/);
  });

  it('an OCI + manifest.json archive (as imgtool 0.x and Docker 25 write) with zstd in manifest.json: warned', async () => {
    const img = makeImage({ layers: [makeLayer({ z: 'z' }, 'zstd')] });
    const oci = await import('./export-fixtures').then((m) => m.readTar(ociImageArchive(img, 'docker.io/library/z:1')));
    const mj = Buffer.from(JSON.stringify([{ Config: `blobs/sha256/${img.config.digest.slice(7)}`, RepoTags: ['z:1'], Layers: [`blobs/sha256/${img.layers[0].digest.slice(7)}`] }]));
    const { tar } = await import('./import-fixtures');
    const archive = tar([...oci.filter((e) => e.type === 'file').map((e) => ({ name: e.name, data: e.data })), { name: 'manifest.json', data: mj }]);
    const r = await verifyArchive(src(archive));
    expect(r.ok).toBe(true);
    expect(r.format).toBe('docker+oci');
    expect(r.warnings.filter((x) => /zstd/.test(x))).toEqual([expect.stringMatching(/z:1: layer 1\/1 "blobs\/sha256\/[0-9a-f]{64}" in manifest\.json is zstd/)]);
  });
});
