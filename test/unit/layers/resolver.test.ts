import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { layerResolver } from '../../../src/layers';
import { codecVersion } from '../../../src/compression/codecs';
import { saveImages } from '../../../src/archive/export';
import { MediaType } from '../../../src/images/mediatypes';
import { Descriptor, Manifest } from '../../../src/images/types';
import * as tar from 'tar-stream';

async function readTar(file: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  const ex = tar.extract();
  const done = new Promise<void>((res, rej) => {
    ex.on('entry', (h, stream, next) => {
      const parts: Buffer[] = [];
      stream.on('data', (d: Buffer) => parts.push(d));
      stream.on('end', () => { files.set(h.name, Buffer.concat(parts)); next(); });
    });
    ex.on('finish', res);
    ex.on('error', rej);
  });
  fs.createReadStream(file).pipe(ex);
  await done;
  return files;
}
import { Env, env, layers, put } from '../compression/fixture';

describe('layerResolver (save)', () => {
  let e: Env;
  beforeEach(() => { e = env(); });
  afterEach(() => e.cleanup());

  async function setup() {
    const ls = await layers(e, [1, 2]);
    const img = e.b.image({ layers: ls });
    await put(e, img, 'app:1', { skip: new Set([ls[1].digest]) });
    // imgtool made layer 1's gzip blob (level 6, this codec), then it was discarded; the tar is kept
    e.store.variants.recordProof({ digest: ls[1].digest, diffId: ls[1].diffId, compression: 'gzip', size: ls[1].size, level: 6, codecVersion: codecVersion('gzip') });
    await e.store.content.ingestBuffer(zlib.gunzipSync(fs.readFileSync(e.b.blobs.path(ls[1].digest))));
    e.store.variants.recordProof({ digest: ls[1].diffId, diffId: ls[1].diffId, compression: 'none', size: 1 });
    return { ls, img };
  }

  it('keep: present layers as they are; an absent one reproduced byte-identical', async () => {
    const { ls, img } = await setup();
    const r = layerResolver(e.store);
    const req = (i: number, compression: 'keep' | 'gzip' | 'zstd' | 'none') => ({
      image: 'docker.io/library/app:1', manifest: img.descriptor.digest, index: i, layer: img.manifest.layers[i], diffId: ls[i].diffId, compression,
    });
    expect(await r.resolveLayer(req(0, 'keep'))).toEqual(img.manifest.layers[0]);
    expect(e.store.content.has(ls[1].digest)).toBe(false);
    expect(await r.resolveLayer(req(1, 'keep'))).toEqual(img.manifest.layers[1]);
    expect(e.store.content.has(ls[1].digest)).toBe(true);

    const z = (await r.resolveLayer(req(0, 'zstd')))!;
    expect(z.mediaType).toBe(MediaType.OCI_LAYER_ZSTD);
    expect(e.store.variants.get(z.digest)).toMatchObject({ compression: 'zstd', diffId: ls[0].diffId });
    const n = (await r.resolveLayer(req(0, 'none')))!;
    expect(n).toMatchObject({ mediaType: MediaType.DOCKER_LAYER, digest: ls[0].diffId });
    // no diffID to go by, blob absent: cannot be produced
    expect(await r.resolveLayer({ ...req(1, 'zstd'), diffId: undefined })).toBeUndefined();
  });

  it('returns undefined when nothing can produce the layer', async () => {
    const ls = await layers(e, [3]);
    const img = e.b.image({ layers: ls });
    await put(e, img, 'gone:1', { skip: new Set([ls[0].digest]) });
    const r = layerResolver(e.store, { rebuild: null });
    expect(await r.resolveLayer({ image: 'gone', manifest: img.descriptor.digest, index: 0, layer: img.manifest.layers[0], diffId: ls[0].diffId, compression: 'keep' })).toBeUndefined();
  });

  it('saveImages --compression zstd with this resolver writes an archive with zstd layers, also for absent blobs', async () => {
    const { ls } = await setup();
    const out = path.join(e.dir, 'out.tar');
    const res = await saveImages(e.store, ['app:1'], { output: out, compression: 'zstd', format: 'oci', layerResolver: layerResolver(e.store) });
    expect(fs.statSync(out).size).toBeGreaterThan(0);
    const files = await readTar(out);
    const m = JSON.parse(files.get(`blobs/sha256/${res.images[0].digest.slice(7)}`)!.toString()) as Manifest;
    for (const l of m.layers) expect(files.has(`blobs/sha256/${l.digest.slice(7)}`)).toBe(true);
    expect(m.layers.map((l: Descriptor) => l.mediaType)).toEqual([MediaType.OCI_LAYER_ZSTD, MediaType.OCI_LAYER_ZSTD]);
    for (let i = 0; i < 2; i++) expect(e.store.variants.get(m.layers[i].digest)).toMatchObject({ diffId: ls[i].diffId, compression: 'zstd' });
  });
});
