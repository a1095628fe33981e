/**
 * Every exporter produces layers the same way (issue 12, issue 10 item 10): an image whose
 * layer blobs were discarded is saved AND preloaded (rebuilt from its snapshot); a layer that
 * exists only as a snapshot in another image's chain is rebuilt from that chain; an absent
 * foreign layer fails the export unless --skip-non-distributable.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Env, env, layers, put } from '../compression/fixture';
import { saveImages } from '../../../src/archive/export';
import { verifyArchive } from '../../../src/archive/verify';
import { kindPreload } from '../../../src/kind/preload';
import { unpackImage, discardLayers } from '../../../src/snapshots/ops';
import { MediaType } from '../../../src/images/mediatypes';
import { sha256 } from '../../../src/digest';

describe('exporters share one layer producer', () => {
  let e: Env;
  beforeEach(() => { e = env(); });
  afterEach(() => e.cleanup());

  it('kind preload and save of an image loaded with --discard-layers rebuild the layers', async () => {
    const ls = await layers(e, [1, 2]);
    const img = await e.b.image({ layers: ls });
    await put(e, img, 'x.io/disc:1', { record: false });
    await unpackImage(e.store, 'x.io/disc:1');
    const gone = await discardLayers(e.store, 'x.io/disc:1');
    expect(gone.every((g) => g.freed > 0 && !e.store.content.has(g.digest))).toBe(true);

    const file = path.join(e.dir, 'preload.tar');
    const r = await kindPreload(e.store, ['x.io/disc:1'], { output: file });
    expect(r.archives).toHaveLength(1);
    const v = await verifyArchive(file, { strict: true, diffIds: true });
    expect(v.problems).toEqual([]);
    // The rebuilt blobs are the originals (imgtool made them with the same codec).
    for (const l of ls) expect(e.store.content.has(l.digest)).toBe(true);

    const out = path.join(e.dir, 'save.tar');
    const s = await saveImages(e.store, ['x.io/disc:1'], { output: out });
    expect(s.changes).toEqual([]);
  });

  it('save rebuilds a layer that exists only as a snapshot in ANOTHER image\'s chain (same diffID)', async () => {
    const [base, shared] = await layers(e, [3, 4]);
    const b = await e.b.image({ layers: [base, shared] });
    await put(e, b, 'x.io/b:1');
    await unpackImage(e.store, 'x.io/b:1');
    // A = [shared] alone: its chainID differs from `shared`'s chain in B.
    const a = await e.b.image({ layers: [shared] });
    await put(e, a, 'x.io/a:1', { record: false, skip: new Set([shared.digest]) });
    // Remove every blob of the shared layer: only B's snapshot chain can give it back.
    e.store.meta.write(() => {
      e.store.content.forgetLocked(shared.digest);
      e.store.variants.deleteLocked(shared.digest);
    });
    e.store.content.removeFileIfUnrecorded(shared.digest);
    expect(e.store.snapshots.forDiffId(shared.diffId).length).toBe(1);
    expect(e.store.snapshots.has(shared.diffId)).toBe(false); // A's own chainID is not unpacked

    const out = path.join(e.dir, 'a.tar');
    const r = await saveImages(e.store, ['x.io/a:1'], { output: out });
    expect(r.changes).toEqual([]); // rebuilt byte-identical
    const v = await verifyArchive(out, { strict: true, diffIds: true });
    expect(v.problems).toEqual([]);
  });

  it('an absent non-distributable layer fails the export naming it, unless skipNonDistributable', async () => {
    const [l] = await layers(e, [5]);
    const img = await e.b.image({ layers: [l] });
    // Rewrite the manifest so its layer is a foreign (non-distributable) layer with URLs, absent.
    const m = JSON.parse(JSON.stringify(img.kind === 'image' ? img.manifest : {}));
    m.layers[0] = { ...m.layers[0], mediaType: MediaType.OCI_LAYER_ND_GZIP, urls: ['https://example.com/blob'] };
    const mb = Buffer.from(JSON.stringify(m));
    await e.store.content.ingestBuffer(fs.readFileSync(e.b.blobs.path(m.config.digest)));
    await e.store.content.ingestBuffer(mb);
    e.store.images.put('x.io/nd:1', { mediaType: MediaType.OCI_MANIFEST, digest: sha256(mb), size: mb.length });

    const out = path.join(e.dir, 'nd.tar');
    await expect(saveImages(e.store, ['x.io/nd:1'], { output: out })).rejects.toThrow(new RegExp(`layer .*${l.digest}`));
    expect(fs.existsSync(out)).toBe(false);
    const r = await saveImages(e.store, ['x.io/nd:1'], { output: out, skipNonDistributable: true });
    expect(r.warnings.join('\n')).toMatch(/non-distributable layer .* left out/);
    expect(r.omitted).toEqual([l.digest]);
    await expect(kindPreload(e.store, ['x.io/nd:1'], { output: path.join(e.dir, 'p.tar') })).rejects.toThrow(new RegExp(l.digest));
  });
});
