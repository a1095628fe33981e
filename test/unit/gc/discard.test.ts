import { Store } from '../../../src/store';
import { rawTar } from '../../../src/builder/raw';
import { unpackImage, discardLayers } from '../../../src/snapshots/ops';
import { acquireProcessLease } from '../../../src/leases';
import { prune, markOthers } from '../../../src/gc';
import { MediaType } from '../../../src/images/mediatypes';
import { tmpDir, rmrf } from '../../helpers/cli';
import { putImage } from '../snapshots/helpers';

/**
 * `discardLayers` (load --discard-layers) asks the GC marker who else references each
 * layer blob: only blobs no other manifest and no other lease retains are deleted.
 */
describe('discardLayers and the reference graph', () => {
  let root: string;
  let store: Store;
  beforeEach(() => {
    root = tmpDir('imgtool-discard-');
    store = Store.open(root);
  });
  afterEach(() => {
    store.close();
    rmrf(root);
  });

  const base = rawTar([{ name: 'base', data: 'base layer\n'.repeat(100) }]);
  const shared = rawTar([{ name: 'shared', data: 'shared layer\n'.repeat(100) }]);

  it('keeps a blob another image references; discards the image\'s own', async () => {
    const a = await putImage(store, 'example.com/a:1', [base, shared]);
    const b = await putImage(store, 'example.com/b:1', [shared]);
    expect(b.digests[0]).toBe(a.digests[1]);
    await unpackImage(store, 'example.com/a:1');
    const out = await discardLayers(store, 'example.com/a:1');
    expect(out.map((o) => [o.digest, o.freed > 0])).toEqual([[a.digests[0], true], [a.digests[1], false]]);
    expect(out[1].kept).toMatch(/image example\.com\/b:1/);
    expect(store.content.has(a.digests[0])).toBe(false);
    expect(store.content.has(a.digests[1])).toBe(true);
  });

  it('keeps a blob another lease holds; the discarding operation\'s own lease does not count', async () => {
    const a = await putImage(store, 'example.com/a:1', [base, shared]);
    store.leases.create({ id: 'other' }).attach('content', a.digests[1]);
    const own = acquireProcessLease(store);
    try {
      for (const d of a.digests) own.attach('content', d);
      await unpackImage(store, 'example.com/a:1', { lease: own });
      const out = await discardLayers(store, 'example.com/a:1', { lease: own });
      expect(out.map((o) => o.freed > 0)).toEqual([true, false]);
      expect(out[1].kept).toMatch(/lease other/);
    } finally {
      own.release();
    }
    expect(store.content.has(a.digests[0])).toBe(false);
    expect(store.content.has(a.digests[1])).toBe(true);
  });

  it('the answer is brought up to date under the write lock: a name made after the mark counts', async () => {
    const a = await putImage(store, 'example.com/a:1', [base, shared]);
    const others = markOthers(store, a.manifest);
    expect(others.retainer(a.digests[1])).toBeUndefined();
    // Another process names an image whose manifest uses the same blob, after the mark.
    const second = Store.open(root);
    try {
      const man = await second.content.ingestBuffer(Buffer.from(JSON.stringify({
        schemaVersion: 2, mediaType: MediaType.OCI_MANIFEST,
        config: { mediaType: MediaType.OCI_CONFIG, digest: a.manifest, size: 1 },
        layers: [{ mediaType: MediaType.OCI_LAYER_GZIP, digest: a.digests[1], size: 1 }],
      })));
      second.images.put('example.com/late:1', { mediaType: MediaType.OCI_MANIFEST, digest: man.digest, size: man.size });
    } finally {
      second.close();
    }
    store.meta.write(() => {
      others.update();
      expect(others.retainer(a.digests[1])).toBe('image example.com/late:1');
      expect(others.retainer(a.digests[0])).toBeUndefined();
    });
  });

  it('another image with another blob of the same diffID: A\'s blob is discarded, B\'s stays; prune keeps both images whole', async () => {
    const a = await putImage(store, 'example.com/a:1', [base, shared]);
    const b = await putImage(store, 'example.com/b:1', [shared], { compression: 'zstd' });
    expect(b.diffIds[0]).toBe(a.diffIds[1]);
    expect(b.digests[0]).not.toBe(a.digests[1]);
    await unpackImage(store, 'example.com/a:1');
    const out = await discardLayers(store, 'example.com/a:1');
    expect(out.every((o) => o.freed > 0)).toBe(true);
    expect(store.content.has(b.digests[0])).toBe(true);
    for (const all of [false, true]) {
      prune(store, { all });
      expect(store.content.has(b.digests[0])).toBe(true);
      // A's layers are only rebuildable: their snapshots stay.
      expect(store.snapshots.forDiffId(a.diffIds[0])).toHaveLength(1);
      expect(store.snapshots.forDiffId(a.diffIds[1])).toHaveLength(1);
    }
    // Without A, B is whole from its own blob: --all may drop A's snapshots.
    store.images.delete('example.com/a:1');
    prune(store, { all: true });
    expect(store.snapshots.list()).toEqual([]);
    expect(store.content.has(b.digests[0])).toBe(true);
  });

  it('B = [S] unpacked and discarded, then A = [L0, S] content-only: rmi B + prune keeps B\'s snapshot for A', async () => {
    const b = await putImage(store, 'example.com/b:1', [shared]);
    await unpackImage(store, 'example.com/b:1');
    expect((await discardLayers(store, 'example.com/b:1'))[0].freed).toBeGreaterThan(0);
    const a = await putImage(store, 'example.com/a:1', [base, shared], { skipBlobs: [1] });
    expect(a.digests[1]).toBe(b.digests[0]);
    store.images.delete('example.com/b:1');
    for (const all of [false, true]) {
      const r = prune(store, { all });
      expect(r.snapshots).toEqual([]);
      expect(store.snapshots.forDiffId(b.diffIds[0])).toHaveLength(1);
    }
  });
});
