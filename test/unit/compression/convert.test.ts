import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { Readable } from 'node:stream';
import { convertImage } from '../../../src/compression/convert';
import { WORKER_MIN_BYTES, peakTranscodes, transcodeSlots } from '../../../src/compression/transcode';
import { decompressStream, detectCompression } from '../../../src/compression/codecs';
import { Digester } from '../../../src/digest';
import { MissingContentError, NotFoundError } from '../../../src/errors';
import { Descriptor, Index, Manifest, ImageConfig, Annotation } from '../../../src/images/types';
import { MediaType } from '../../../src/images/mediatypes';
import { walkImage } from '../../../src/images/walk';
import { contentSource } from '../../../src/images/source';
import { Store } from '../../../src/store';
import { Progress } from '../../../src/progress';
import { Env, env, layers, put } from './fixture';

async function diffIdOf(store: Store, d: Descriptor): Promise<string> {
  const head = Buffer.alloc(4);
  const fd = fs.openSync(store.content.blobPath(d.digest), 'r');
  fs.readSync(fd, head, 0, 4, 0);
  fs.closeSync(fd);
  const dg = new Digester();
  for await (const c of store.content.openRead(d.digest).pipe(decompressStream(detectCompression(head)))) dg.update(c as Buffer);
  return dg.digest();
}

const json = <T>(s: Store, d: string) => s.content.readJSON<T>(d);

function warnings(): Progress & { list: string[] } {
  const list: string[] = [];
  return { list, warn: (m: string) => list.push(m), task: () => ({ update() {}, finish() {} }) };
}

async function checkComplete(store: Store, name: string) {
  const w = await walkImage(contentSource(store.content), store.images.get(name)!.target);
  expect(w.missing).toEqual([]);
  expect(w.absent).toEqual([]);
  return w;
}

describe('convertImage', () => {
  let e: Env;
  beforeEach(() => { e = env(); });
  afterEach(() => e.cleanup());

  it('gzip Docker image -> zstd: OCI manifest, same config bytes, zstd layers with the same diffIDs', async () => {
    const ls = await layers(e, [1, 2, 3]);
    const img = e.b.image({ layers: ls });
    await put(e, img, 'docker.io/library/app:1');
    const r = await convertImage(e.store, 'app:1', 'app:zstd', { compression: 'zstd' });
    expect(r.name).toBe('docker.io/library/app:zstd');
    expect(r.target.mediaType).toBe(MediaType.OCI_MANIFEST);
    expect(r.layers.map((l) => l.source)).toEqual(['converted', 'converted', 'converted']);
    const m = await json<Manifest>(e.store, r.target.digest);
    expect(m.mediaType).toBe(MediaType.OCI_MANIFEST);
    expect(m.config).toEqual({ ...img.manifest.config, mediaType: MediaType.OCI_CONFIG });
    expect(m.layers.map((l) => l.mediaType)).toEqual(Array(3).fill(MediaType.OCI_LAYER_ZSTD));
    for (let i = 0; i < 3; i++) {
      expect(await diffIdOf(e.store, m.layers[i])).toBe(ls[i].diffId);
      expect(e.store.variants.get(m.layers[i].digest)).toMatchObject({ diffId: ls[i].diffId, compression: 'zstd', level: 3 });
    }
    // source untouched, result complete
    expect(e.store.images.get('docker.io/library/app:1')!.target.digest).toBe(img.descriptor.digest);
    await checkComplete(e.store, 'docker.io/library/app:zstd');

    // a second convert reuses every variant and gives the same digest
    const r2 = await convertImage(e.store, 'app:1', 'app:zstd2', { compression: 'zstd' });
    expect(r2.layers.map((l) => l.source)).toEqual(['existing', 'existing', 'existing']);
    expect(r2.target.digest).toBe(r.target.digest);
  });

  it('round trip gzip -> zstd -> none -> gzip keeps diffIDs; digests are stable across stores', async () => {
    const run = async (ee: Env) => {
      const ls = await layers(ee, [4, 5]);
      await put(ee, ee.b.image({ layers: ls }), 'x:gz');
      const z = await convertImage(ee.store, 'x:gz', 'x:z', { compression: 'zstd', level: 5 });
      const n = await convertImage(ee.store, 'x:z', 'x:n', { compression: 'none' });
      const g = await convertImage(ee.store, 'x:n', 'x:g', { compression: 'gzip', level: 1 });
      const out = [z, n, g].map((r) => r.target.digest);
      for (const r of [z, n, g]) {
        const m = await json<Manifest>(ee.store, r.target.digest);
        const cfg = await json<ImageConfig>(ee.store, m.config.digest);
        expect(cfg.rootfs.diff_ids).toEqual(ls.map((l) => l.diffId));
        for (let i = 0; i < ls.length; i++) expect(await diffIdOf(ee.store, m.layers[i])).toBe(ls[i].diffId);
      }
      const nm = await json<Manifest>(ee.store, n.target.digest);
      expect(nm.layers.map((l) => l.digest)).toEqual(ls.map((l) => l.diffId));
      expect(nm.layers.map((l) => l.mediaType)).toEqual([MediaType.OCI_LAYER, MediaType.OCI_LAYER]);
      const gm = await json<Manifest>(ee.store, g.target.digest);
      expect(gm.layers.map((l) => l.mediaType)).toEqual([MediaType.OCI_LAYER_GZIP, MediaType.OCI_LAYER_GZIP]);
      expect(gm.layers[0].digest).not.toBe(ls[0].digest); // level 1, not the builder's level 6
      return out;
    };
    const a = await run(e);
    const e2 = env();
    try {
      expect(await run(e2)).toEqual(a);
    } finally {
      e2.cleanup();
    }
  });

  it('same compression is a no-op; --oci only changes media types', async () => {
    const ls = await layers(e, [6]);
    const img = e.b.image({ layers: ls });
    await put(e, img, 'y:1');
    const same = await convertImage(e.store, 'y:1', 'y:same', { compression: 'gzip' });
    expect(same.target.digest).toBe(img.descriptor.digest);
    expect(same.layers[0].source).toBe('unchanged');
    const oci = await convertImage(e.store, 'y:1', 'y:oci', { compression: 'gzip', oci: true });
    const m = await json<Manifest>(e.store, oci.target.digest);
    expect(oci.target.mediaType).toBe(MediaType.OCI_MANIFEST);
    expect(m.config).toEqual({ ...img.manifest.config, mediaType: MediaType.OCI_CONFIG });
    expect(m.layers).toEqual([{ mediaType: MediaType.OCI_LAYER_GZIP, digest: ls[0].digest, size: ls[0].size }]);
  });

  it('converts every platform of an index; attestations travel unchanged, re-pointed at the new manifests', async () => {
    const amd = e.b.image({ layers: await layers(e, [7, 8]), platform: 'linux/amd64' });
    const arm = e.b.image({ layers: await layers(e, [7, 9]), platform: 'linux/arm64' });
    const idx = e.b.index({ images: [amd, arm], attestations: true });
    await put(e, idx, 'multi:1');
    const r = await convertImage(e.store, 'multi:1', 'multi:zstd', { compression: 'zstd' });
    expect(r.target.mediaType).toBe(MediaType.OCI_INDEX);
    const ix = await json<Index>(e.store, r.target.digest);
    expect(ix.manifests).toHaveLength(4);
    const [nAmd, nArm, attA, attB] = ix.manifests;
    expect(nAmd.platform).toEqual(amd.descriptor.platform);
    expect(nAmd.digest).not.toBe(amd.descriptor.digest);
    expect(attA.digest).toBe(idx.attestations[0].descriptor.digest);
    expect(attA.annotations![Annotation.DOCKER_REFERENCE_DIGEST]).toBe(nAmd.digest);
    expect(attB.annotations![Annotation.DOCKER_REFERENCE_DIGEST]).toBe(nArm.digest);
    // the shared base layer was converted once
    expect(new Set(r.layers.filter((l) => l.diffId === amd.layers[0].diffId).map((l) => l.to.digest)).size).toBe(1);
    await checkComplete(e.store, 'docker.io/library/multi:zstd');

    const sub = await convertImage(e.store, 'multi:1', 'multi:arm', { compression: 'zstd', platforms: ['linux/arm64'] });
    const sx = await json<Index>(e.store, sub.target.digest);
    expect(sx.manifests.map((m) => m.digest)).toEqual([nArm.digest, attB.digest]);
    expect(sub.layers.every((l) => l.source === 'existing')).toBe(true);
    await expect(convertImage(e.store, 'multi:1', 'multi:s390x', { compression: 'zstd', platforms: ['linux/s390x'] })).rejects.toThrow(NotFoundError);
  });

  it('an index with an absent platform: left out by default (warned), an error with --all-platforms or when selected', async () => {
    const amd = e.b.image({ layers: await layers(e, [10]), platform: 'linux/amd64' });
    const arm = e.b.image({ layers: await layers(e, [11]), platform: 'linux/arm64' });
    const idx = e.b.index({ images: [amd, arm] });
    const skip = new Set([arm.descriptor.digest, arm.config.digest, ...arm.layers.map((l) => l.digest)]);
    await put(e, idx, 'part:1', { skip });
    const p = warnings();
    const r = await convertImage(e.store, 'part:1', 'part:z', { compression: 'zstd', progress: p });
    expect(r.dropped.map((d) => d.digest)).toEqual([arm.descriptor.digest]);
    expect(p.list.join('\n')).toMatch(/linux\/arm64.*not in the store/);
    const ix = await json<Index>(e.store, r.target.digest);
    expect(ix.manifests.map((m) => m.platform!.architecture)).toEqual(['amd64']);
    await checkComplete(e.store, 'docker.io/library/part:z');
    await expect(convertImage(e.store, 'part:1', 'part:all', { compression: 'zstd', allPlatforms: true })).rejects.toThrow(MissingContentError);
    await expect(convertImage(e.store, 'part:1', 'part:arm', { compression: 'zstd', platforms: ['linux/arm64'] })).rejects.toThrow(MissingContentError);
    expect(e.store.images.get('docker.io/library/part:all')).toBeUndefined();
  });

  it('layers partly missing: converted from another variant or rebuilt; never an image with missing blobs', async () => {
    const ls = await layers(e, [12, 13, 14]);
    const img = e.b.image({ layers: ls });
    // layer 0 present; layer 1 only as an uncompressed variant; layer 2 only in a "snapshot"
    const tar1 = zlib.gunzipSync(fs.readFileSync(e.b.blobs.path(ls[1].digest)));
    const tar2 = zlib.gunzipSync(fs.readFileSync(e.b.blobs.path(ls[2].digest)));
    await put(e, img, 'gaps:1', { skip: new Set([ls[1].digest, ls[2].digest]) });
    e.store.variants.recordProof({ digest: ls[1].digest, diffId: ls[1].diffId, compression: 'gzip', size: ls[1].size, level: 6, codecVersion: require('../../../src/compression/codecs').codecVersion('gzip') });
    await e.store.content.ingestBuffer(tar1);
    e.store.variants.recordProof({ digest: ls[1].diffId, diffId: ls[1].diffId, compression: 'none', size: tar1.length });
    const rebuild = (_s: Store, d: string) => (d === ls[2].diffId ? Readable.from([tar2]) : undefined);

    // keep gzip: the missing blobs come back byte-identical (same codec, same level)
    const g = await convertImage(e.store, 'gaps:1', 'gaps:gz', { compression: 'gzip', rebuild });
    expect(g.layers.map((l) => l.source)).toEqual(['unchanged', 'converted', 'rebuilt']);
    expect(g.target.digest).toBe(img.descriptor.digest);
    await checkComplete(e.store, 'docker.io/library/gaps:gz');

    const z = await convertImage(e.store, 'gaps:1', 'gaps:z', { compression: 'zstd', rebuild: null });
    await checkComplete(e.store, 'docker.io/library/gaps:z');
    expect(z.layers.every((l) => l.source === 'converted')).toBe(true);
  });

  it('a layer that cannot be produced fails naming image, layer and diffID, and registers nothing', async () => {
    const ls = await layers(e, [15, 16]);
    const img = e.b.image({ layers: ls });
    await put(e, img, 'broken:1', { skip: new Set([ls[1].digest]) });
    const err = await convertImage(e.store, 'broken:1', 'broken:z', { compression: 'zstd', rebuild: null }).catch((x) => x);
    expect(err).toBeInstanceOf(MissingContentError);
    expect(err.message).toContain('docker.io/library/broken:1');
    expect(err.message).toContain('layer 2');
    expect(err.message).toContain(ls[1].diffId);
    expect(e.store.images.get('docker.io/library/broken:z')).toBeUndefined();
  });

  it('attaches every blob of the new image to the lease', async () => {
    const ls = await layers(e, [17, 18]);
    await put(e, e.b.image({ layers: ls }), 'leased:1');
    const attached: string[] = [];
    const r = await convertImage(e.store, 'leased:1', 'leased:z', { compression: 'zstd', lease: { attach: (_k, ref) => { attached.push(ref); } } });
    const w = await walkImage(contentSource(e.store.content), r.target);
    for (const b of w.blobs) expect(attached).toContain(b.digest);
    expect(attached).toContain('docker.io/library/leased:z');
  });

  it('rejects bad options', async () => {
    await put(e, e.b.image({ layers: await layers(e, [19]) }), 'opt:1');
    await expect(convertImage(e.store, 'opt:1', 'opt:2', { compression: 'gzip', level: 12 })).rejects.toThrow(/gzip level/);
    await expect(convertImage(e.store, 'opt:1', 'opt:2', { compression: 'none', level: 1 })).rejects.toThrow(/level/);
    await expect(convertImage(e.store, 'opt:1', 'opt:2', { compression: 'brotli' as never })).rejects.toThrow(/unknown compression/);
    await expect(convertImage(e.store, 'nope:1', 'opt:2', { compression: 'gzip' })).rejects.toThrow(NotFoundError);
  });

  it('a zstd layer mislabelled as Docker gzip (containerd import quirk): warned, and the bytes decide', async () => {
    const [l] = await layers(e, [20], 'zstd');
    const cfg = e.b.blobs.putJson({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [l.diffId] } });
    const config = { mediaType: MediaType.DOCKER_CONFIG, digest: cfg.digest, size: cfg.size };
    const man = { schemaVersion: 2, mediaType: MediaType.DOCKER_MANIFEST, config, layers: [{ mediaType: MediaType.DOCKER_LAYER_GZIP, digest: l.digest, size: l.size }] };
    const mref = e.b.blobs.putJson(man);
    const built = { kind: 'image', descriptor: { mediaType: MediaType.DOCKER_MANIFEST, digest: mref.digest, size: mref.size }, manifest: man, config, layers: [l] } as never;
    await put(e, built, 'quirk:1');
    const p = warnings();
    const z = await convertImage(e.store, 'quirk:1', 'quirk:z', { compression: 'zstd', progress: p });
    expect(p.list.join('\n')).toMatch(/recorded as gzip.*bytes are zstd/);
    expect(z.layers[0]).toMatchObject({ source: 'existing', to: { mediaType: MediaType.OCI_LAYER_ZSTD, digest: l.digest } });
    const g = await convertImage(e.store, 'quirk:1', 'quirk:gz', { compression: 'gzip' });
    expect(g.layers[0].source).toBe('converted');
    const m = await json<Manifest>(e.store, g.target.digest);
    expect(m.mediaType).toBe(MediaType.DOCKER_MANIFEST);
    expect(m.layers[0].mediaType).toBe(MediaType.DOCKER_LAYER_GZIP);
    expect(await diffIdOf(e.store, m.layers[0])).toBe(l.diffId);
    const head = fs.readFileSync(e.store.content.blobPath(m.layers[0].digest)).subarray(0, 2);
    expect(head.toString('hex')).toBe('1f8b');
  });
  // The attacker's (or the disk's) test: the file stored under a layer's digest is another gzip
  // of the same tar. It decodes to the diffID, so only hashing the compressed input in the same
  // pass notices that the blob is not what its digest says: no proof, no new image.
  it.each([
    ['in a worker thread', 2 << 20],
    ['in-process', 16 * 1024],
  ])('a stored source blob whose bytes are not its digest is refused (%s), and proves nothing', async (_how, size) => {
    const [l] = await layers(e, [21], 'gzip', size as number);
    expect(l.size >= WORKER_MIN_BYTES).toBe(size === 2 << 20);
    const img = e.b.image({ layers: [l] });
    await put(e, img, 'tampered:1', { record: false });
    const file = e.store.content.blobPath(l.digest);
    const other = zlib.gzipSync(zlib.gunzipSync(fs.readFileSync(file)), { level: 1 });
    fs.chmodSync(file, 0o644);
    fs.writeFileSync(file, other);
    const err = await convertImage(e.store, 'tampered:1', 'tampered:z', { compression: 'zstd', rebuild: null }).catch((x) => x);
    expect(err).toBeInstanceOf(MissingContentError);
    expect(err.message).toContain('docker.io/library/tampered:1');
    expect(err.details.join('\n')).toContain(l.digest);
    expect(err.details.join('\n')).toMatch(/stored blob.*fsck/);
    expect(e.store.variants.get(l.digest)).toBeUndefined();
    expect(e.store.variants.forDiffId(l.diffId)).toEqual([]);
    expect(e.store.images.get('docker.io/library/tampered:z')).toBeUndefined();
  });
  it('runs at most transcodeSlots() worker transcodes at once, whatever the layer concurrency (each holds two threads and its buffers)', async () => {
    const ls = await layers(e, [22, 23, 24], 'gzip', 4 << 20);
    for (const l of ls) expect(l.size).toBeGreaterThanOrEqual(WORKER_MIN_BYTES);
    await put(e, e.b.image({ layers: ls }), 'many:1');
    const r = await convertImage(e.store, 'many:1', 'many:z', { compression: 'zstd', concurrency: 3 });
    expect(r.layers.map((l) => l.source)).toEqual(['converted', 'converted', 'converted']);
    expect(peakTranscodes()).toBeGreaterThanOrEqual(1);
    expect(peakTranscodes()).toBeLessThanOrEqual(transcodeSlots());
  }, 60_000);
});
