/**
 * walkImage validates every document it reads (src/images/schema.ts), so a hostile or old
 * malformed document in a store or archive is one clear error for that image; index
 * nesting is bounded by MAX_INDEX_NESTING.
 */
import { walkImage, BlobSource } from '../../../src/images/walk';
import { MAX_INDEX_NESTING, parseDocument } from '../../../src/images/schema';
import { MediaType } from '../../../src/images/mediatypes';
import type { Descriptor } from '../../../src/images/types';
import { sha256 } from '../../../src/digest';
import { InvalidArchiveError } from '../../../src/errors';

function memSource() {
  const blobs = new Map<string, Buffer>();
  const put = (mediaType: string, v: unknown): Descriptor => {
    const buf = Buffer.isBuffer(v) ? v : Buffer.from(JSON.stringify(v));
    const digest = sha256(buf);
    blobs.set(digest, buf);
    return { mediaType, digest, size: buf.length };
  };
  const src: BlobSource = {
    has: (d) => blobs.has(d.digest),
    readJSON: async <T>(d: Descriptor, what = d.digest) => parseDocument(blobs.get(d.digest)!, what) as T,
  };
  return { put, src };
}

function image(m: ReturnType<typeof memSource>, cfg: Record<string, unknown> = {}) {
  const layer = m.put(MediaType.OCI_LAYER, Buffer.from('layer'));
  const config = m.put(MediaType.OCI_CONFIG, { os: 'linux', architecture: 'amd64', rootfs: { type: 'layers', diff_ids: [layer.digest] }, ...cfg });
  const manifest = m.put(MediaType.OCI_MANIFEST, { schemaVersion: 2, config, layers: [layer] });
  return { layer, config, manifest };
}

async function refusal(p: Promise<unknown>): Promise<string> {
  const e = await p.then(() => undefined, (x) => x as Error);
  expect(e).toBeInstanceOf(InvalidArchiveError);
  return e!.message;
}

describe('walkImage on hostile documents', () => {
  it(`walks ${MAX_INDEX_NESTING} nested indexes and refuses ${MAX_INDEX_NESTING + 1}`, async () => {
    const m = memSource();
    const img = image(m);
    let d = img.manifest;
    const chain: Descriptor[] = [];
    for (let i = 0; i < MAX_INDEX_NESTING + 1; i++) {
      d = m.put(MediaType.OCI_INDEX, { schemaVersion: 2, manifests: [d] });
      chain.push(d);
    }
    const w = await walkImage(m.src, chain[MAX_INDEX_NESTING - 1]);
    expect(w.indexes).toHaveLength(MAX_INDEX_NESTING);
    expect(w.manifests).toHaveLength(1);
    const msg = await refusal(walkImage(m.src, chain[MAX_INDEX_NESTING]));
    expect(msg).toBe(`index ${chain[0].digest}: indexes nested more than ${MAX_INDEX_NESTING} deep (the limit)`);
  });

  it('config architecture = {} is an error naming the config and field (it used to be "toLowerCase is not a function")', async () => {
    const m = memSource();
    const img = image(m, { architecture: {} });
    expect(await refusal(walkImage(m.src, img.manifest))).toBe(`config ${img.config.digest}: field architecture: must be a string, got object`);
  });

  it('an attestation config without rootfs is fine; an image config without it is not', async () => {
    const m = memSource();
    const img = image(m);
    const attCfg = m.put(MediaType.OCI_CONFIG, { architecture: 'unknown', os: 'unknown' });
    const attLayer = m.put(MediaType.IN_TOTO, Buffer.from('{}'));
    const att = m.put(MediaType.OCI_MANIFEST, { schemaVersion: 2, config: attCfg, layers: [attLayer] });
    const index = m.put(MediaType.OCI_INDEX, {
      schemaVersion: 2,
      manifests: [
        { ...img.manifest, platform: { os: 'linux', architecture: 'amd64' } },
        { ...att, platform: { os: 'unknown', architecture: 'unknown' }, annotations: { 'vnd.docker.reference.type': 'attestation-manifest', 'vnd.docker.reference.digest': img.manifest.digest } },
      ],
    });
    const w = await walkImage(m.src, index);
    expect(w.manifests.map((x) => x.attestation)).toEqual([false, true]);
    const bad = image(m, { rootfs: undefined });
    expect(await refusal(walkImage(m.src, bad.manifest))).toBe(`config ${bad.config.digest}: field rootfs: is missing`);
  });

  it('a manifest layer that is not an object names the manifest and the layer index', async () => {
    const m = memSource();
    const img = image(m);
    const man = m.put(MediaType.OCI_MANIFEST, { schemaVersion: 2, config: img.config, layers: [img.layer, 'x'] });
    expect(await refusal(walkImage(m.src, man))).toBe(`manifest ${man.digest}: field layers[1]: must be an object, got string "x"`);
  });
});
