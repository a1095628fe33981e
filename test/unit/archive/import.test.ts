import { unpackImage } from '../../../src/snapshots/ops';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { Store } from '../../../src/store';
import { importArchive, ImportOptions } from '../../../src/archive/import';
import { MediaType } from '../../../src/images/mediatypes';
import { sha256 } from '../../../src/digest';
import { ResourceHolder } from '../../../src/content';
import { tmpDir, rmrf } from '../../helpers/cli';
import {
  makeImage, makeLayer, ociImageArchive, ociArchive, dockerArchive, compress, imageBlobs, indexDoc, blobEntry, tar, OCI_LAYOUT, doc,
} from './import-fixtures';

let dir: string;
let store: Store;
beforeEach(() => {
  dir = tmpDir('imgtool-import-');
  store = Store.open(path.join(dir, 'root'));
});
afterEach(() => {
  store.close();
  rmrf(dir);
});

function write(name: string, buf: Buffer): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, buf);
  return p;
}

async function load(buf: Buffer, opts: ImportOptions = {}) {
  return importArchive(store, write(`in-${Math.random().toString(36).slice(2)}.tar`, buf), opts);
}

/** Build a two-platform index; `present` says which platforms' content the archive holds. */
function multiPlatform(present: Array<'amd64' | 'arm64'>) {
  const amd = makeImage({ arch: 'amd64' });
  const arm = makeImage({ arch: 'arm64', variant: 'v8' });
  const idx = indexDoc([
    { ...amd.manifest.desc, platform: { os: 'linux', architecture: 'amd64' } },
    { ...arm.manifest.desc, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
  ]);
  const blobs = [...(present.includes('amd64') ? imageBlobs(amd) : []), ...(present.includes('arm64') ? imageBlobs(arm) : []), blobEntry(idx.bytes)];
  const archive = ociArchive([{ ...idx.desc, annotations: { 'io.containerd.image.name': 'docker.io/library/multi:1' } }], blobs);
  return { amd, arm, idx, archive };
}

describe('importArchive: OCI', () => {
  it('loads a named single-manifest OCI archive; the config\'s diffIDs are claims: no variant row until proven', async () => {
    const img = makeImage();
    const r = await load(ociImageArchive(img, 'docker.io/library/hello:1'));
    expect(r.format).toBe('oci');
    expect(r.compression).toBe('none');
    expect(r.images).toEqual([expect.objectContaining({ names: ['docker.io/library/hello:1'], digest: img.manifest.digest, platforms: ['linux/amd64'], partial: false })]);
    expect(store.images.get('docker.io/library/hello:1')!.target).toEqual(img.manifest.desc);
    expect(store.variants.get(img.layers[0].digest)).toBeUndefined();
    expect(store.content.labels(img.layers[0].digest)['containerd.io/uncompressed']).toBeUndefined();
    // Unpacking hashes the decompressed layer: now it is a proof.
    await unpackImage(store, 'docker.io/library/hello:1');
    expect(store.variants.get(img.layers[0].digest)).toEqual(expect.objectContaining({ diffId: img.layers[0].diffId, compression: 'gzip', mediaType: MediaType.OCI_LAYER_GZIP }));
    expect(store.content.labels(img.layers[0].digest)['containerd.io/uncompressed']).toBe(img.layers[0].diffId);
    for (const d of [img.config.digest, img.manifest.digest, img.layers[0].digest]) expect(store.content.has(d)).toBe(true);
    expect(r.blobs.count).toBe(3);
  });

  it('loads from a stream, gzip- and zstd-wrapped', async () => {
    const img = makeImage();
    const plain = ociImageArchive(img, 'x.io/a/b:c');
    for (const c of ['gzip', 'zstd', 'none'] as const) {
      const r = await importArchive(store, Readable.from([compress(plain, c)]), {});
      expect(r.compression).toBe(c);
      expect(r.images[0].names).toEqual(['x.io/a/b:c']);
    }
  });

  it('loads an index with every platform; records no claimed variant', async () => {
    const { amd, arm, idx, archive } = multiPlatform(['amd64', 'arm64']);
    const r = await load(archive);
    expect(r.images[0]).toEqual(expect.objectContaining({ names: ['docker.io/library/multi:1'], digest: idx.digest, partial: false }));
    expect(r.images[0].platforms.sort()).toEqual(['linux/amd64', 'linux/arm64']);
    expect(store.variants.get(amd.layers[0].digest)).toBeUndefined();
    expect(store.variants.get(arm.layers[0].digest)).toBeUndefined();
    for (const l of [amd.layers[0], arm.layers[0]]) expect(store.content.has(l.digest)).toBe(true);
  });

  it('partial index: loads what is present with a warning; --strict/--all-platforms refuse', async () => {
    const { idx, arm, archive } = multiPlatform(['amd64']);
    await expect(load(archive, { strict: true })).rejects.toThrow(/not in the archive \(partial\)/);
    await expect(load(archive, { allPlatforms: true })).rejects.toThrow(/partial/);
    expect(store.images.list()).toEqual([]);
    const r = await load(archive);
    expect(r.images[0]).toEqual(expect.objectContaining({ digest: idx.digest, partial: true, platforms: ['linux/amd64'] }));
    expect(r.images[0].absent).toEqual([{ digest: arm.manifest.digest, platform: 'linux/arm64' }]);
    expect(r.warnings.join('\n')).toMatch(/partial/);
    expect(store.images.get('docker.io/library/multi:1')!.target.digest).toBe(idx.digest);
  });

  it('--platform selects; a requested platform that is absent is an error', async () => {
    const { archive } = multiPlatform(['amd64']);
    const r = await load(archive, { platforms: ['linux/amd64'] });
    expect(r.images[0].platforms).toEqual(['linux/amd64']);
    expect(r.images[0].partial).toBe(false);
    await expect(load(archive, { platforms: ['linux/arm64'] })).rejects.toThrow(/linux\/arm64/);
    await expect(load(archive, { platforms: ['linux/s390x'] })).rejects.toThrow(/no linux\/s390x content/);
    await expect(load(archive, { platforms: ['linux/amd64'], allPlatforms: true })).rejects.toThrow(/mutually exclusive/);
  });

  it('attestations travel with their image and are not a platform', async () => {
    const amd = makeImage({ arch: 'amd64' });
    const statement = doc(MediaType.IN_TOTO, { _type: 'https://in-toto.io/Statement/v0.1' });
    const attCfg = doc(MediaType.OCI_CONFIG, { architecture: 'unknown', os: 'unknown', rootfs: { type: 'layers', diff_ids: [statement.digest] } });
    const att = doc(MediaType.OCI_MANIFEST, { schemaVersion: 2, mediaType: MediaType.OCI_MANIFEST, config: attCfg.desc, layers: [statement.desc] });
    const idx = indexDoc([
      { ...amd.manifest.desc, platform: { os: 'linux', architecture: 'amd64' } },
      { ...att.desc, platform: { os: 'unknown', architecture: 'unknown' }, annotations: { 'vnd.docker.reference.type': 'attestation-manifest', 'vnd.docker.reference.digest': amd.manifest.digest } },
    ]);
    const archive = ociArchive([{ ...idx.desc, annotations: { 'io.containerd.image.name': 'x.io/att:1' } }],
      [...imageBlobs(amd), blobEntry(statement.bytes), blobEntry(attCfg.bytes), blobEntry(att.bytes), blobEntry(idx.bytes)]);
    const r = await load(archive);
    expect(r.images[0].platforms).toEqual(['linux/amd64']);
    expect(r.images[0].partial).toBe(false);
    expect(store.variants.get(statement.digest)).toBeUndefined();
  });

  it('unknown media types are kept and warned about', async () => {
    const img = makeImage();
    const art = doc('application/vnd.example.thing+json', { a: 1 });
    const archive = ociArchive([
      { ...img.manifest.desc, annotations: { 'io.containerd.image.name': 'x.io/a:1' } },
      { ...art.desc, annotations: { 'io.containerd.image.name': 'x.io/thing:1' } },
    ], [...imageBlobs(img), blobEntry(art.bytes)]);
    const r = await load(archive);
    expect(r.images.map((i) => i.names[0])).toEqual(['x.io/a:1']);
    expect(r.warnings.join('\n')).toMatch(/application\/vnd\.example\.thing\+json.*not an image; kept/);
    expect(store.content.has(art.digest)).toBe(true);
  });

  it('uses blobs already in the store for content the archive leaves out', async () => {
    const img = makeImage();
    await load(ociImageArchive(img, 'x.io/a:1'));
    const archive = ociArchive([{ ...img.manifest.desc, annotations: { 'io.containerd.image.name': 'x.io/a:2' } }], [blobEntry(img.manifest.bytes), blobEntry(img.config.bytes)]);
    const r = await load(archive);
    expect(r.images[0].names).toEqual(['x.io/a:2']);
  });

  it('uncompressed layer whose digest is not the config diffID is refused', async () => {
    const l = makeLayer({ a: 'b' }, 'none');
    const bad = { ...l, diffId: sha256('something else') };
    const img = makeImage({ layers: [bad] });
    await expect(load(ociImageArchive(img, 'x.io/a:1'))).rejects.toThrow(/uncompressed, so its diffID must be its digest/);
    expect(store.images.list()).toEqual([]);
  });

  it('config diff_ids count must match the layers', async () => {
    const img = makeImage({ layers: [makeLayer({ a: '1' }), makeLayer({ b: '2' })] });
    const cfg = doc(MediaType.OCI_CONFIG, { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [img.layers[0].diffId] } });
    const man = doc(MediaType.OCI_MANIFEST, { schemaVersion: 2, mediaType: MediaType.OCI_MANIFEST, config: cfg.desc, layers: img.layers.map((l) => l.desc) });
    const archive = ociArchive([{ ...man.desc, annotations: { 'io.containerd.image.name': 'x.io/a:1' } }], [blobEntry(cfg.bytes), ...img.layers.map((l) => blobEntry(l.blob)), blobEntry(man.bytes)]);
    await expect(load(archive)).rejects.toThrow(/has 2 layers but its config .* lists 1 diffIDs/);
  });
});

describe('importArchive: naming', () => {
  const img = makeImage();
  const withAnn = (a: Record<string, string>) => ociArchive([{ ...img.manifest.desc, annotations: a }], imageBlobs(img));

  it('ref.name full reference; bare tag needs --base-name; --digests; skipped without a name', async () => {
    expect((await load(withAnn({ 'org.opencontainers.image.ref.name': 'quay.io/x/y:2' }))).images[0].names).toEqual(['quay.io/x/y:2']);
    const bare = withAnn({ 'org.opencontainers.image.ref.name': 'latest' });
    const r = await load(bare);
    expect(r.images).toEqual([]);
    expect(r.skipped).toEqual([expect.objectContaining({ digest: img.manifest.digest })]);
    expect(r.warnings.join('\n')).toMatch(/only a tag/);
    expect(store.images.get('docker.io/library/latest:latest')).toBeUndefined();
    expect((await load(bare, { baseName: 'example.com/base' })).images[0].names).toEqual(['example.com/base:latest']);
    const d = await load(bare, { digests: true, date: new Date(2026, 0, 2) });
    expect(d.images[0].names).toEqual([`docker.io/library/import-2026-01-02@${img.manifest.digest}`]);
    const named = await load(withAnn({ 'io.containerd.image.name': 'docker.io/library/busybox:1' }), { digests: true });
    expect(named.images[0].names).toEqual(['docker.io/library/busybox:1', `docker.io/library/busybox@${img.manifest.digest}`]);
  });

  it('--index-name registers the whole index', async () => {
    const { idx, archive } = multiPlatform(['amd64', 'arm64']);
    const r = await load(archive, { indexName: 'x.io/all:1' });
    const indexJson = indexDoc([{ ...idx.desc, annotations: { 'io.containerd.image.name': 'docker.io/library/multi:1' } }]);
    expect(r.index).toEqual(expect.objectContaining({ name: 'x.io/all:1', digest: indexJson.digest }));
    expect(store.images.get('x.io/all:1')!.target.digest).toBe(indexJson.digest);
    expect(store.content.has(indexJson.digest)).toBe(true);
  });

  it('rejects a --base-name with a tag before reading', async () => {
    await expect(load(withAnn({}), { baseName: 'foo:1' })).rejects.toThrow(/--base-name/);
  });
});

describe('importArchive: Docker archives', () => {
  it('old layout with symlinked layer.tar, manifest.json last: synthesizes a Docker manifest', async () => {
    const l1 = makeLayer({ 'a/1': 'one' }, 'none', false);
    const l2 = makeLayer({ 'b/2': 'two' }, 'none', false);
    const img = makeImage({ oci: false, layers: [l1, l2] });
    const r = await load(dockerArchive([{ img, repoTags: ['busybox:latest', 'example.com/x/y:2'] }]));
    expect(r.format).toBe('docker');
    expect(r.images).toHaveLength(1);
    const im = r.images[0];
    expect(im.names).toEqual(['docker.io/library/busybox:latest', 'example.com/x/y:2']);
    expect(im.mediaType).toBe(MediaType.DOCKER_MANIFEST);
    expect(im.platforms).toEqual(['linux/amd64']);
    const m = await store.content.readJSON<any>(im.digest);
    expect(m).toEqual({
      schemaVersion: 2, mediaType: MediaType.DOCKER_MANIFEST,
      config: { mediaType: MediaType.DOCKER_CONFIG, digest: img.config.digest, size: img.config.size ?? img.config.bytes.length },
      layers: [l1, l2].map((l) => ({ mediaType: MediaType.DOCKER_LAYER, digest: l.digest, size: l.blob.length })),
    });
    expect(store.variants.get(l1.digest)).toBeUndefined();
  });

  it('real layer.tar files, gzip layers, manifest.json first', async () => {
    const l = makeLayer({ x: 'y' }, 'gzip', false);
    const img = makeImage({ oci: false, layers: [l] });
    const r = await load(dockerArchive([{ img, repoTags: ['x.io/g:1'] }], { symlinks: false, manifestFirst: true }));
    const m = await store.content.readJSON<any>(r.images[0].digest);
    expect(m.layers[0].mediaType).toBe(MediaType.DOCKER_LAYER_GZIP);
    expect(store.variants.get(l.digest)).toBeUndefined();
  });

  it('zstd layers make the synthesized manifest OCI', async () => {
    const l = makeLayer({ x: 'z' }, 'zstd');
    const img = makeImage({ layers: [l, makeLayer({ q: 'r' }, 'none')] });
    const r = await load(dockerArchive([{ img, repoTags: ['x.io/z:1'] }]));
    const m = await store.content.readJSON<any>(r.images[0].digest);
    expect(r.images[0].mediaType).toBe(MediaType.OCI_MANIFEST);
    expect(m.config.mediaType).toBe(MediaType.OCI_CONFIG);
    expect(m.layers.map((x: any) => x.mediaType)).toEqual([MediaType.OCI_LAYER_ZSTD, MediaType.OCI_LAYER]);
  });

  it('several images, shared layers, and an untagged image (skipped unless --digests)', async () => {
    const shared = makeLayer({ base: '1' }, 'none', false);
    const a = makeImage({ oci: false, layers: [shared, makeLayer({ a: 'a' }, 'none', false)] });
    const b = makeImage({ oci: false, layers: [shared] , seed: 'b' });
    const c = makeImage({ oci: false, arch: 'arm64', layers: [makeLayer({ c: 'c' }, 'none', false)] });
    const archive = dockerArchive([{ img: a, repoTags: ['a:1'] }, { img: b, repoTags: ['b:1'] }, { img: c, repoTags: null }]);
    const r = await load(archive);
    expect(r.images.map((i) => i.names)).toEqual([['docker.io/library/a:1'], ['docker.io/library/b:1']]);
    expect(r.skipped).toHaveLength(1);
    const r2 = await load(archive, { digests: true, baseName: 'x.io/imp' });
    expect(r2.images[2].names[0]).toMatch(/^x\.io\/imp@sha256:/);
    expect(r2.images[2].platforms).toEqual(['linux/arm64']);
  });

  it('Docker 25+ layout: index.json is preferred, RepoTags name unannotated entries', async () => {
    const img = makeImage({ oci: true });
    const man = [{ Config: `blobs/sha256/${img.config.digest.slice(7)}`, RepoTags: ['hello:25'], Layers: img.layers.map((l) => `blobs/sha256/${l.digest.slice(7)}`) }];
    const idx = indexDoc([img.manifest.desc]);
    const archive = tar([OCI_LAYOUT, ...imageBlobs(img), { name: 'index.json', data: idx.bytes }, { name: 'manifest.json', data: JSON.stringify(man) }, { name: 'repositories', data: '{}' }]);
    const r = await load(archive);
    expect(r.format).toBe('docker+oci');
    expect(r.images).toEqual([expect.objectContaining({ names: ['docker.io/library/hello:25'], digest: img.manifest.digest })]);
  });
});

describe('importArchive: leases and all-or-nothing', () => {
  it('attaches every blob written and every name to the lease', async () => {
    const attached: string[] = [];
    const lease: ResourceHolder = { attach: (k, r) => void attached.push(`${k}:${r}`) };
    const img = makeImage({ oci: false, layers: [makeLayer({ a: 'b' }, 'none', false)] });
    const r = await load(dockerArchive([{ img, repoTags: ['l:1'] }]), { lease });
    expect(attached).toEqual(expect.arrayContaining([
      `content:${img.config.digest}`, `content:${img.layers[0].digest}`, `content:${r.images[0].digest}`, 'image:docker.io/library/l:1',
    ]));
  });

  it('a failure registers nothing, even for the good images of the archive', async () => {
    const good = makeImage({ seed: 'good' });
    const bad = makeImage({ seed: 'bad' });
    const archive = ociArchive([
      { ...good.manifest.desc, annotations: { 'io.containerd.image.name': 'x.io/good:1' } },
      { ...bad.manifest.desc, annotations: { 'io.containerd.image.name': 'x.io/bad:1' } },
    ], [...imageBlobs(good), blobEntry(bad.config.bytes), blobEntry(bad.manifest.bytes)]);
    await expect(load(archive)).rejects.toThrow(/x\.io\/bad:1: layer 1 sha256:[0-9a-f]{64} of manifest .* is not in the archive/);
    expect(store.images.list()).toEqual([]);
    expect(store.variants.list()).toEqual([]);
  });
});

describe('importArchive: links, inputs and artifacts', () => {
  it('resolves hard links and chains of symlinks inside the archive', async () => {
    const l1 = makeLayer({ one: '1' }, 'none', false);
    const l2 = makeLayer({ two: '2' }, 'none', false);
    const img = makeImage({ oci: false, layers: [l1, l2] });
    const cfg = `${img.config.digest.slice(7)}.json`;
    const archive = tar([
      { name: cfg, data: img.config.bytes },
      { name: 'store/l1.tar', data: l1.blob },
      { name: 'store/l2.tar', data: l2.blob },
      { name: 'aaa/layer.tar', type: '1', linkname: 'store/l1.tar' },
      { name: 'bbb/layer.tar', type: '2', linkname: '../ccc/layer.tar' },
      { name: 'ccc/layer.tar', type: '2', linkname: './../store/./l2.tar' },
      { name: 'manifest.json', data: JSON.stringify([{ Config: `./${cfg}`, RepoTags: ['links:1'], Layers: ['aaa/layer.tar', 'bbb/layer.tar'] }]) },
    ]);
    const r = await load(archive);
    const m = await store.content.readJSON<any>(r.images[0].digest);
    expect(m.layers.map((x: any) => x.digest)).toEqual([l1.digest, l2.digest]);
  });

  it('accepts entries prefixed with ./ (tar -C dir -cf x.tar .)', async () => {
    const img = makeImage();
    const idx = indexDoc([{ ...img.manifest.desc, annotations: { 'io.containerd.image.name': 'x.io/dot:1' } }]);
    const entries = [{ name: './', type: '5' as const }, { ...OCI_LAYOUT, name: './oci-layout' }, ...imageBlobs(img).map((e) => ({ ...e, name: `./${e.name}` })), { name: './index.json', data: idx.bytes }];
    const r = await load(tar(entries));
    expect(r.images[0].names).toEqual(['x.io/dot:1']);
  });

  it('clear errors for a missing file and a directory', async () => {
    await expect(importArchive(store, path.join(dir, 'nope.tar'))).rejects.toThrow(/nope.tar: no such file/);
    await expect(importArchive(store, dir)).rejects.toThrow(/is a directory, not a tar file/);
  });

  it('artifact manifests with unknown config and layer types are kept, named and warned about', async () => {
    const cfg = doc('application/vnd.cncf.helm.config.v1+json', { name: 'chart', version: '1.0.0' });
    const content = Buffer.from('chart bytes');
    const layer = { mediaType: 'application/vnd.cncf.helm.chart.content.v1.tar+gzip', digest: sha256(content), size: content.length };
    const man = doc(MediaType.OCI_MANIFEST, { schemaVersion: 2, mediaType: MediaType.OCI_MANIFEST, config: cfg.desc, layers: [layer] });
    const archive = ociArchive([{ ...man.desc, annotations: { 'io.containerd.image.name': 'x.io/chart:1' } }], [blobEntry(cfg.bytes), blobEntry(content), blobEntry(man.bytes)]);
    const r = await load(archive);
    expect(r.images[0].names).toEqual(['x.io/chart:1']);
    expect(r.warnings.join('\n')).toMatch(/unknown media type application\/vnd.cncf.helm.config.v1\+json/);
    expect(r.warnings.join('\n')).toMatch(/unknown media type application\/vnd.cncf.helm.chart.content.v1.tar\+gzip/);
  });

  it('nested indexes are walked', async () => {
    const amd = makeImage({ arch: 'amd64' });
    const inner = indexDoc([{ ...amd.manifest.desc, platform: { os: 'linux', architecture: 'amd64' } }]);
    const outer = indexDoc([inner.desc]);
    const archive = ociArchive([{ ...outer.desc, annotations: { 'io.containerd.image.name': 'x.io/nested:1' } }], [...imageBlobs(amd), blobEntry(inner.bytes), blobEntry(outer.bytes)]);
    const r = await load(archive);
    expect(r.images[0]).toEqual(expect.objectContaining({ digest: outer.digest, platforms: ['linux/amd64'], partial: false }));
    expect(store.content.has(amd.layers[0].digest)).toBe(true);
  });
});

