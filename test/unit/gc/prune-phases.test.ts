import * as fs from 'node:fs';
import { Store, sha256, MediaType } from '../../../src';
import { prune } from '../../../src/gc';
import { tmpDir, rmrf } from '../../helpers/cli';
import { layer, makeImage, addSnapshots, snapshotIds } from './fixture';

/**
 * Issue 10 item 13: prune marks from a read snapshot, without the write lock, then
 * re-validates and sweeps under it. The hooks run where another process could act.
 */
describe('prune: mark off the write lock, re-validate under it', () => {
  let dir: string;
  let store: Store;
  let other: Store;
  beforeEach(() => {
    dir = tmpDir();
    store = Store.open(dir);
    // Another process: its own connection, and it does not wait long for the lock.
    other = Store.open(dir);
    other.meta.db.pragma('busy_timeout = 200');
  });
  afterEach(() => {
    other.close();
    store.close();
    rmrf(dir);
  });

  /** Commit a blob synchronously from `s` (rename + row in one write transaction, as ContentWriter does). */
  function commitSync(s: Store, buf: Buffer): string {
    const d = sha256(buf);
    s.meta.write(() => {
      fs.writeFileSync(s.content.blobPath(d), buf);
      s.content.registerLocked(d, buf.length);
    });
    return d;
  }

  /** A manifest (and config) referencing `layerDigests`, committed and named from `s`. */
  function nameNewImage(s: Store, name: string, layers: Array<{ digest: string; size: number }>): string[] {
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, name }));
    const cfg = commitSync(s, config);
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: MediaType.OCI_MANIFEST,
      config: { mediaType: MediaType.OCI_CONFIG, digest: cfg, size: config.length },
      layers: layers.map((l) => ({ mediaType: MediaType.OCI_LAYER_GZIP, digest: l.digest, size: l.size })),
    }));
    const man = commitSync(s, manifest);
    s.images.put(name, { mediaType: MediaType.OCI_MANIFEST, digest: man, size: manifest.length });
    return [cfg, man];
  }

  it('a blob committed and named between mark and sweep survives, and so does what it references', async () => {
    await makeImage(store, 'x/kept:1', [layer('ph-k')]);
    const orphan = layer('ph-orphan');
    const unref = await store.content.ingestBuffer(orphan.gz); // unreferenced at the mark
    const junk = await store.content.ingestBuffer(Buffer.from('junk at the mark'));
    const held = await store.content.ingestBuffer(Buffer.from('held by a lease created after the mark'));
    let fresh = '';
    let named: string[] = [];
    const res = prune(store, {
      hooks: {
        beforeSweep: () => {
          named = nameNewImage(other, 'x/new:1', [{ digest: unref.digest, size: unref.size }]);
          fresh = commitSync(other, Buffer.from('a new blob nobody names yet'));
          other.leases.create({ id: 'late' }).attach('content', held.digest);
        },
      },
    });
    expect(res.blobs.map((b) => b.digest)).toEqual([junk.digest]);
    for (const d of [unref.digest, fresh, held.digest, ...named]) {
      expect(store.content.has(d)).toBe(true);
      expect(fs.existsSync(store.content.blobPath(d))).toBe(true);
    }
    // The next prune judges the new blob like any other.
    expect(prune(store).blobs.map((b) => b.digest)).toEqual([fresh]);
  });

  it('other connections write (and read) while the mark runs; what they commit meanwhile is kept', async () => {
    await makeImage(store, 'x/kept:1', [layer('ph-m')]);
    const cand = await store.content.ingestBuffer(Buffer.from('a candidate at the mark'));
    let inFlight = '';
    let seenByReader = -1;
    prune(store, {
      hooks: {
        duringMark: () => {
          // Would fail with SQLITE_BUSY if the mark held the write lock.
          other.leases.create({ id: 'during' }).attach('content', cand.digest);
          // A commit whose file the survey lists but whose row its snapshot does not see.
          inFlight = commitSync(other, Buffer.from('committed during the mark'));
          seenByReader = other.images.list().length;
        },
      },
    });
    expect(seenByReader).toBe(1);
    expect(store.content.has(cand.digest)).toBe(true);
    expect(store.content.has(inFlight)).toBe(true);
    expect(fs.existsSync(store.content.blobPath(inFlight))).toBe(true);
  });

  it('--all: a snapshot committed meanwhile keeps its parent', async () => {
    const p = layer('ph-p');
    const c = layer('ph-c');
    await makeImage(store, 'x/a:1', [p]);
    const chains = addSnapshots(store, [p]);
    let child: string[] = [];
    const res = prune(store, { all: true, hooks: { beforeSweep: () => { child = addSnapshots(other, [p, c]); } } });
    expect(res.snapshots).toEqual([]);
    expect(snapshotIds(store).sort()).toEqual([chains[0], child[1]].sort());
    expect(child[0]).toBe(chains[0]);
  });

  it('--all: a blob removed meanwhile makes its snapshot the one to keep', async () => {
    const p = layer('ph-p2');
    const s = layer('ph-s2');
    await makeImage(store, 'x/a:1', [p, s]);
    const chains = addSnapshots(store, [p, s]);
    const res = prune(store, { all: true, hooks: { beforeSweep: () => other.meta.write(() => other.content.deleteLocked(s.digest)) } });
    expect(res.snapshots).toEqual([]);
    expect(snapshotIds(store).sort()).toEqual([...chains].sort());
    // With the blob gone for good, the next --all prune still keeps it.
    expect(prune(store, { all: true }).snapshots).toEqual([]);
  });
});
