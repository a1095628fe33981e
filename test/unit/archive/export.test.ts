import * as fs from 'node:fs';
import * as path from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { Store, saveImages, sha256, MediaType, MissingContentError, Descriptor, ImgtoolError } from '../../../src';
import { planSave } from '../../../src/archive/export';
import { LayerResolver } from '../../../src/archive/export-resolver';
import { Annotation } from '../../../src/images/types';
import { tmpDir, rmrf } from '../../helpers/cli';
import {
  addImage, addIndex, addAttestation, addVariant, addLayer, dropBlob, readTar, entryJSON, collect, FixtureImage,
} from './export-fixtures';

const amd64 = { os: 'linux', architecture: 'amd64' };
const arm64 = { os: 'linux', architecture: 'arm64' };
const host = amd64;

describe('saveImages', () => {
  let dir: string;
  let store: Store;
  let out: string;
  beforeEach(() => {
    dir = tmpDir('imgtool-export-');
    store = Store.open(path.join(dir, 'store'));
    out = path.join(dir, 'out');
    fs.mkdirSync(out);
  });
  afterEach(() => {
    store.close();
    rmrf(dir);
  });

  const file = (n: string) => path.join(out, n);
  const noLeftovers = () => expect(fs.readdirSync(out).filter((n) => n.includes('.tmp-'))).toEqual([]);

  async function simple(name = 'busybox:latest', label = 'a'): Promise<FixtureImage> {
    const img = await addImage(store, { layers: [{ 'bin/sh': 'shell ' + label }, { 'etc/motd': 'hello ' + label }], label });
    store.images.put(`docker.io/library/${name}`, img.manifest);
    return img;
  }

  it('writes an OCI layout plus Docker manifest.json and repositories, deterministic headers', async () => {
    const img = await simple();
    const res = await saveImages(store, ['busybox'], { output: file('a.tar'), host });
    const entries = await readTar(file('a.tar'));
    const names = entries.map((e) => e.name);
    const blobs = [img.config.digest, img.manifest.digest, ...img.layers.map((l) => l.desc.digest)];
    // metadata first, then documents, then layers (each group sorted by digest)
    const docs = [img.config.digest, img.manifest.digest].sort();
    const layers = img.layers.map((l) => l.desc.digest).sort();
    expect(names).toEqual([
      'oci-layout', 'index.json', 'manifest.json', 'repositories', 'blobs/', 'blobs/sha256/',
      ...[...docs, ...layers].map((d) => `blobs/sha256/${d.slice(7)}`),
    ]);
    expect(entryJSON(entries, 'oci-layout')).toEqual({ imageLayoutVersion: '1.0.0' });
    const index = entryJSON(entries, 'index.json');
    expect(index.manifests).toEqual([{
      mediaType: MediaType.OCI_MANIFEST, digest: img.manifest.digest, size: img.manifest.size,
      annotations: { 'io.containerd.image.name': 'docker.io/library/busybox:latest', 'org.opencontainers.image.ref.name': 'docker.io/library/busybox:latest' },
    }]);
    expect(entryJSON(entries, 'manifest.json')).toEqual([{
      Config: `blobs/sha256/${img.config.digest.slice(7)}`,
      RepoTags: ['busybox:latest'],
      Layers: img.layers.map((l) => `blobs/sha256/${l.desc.digest.slice(7)}`),
    }]);
    expect(entryJSON(entries, 'repositories')).toEqual({ busybox: { latest: img.layers[1].diffId.slice(7) } });
    for (const e of entries) {
      expect(e.mtime).toBe(0);
      expect([e.uid, e.gid, e.uname, e.gname]).toEqual([0, 0, '', '']);
      if (e.type === 'directory') expect(e.mode).toBe(0o755);
      else if (e.name.startsWith('blobs/')) {
        expect(e.mode).toBe(0o444);
        expect(sha256(e.data)).toBe(`sha256:${e.name.slice('blobs/sha256/'.length)}`);
      } else expect(e.mode).toBe(0o644);
    }
    expect(new Set(blobs).size).toBe(entries.filter((e) => e.type === 'file' && e.name.startsWith('blobs/')).length);
    expect(res.changes).toEqual([]);
    expect(res.blobs).toBe(4);
    expect(res.bytes).toBe(fs.statSync(file('a.tar')).size);
    noLeftovers();
  });

  it('is deterministic: same images give identical bytes whatever the argument order', async () => {
    await simple('a:1', 'a');
    await simple('b:1', 'b');
    await saveImages(store, ['a:1', 'b:1'], { output: file('1.tar'), host });
    await saveImages(store, ['b:1', 'a:1', 'a:1'], { output: file('2.tar'), host });
    expect(fs.readFileSync(file('1.tar')).equals(fs.readFileSync(file('2.tar')))).toBe(true);
  });

  it('writes shared blobs once; names of one image share a manifest.json entry', async () => {
    const base = await addImage(store, { layers: [{ 'base.txt': 'base' }] });
    const a = await addImage(store, { baseLayers: base.layers, layers: [{ a: 'a' }], label: 'a' });
    const b = await addImage(store, { baseLayers: base.layers, layers: [{ b: 'b' }], label: 'b' });
    store.images.put('docker.io/library/a:1', a.manifest);
    store.images.put('docker.io/library/b:1', b.manifest);
    store.images.put('example.com/team/b:alias', b.manifest);
    await saveImages(store, ['a:1', 'b:1', 'example.com/team/b:alias'], { output: file('s.tar'), host });
    const entries = await readTar(file('s.tar'));
    const baseName = `blobs/sha256/${base.layers[0].desc.digest.slice(7)}`;
    expect(entries.filter((e) => e.name === baseName)).toHaveLength(1);
    const names = entries.map((e) => e.name);
    expect(new Set(names).size).toBe(names.length);
    const index = entryJSON(entries, 'index.json');
    expect(index.manifests.map((m: Descriptor) => m.annotations![Annotation.CONTAINERD_NAME])).toEqual([
      'docker.io/library/a:1', 'docker.io/library/b:1', 'example.com/team/b:alias',
    ]);
    const mj = entryJSON(entries, 'manifest.json');
    expect(mj).toHaveLength(2);
    expect(mj[1].RepoTags).toEqual(['b:1', 'example.com/team/b:alias']);
    expect(mj[0].Layers[0]).toBe(baseName);
    expect(entryJSON(entries, 'repositories')).toEqual({
      a: { 1: a.layers[1].diffId.slice(7) }, b: { 1: b.layers[1].diffId.slice(7) }, 'example.com/team/b': { alias: b.layers[1].diffId.slice(7) },
    });
  });

  async function multi(): Promise<{ idx: Descriptor; x86: FixtureImage; arm: FixtureImage; att: Descriptor; attArm: Descriptor }> {
    const x86 = await addImage(store, { platform: amd64, layers: [{ f: 'amd64' }], label: 'amd64' });
    const arm = await addImage(store, { platform: arm64, layers: [{ f: 'arm64' }], label: 'arm64' });
    const att = await addAttestation(store, x86.manifest);
    const attArm = await addAttestation(store, arm.manifest);
    const idx = await addIndex(store, [x86, arm], [att, attArm]);
    store.images.put('docker.io/library/multi:1', idx);
    return { idx, x86, arm, att, attArm };
  }

  it('writes a complete index unchanged; manifest.json takes the host platform, else the first', async () => {
    const { idx, x86, arm } = await multi();
    const res = await saveImages(store, ['multi:1'], { output: file('m.tar'), host: arm64 });
    expect(res.changes).toEqual([]);
    expect(res.images[0].digest).toBe(idx.digest);
    expect(res.images[0].platforms).toEqual(['linux/arm64', 'linux/amd64']);
    const entries = await readTar(file('m.tar'));
    expect(entryJSON(entries, 'index.json').manifests[0].digest).toBe(idx.digest);
    expect(entryJSON(entries, 'manifest.json')[0].Config).toBe(`blobs/sha256/${arm.config.digest.slice(7)}`);
    // both attestations travel (their in-toto blobs too)
    expect(entries.filter((e) => e.name.startsWith('blobs/sha256/') && e.type === 'file')).toHaveLength(1 + 2 * 3 + 2 * 3);

    const res2 = await saveImages(store, ['multi:1'], { output: file('m2.tar'), host: { os: 'linux', architecture: 's390x' } });
    expect(res2.images[0].dockerManifest).toBe(x86.manifest.digest); // first in platform order
  });

  it('--platform subset: new index with only that manifest and its attestation; old -> new reported', async () => {
    const { idx, x86, arm, att } = await multi();
    const res = await saveImages(store, ['multi:1'], { output: file('p.tar'), host, platforms: [arm64] });
    expect(res.changes).toHaveLength(1);
    const ch = res.changes[0];
    expect(ch).toMatchObject({ image: 'docker.io/library/multi:1', kind: 'index', from: idx.digest });
    expect(ch.to).not.toBe(idx.digest);
    const entries = await readTar(file('p.tar'));
    const index = entryJSON(entries, 'index.json');
    expect(index.manifests[0].digest).toBe(ch.to);
    const newIdx = entryJSON(entries, `blobs/sha256/${ch.to.slice(7)}`);
    expect(sha256(entries.find((e) => e.name === `blobs/sha256/${ch.to.slice(7)}`)!.data)).toBe(ch.to);
    expect(newIdx.manifests.map((m: Descriptor) => m.digest)).toEqual([arm.manifest.digest, expect.any(String)]);
    expect(newIdx.manifests[1].annotations[Annotation.DOCKER_REFERENCE_DIGEST]).toBe(arm.manifest.digest);
    expect(entries.some((e) => e.name.endsWith(x86.manifest.digest.slice(7)))).toBe(false);
    expect(entries.some((e) => e.name.endsWith(att.digest.slice(7)))).toBe(false);
    expect(res.images[0].leftOut).toEqual(['linux/amd64']);
  });

  it('nested indexes: a subset rewrites the inner and the outer index', async () => {
    const x86 = await addImage(store, { platform: amd64, layers: [{ f: 'n-amd64' }], label: 'n-amd64' });
    const arm = await addImage(store, { platform: arm64, layers: [{ f: 'n-arm64' }], label: 'n-arm64' });
    const inner = await addIndex(store, [x86, arm]);
    const outerDoc = { schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: [inner] };
    const ob = Buffer.from(JSON.stringify(outerDoc));
    const outer = await store.content.ingestBuffer(ob);
    store.images.put('docker.io/library/nested:1', { mediaType: MediaType.OCI_INDEX, digest: outer.digest, size: outer.size });
    const full = await saveImages(store, ['nested:1'], { output: file('n0.tar'), host });
    expect(full.changes).toEqual([]);
    const res = await saveImages(store, ['nested:1'], { output: file('n.tar'), host, platforms: [arm64] });
    expect(res.changes.map((c) => [c.kind, c.from])).toEqual([['index', inner.digest], ['index', outer.digest]]);
    const entries = await readTar(file('n.tar'));
    const newOuter = entryJSON(entries, `blobs/sha256/${res.changes[1].to.slice(7)}`);
    expect(newOuter.manifests[0].digest).toBe(res.changes[0].to);
    const newInner = entryJSON(entries, `blobs/sha256/${res.changes[0].to.slice(7)}`);
    expect(newInner.manifests.map((m: Descriptor) => m.digest)).toEqual([arm.manifest.digest]);
    expect(entryJSON(entries, 'index.json').manifests[0].digest).toBe(res.changes[1].to);
  });

  it('default with an absent platform: new index without it (never one pointing at absent manifests); --all-platforms fails', async () => {
    const { idx, arm } = await multi();
    dropBlob(store, arm.manifest.digest);
    const warnings: string[] = [];
    const progress = { task: () => ({ update() {}, finish() {} }), warn: (m: string) => warnings.push(m) };
    const res = await saveImages(store, ['multi:1'], { output: file('d.tar'), host, progress });
    expect(warnings.join('\n')).toMatch(/linux\/arm64 manifest sha256:.* not in the store; left out/);
    expect(res.changes[0]).toMatchObject({ kind: 'index', from: idx.digest });
    const entries = await readTar(file('d.tar'));
    const newIdx = entryJSON(entries, `blobs/sha256/${res.changes[0].to.slice(7)}`);
    for (const m of newIdx.manifests) expect(entries.some((e) => e.name === `blobs/sha256/${m.digest.slice(7)}`)).toBe(true);
    expect(newIdx.manifests).toHaveLength(2); // amd64 + its attestation

    await expect(saveImages(store, ['multi:1'], { output: file('e.tar'), host, allPlatforms: true })).rejects.toThrow(MissingContentError);
    expect(fs.existsSync(file('e.tar'))).toBe(false);
    await expect(saveImages(store, ['multi:1'], { output: file('e.tar'), host, platforms: [{ os: 'linux', architecture: 'ppc64le' }] })).rejects.toThrow(/has no platform linux\/ppc64le/);
  });

  it('missing blobs: fails before writing, naming every missing blob with image and layer; no file left', async () => {
    const a = await simple('a:1', 'a');
    const b = await simple('b:1', 'b');
    dropBlob(store, a.layers[1].desc.digest);
    dropBlob(store, b.layers[0].desc.digest);
    let err: ImgtoolError | undefined;
    try {
      await saveImages(store, ['a:1', 'b:1'], { output: file('x.tar'), host });
    } catch (e) {
      err = e as ImgtoolError;
    }
    expect(err).toBeInstanceOf(MissingContentError);
    expect(err!.details).toHaveLength(2);
    expect(err!.details[0]).toContain('image docker.io/library/a:1');
    expect(err!.details[0]).toContain(`layer 2 ${a.layers[1].desc.digest}`);
    expect(err!.details[1]).toContain(`layer 1 ${b.layers[0].desc.digest}`);
    expect(fs.readdirSync(out)).toEqual([]);

    // Also nothing at all reaches a stream output.
    const sink = new PassThrough();
    const got = collect(sink);
    await expect(saveImages(store, ['a:1'], { output: sink, host })).rejects.toThrow(MissingContentError);
    sink.end();
    expect((await got).length).toBe(0);
  });

  it('asks the layer resolver for absent layers; a changed layer gives a new manifest (old -> new)', async () => {
    const a = await simple('a:1', 'a');
    const absent = a.layers[0];
    dropBlob(store, absent.desc.digest);
    // The "rebuilt" layer: another gzip encoding of the same tar.
    const replacement = await addVariant(store, absent, 'none');
    const calls: unknown[] = [];
    const resolver: LayerResolver = {
      async resolveLayer(req) {
        calls.push({ image: req.image, index: req.index, diffId: req.diffId, compression: req.compression, layer: req.layer.digest });
        return req.layer.digest === absent.desc.digest ? replacement : undefined;
      },
    };
    const res = await saveImages(store, ['a:1'], { output: file('r.tar'), host, layerResolver: resolver });
    expect(calls).toEqual([{ image: 'docker.io/library/a:1', index: 0, diffId: absent.diffId, compression: 'keep', layer: absent.desc.digest }]);
    expect(res.changes).toEqual([expect.objectContaining({ kind: 'manifest', from: a.manifest.digest, platform: 'linux/amd64' })]);
    const entries = await readTar(file('r.tar'));
    const newDigest = res.changes[0].to;
    expect(entryJSON(entries, 'index.json').manifests[0].digest).toBe(newDigest);
    const m = entryJSON(entries, `blobs/sha256/${newDigest.slice(7)}`);
    expect(m.layers[0]).toEqual({ mediaType: MediaType.OCI_LAYER, digest: replacement.digest, size: replacement.size });
    expect(m.config.digest).toBe(a.config.digest);
    expect(entryJSON(entries, 'manifest.json')[0].Layers[0]).toBe(`blobs/sha256/${replacement.digest.slice(7)}`);

    // Named by digest, the manifest cannot change.
    await expect(saveImages(store, [a.manifest.digest], { output: file('pin.tar'), host, layerResolver: resolver })).rejects.toThrow(/named by digest/);
    expect(fs.existsSync(file('pin.tar'))).toBe(false);
  });

  it('--compression uses existing variants; a resolver that cannot produce one -> missing naming the layer', async () => {
    const a = await simple('a:1', 'a');
    const never = { resolveLayer: async () => undefined };
    await expect(saveImages(store, ['a:1'], { output: file('z.tar'), host, compression: 'zstd', layerResolver: never })).rejects.toThrow(/not available as zstd/);
    expect(fs.existsSync(file('z.tar'))).toBe(false);
    const z = [await addVariant(store, a.layers[0], 'zstd'), await addVariant(store, a.layers[1], 'zstd')];
    const res = await saveImages(store, ['a:1'], { output: file('z.tar'), host, compression: 'zstd' });
    const entries = await readTar(file('z.tar'));
    const m = entryJSON(entries, `blobs/sha256/${res.changes[0].to.slice(7)}`);
    expect(m.layers.map((l: Descriptor) => [l.mediaType, l.digest])).toEqual(z.map((d) => [MediaType.OCI_LAYER_ZSTD, d.digest]));
    // gzip wanted and the layers are gzip already: unchanged.
    const g = await saveImages(store, ['a:1'], { output: file('g.tar'), host, compression: 'gzip' });
    expect(g.changes).toEqual([]);
  });

  it('zstd layers in a Docker manifest switch the manifest and config to OCI media types', async () => {
    const d = await addImage(store, { layers: [{ f: 'docker' }], docker: true });
    store.images.put('docker.io/library/d:1', d.manifest);
    await addVariant(store, d.layers[0], 'zstd');
    const res = await saveImages(store, ['d:1'], { output: file('dz.tar'), host, compression: 'zstd' });
    const entries = await readTar(file('dz.tar'));
    const m = entryJSON(entries, `blobs/sha256/${res.changes[0].to.slice(7)}`);
    expect(m.mediaType).toBe(MediaType.OCI_MANIFEST);
    expect(m.config).toEqual({ ...d.config, mediaType: MediaType.OCI_CONFIG });
    expect(m.layers[0].mediaType).toBe(MediaType.OCI_LAYER_ZSTD);
    expect(res.changes[0].reason).toMatch(/OCI/);
    // and Docker archives refuse zstd
    await expect(saveImages(store, ['d:1'], { output: file('dd.tar'), host, compression: 'zstd', format: 'docker' })).rejects.toThrow(/zstd/);
    const zs = await addImage(store, { layers: [{ f: 'z' }], compression: 'zstd' });
    store.images.put('docker.io/library/zs:1', zs.manifest);
    await expect(saveImages(store, ['zs:1'], { output: file('dd.tar'), host, format: 'docker' })).rejects.toThrow(/layer 1 .* is zstd/);
    expect(fs.existsSync(file('dd.tar'))).toBe(false);
  });

  it('--format docker has no OCI files; --format oci has no manifest.json', async () => {
    const { x86 } = await multi();
    await saveImages(store, ['multi:1'], { output: file('d.tar'), host, format: 'docker' });
    const d = await readTar(file('d.tar'));
    expect(d.map((e) => e.name).filter((n) => !n.startsWith('blobs/'))).toEqual(['manifest.json', 'repositories']);
    // only the chosen manifest's config and layers
    expect(d.filter((e) => e.type === 'file' && e.name.startsWith('blobs/')).map((e) => e.name).sort()).toEqual(
      [x86.config.digest, ...x86.layers.map((l) => l.desc.digest)].map((x) => `blobs/sha256/${x.slice(7)}`).sort(),
    );
    await saveImages(store, ['multi:1'], { output: file('o.tar'), host, format: 'oci' });
    const o = await readTar(file('o.tar'));
    expect(o.map((e) => e.name).filter((n) => !n.startsWith('blobs/'))).toEqual(['oci-layout', 'index.json']);
  });

  it('a digest-named image gets a repository@digest name and no RepoTags', async () => {
    const a = await simple('a:1', 'a');
    const res = await saveImages(store, [a.manifest.digest.slice(7, 19)], { output: file('dg.tar'), host });
    const name = `docker.io/library/a@${a.manifest.digest}`;
    expect(res.images[0].name).toBe(name);
    const entries = await readTar(file('dg.tar'));
    expect(entryJSON(entries, 'index.json').manifests[0].annotations).toEqual({ [Annotation.CONTAINERD_NAME]: name, [Annotation.REF_NAME]: name });
    expect(entryJSON(entries, 'manifest.json')[0].RepoTags).toEqual([]);
    expect(entries.some((e) => e.name === 'repositories')).toBe(false);
    // `repo@digest` for content stored only under a tag of that repository
    const r2 = await saveImages(store, [`a@${a.manifest.digest}`], { output: file('dg2.tar'), host });
    expect(r2.images[0]).toMatchObject({ name, digest: a.manifest.digest });
    await expect(saveImages(store, [`a@sha256:${'0'.repeat(64)}`], { output: file('dg3.tar'), host })).rejects.toThrow(/not found/);
  });

  it('omitBlobs leaves blobs out (and they may be absent from the store)', async () => {
    const a = await simple('a:1', 'a');
    dropBlob(store, a.layers[0].desc.digest);
    const res = await saveImages(store, ['a:1'], { output: file('o.tar'), host, omitBlobs: new Set([a.layers[0].desc.digest, a.layers[1].desc.digest]) });
    expect(res.omitted.sort()).toEqual([a.layers[0].desc.digest, a.layers[1].desc.digest].sort());
    const entries = await readTar(file('o.tar'));
    expect(entries.filter((e) => e.type === 'file' && e.name.startsWith('blobs/'))).toHaveLength(2);
    expect(entryJSON(entries, 'index.json').manifests[0].digest).toBe(a.manifest.digest);
  });

  it('a corrupted blob fails the save while copying and leaves no file', async () => {
    const a = await simple('a:1', 'a');
    const p = store.content.blobPath(a.layers[1].desc.digest);
    fs.chmodSync(p, 0o644);
    const buf = fs.readFileSync(p);
    buf[buf.length - 1] ^= 0xff;
    fs.writeFileSync(p, buf);
    await expect(saveImages(store, ['a:1'], { output: file('c.tar'), host })).rejects.toThrow(/digest mismatch/);
    expect(fs.readdirSync(out)).toEqual([]);
  });

  it('writes to a stream and ends it; a failing stream fails the save', async () => {
    await simple('a:1', 'a');
    const sink = new PassThrough();
    const got = collect(sink);
    const res = await saveImages(store, ['a:1'], { output: sink, host });
    const bytes = await got;
    expect(bytes.length).toBe(res.bytes);
    await saveImages(store, ['a:1'], { output: file('f.tar'), host });
    expect(bytes.equals(fs.readFileSync(file('f.tar')))).toBe(true);

    let n = 0;
    const broken = new Writable({
      highWaterMark: 1024,
      write(_c, _e, cb) {
        if (++n > 2) cb(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
        else cb();
      },
    });
    await expect(saveImages(store, ['a:1'], { output: broken, host })).rejects.toThrow(/closed before the archive was complete/);
  });

  it('a file written in many overlapping batches equals the streamed bytes', async () => {
    const big = Buffer.alloc(13 * 1024 * 1024 + 4321);
    for (let i = 0; i < big.length; i += 32) Buffer.from(sha256(String(i)).slice(7), 'hex').copy(big, i);
    const img = await addImage(store, { layers: [{ 'big.bin': big }, { small: 'x' }], compression: 'none', label: 'big' });
    store.images.put('docker.io/library/big:1', img.manifest);
    await saveImages(store, ['big:1'], { output: file('big.tar'), host });
    const sink = new PassThrough();
    const got = collect(sink);
    await saveImages(store, ['big:1'], { output: sink, host });
    const streamed = await got;
    const written = fs.readFileSync(file('big.tar'));
    expect(written.length).toBe(streamed.length);
    expect(written.equals(streamed)).toBe(true);
    const entries = await readTar(written);
    const layer = entries.find((e) => e.name === `blobs/sha256/${img.layers[0].desc.digest.slice(7)}`)!;
    expect(sha256(layer.data)).toBe(img.layers[0].desc.digest);
  });

  it('holds every written blob for the lease', async () => {
    const a = await simple('a:1', 'a');
    const held: string[] = [];
    await saveImages(store, ['a:1'], { output: file('l.tar'), host, lease: { attach: (_k, ref) => held.push(ref) } });
    expect(held.sort()).toEqual([a.manifest.digest, a.config.digest, ...a.layers.map((l) => l.desc.digest)].sort());
  });

  it('planSave lists blobs with sizes without writing', async () => {
    const a = await simple('a:1', 'a');
    const plan = await planSave(store, ['a:1'], { host });
    expect(plan.blobs.map((b) => [b.digest, b.size])).toContainEqual([a.layers[0].desc.digest, a.layers[0].desc.size]);
    expect(fs.readdirSync(out)).toEqual([]);
    void addLayer;
  });
});
