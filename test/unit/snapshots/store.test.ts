import * as fs from 'node:fs';
import * as path from 'node:path';
import { Store } from '../../../src/store';
import { rawTar } from '../../../src/builder/raw';
import { unpackImage } from '../../../src/snapshots/ops';
import { listSnapshots } from '../../../src/snapshots/ops';
import { tmpDir, rmrf } from '../../helpers/cli';
import { putImage, viewOf } from './helpers';

let root: string;
let store: Store;
beforeEach(() => {
  root = tmpDir('imgtool-sstore-');
  store = Store.open(root);
});
afterEach(() => {
  store.close();
  rmrf(root);
});

const tars = () => [rawTar([{ name: 'a', data: 'a'.repeat(3000) }]), rawTar([{ name: 'b', data: 'b'.repeat(3000) }])];

describe('snapshot store', () => {
  it('a layer that fails half-way commits nothing and leaves no work dir; earlier layers stay', async () => {
    const t = tars();
    const img = await putImage(store, 'example.com/x:1', t, { compression: 'none' });
    // Replace the second blob by a truncated one under the same digest.
    const p = store.content.blobPath(img.digests[1]);
    fs.chmodSync(p, 0o644);
    fs.writeFileSync(p, t[1].subarray(0, 1000));
    await expect(unpackImage(store, 'example.com/x:1')).rejects.toThrow();
    const s = store.snapshots.list();
    expect(s.map((x) => x.chainId)).toEqual([img.diffIds[0]]);
    expect(fs.readdirSync(store.snapshots.tmpDir)).toEqual([]);
  });

  it('a directory left without a row (crash between rename and commit) is replaced', async () => {
    const img = await putImage(store, 'example.com/x:1', tars());
    const stale = store.snapshots.path(img.diffIds[0]);
    fs.mkdirSync(path.join(stale, 'fs'), { recursive: true });
    fs.writeFileSync(path.join(stale, 'fs', 'junk'), 'half-applied');
    const r = await unpackImage(store, 'example.com/x:1');
    const v = await viewOf(store, r.chainId!);
    expect([...v.keys()].sort()).toEqual(['a', 'b']);
    expect(fs.existsSync(path.join(stale, 'fs', 'junk'))).toBe(false);
  });

  it('two stores unpacking the same image at once end with one snapshot per chainID', async () => {
    await putImage(store, 'example.com/x:1', tars());
    const other = Store.open(root);
    try {
      const [r1, r2] = await Promise.all([unpackImage(store, 'example.com/x:1'), unpackImage(other, 'example.com/x:1')]);
      expect(r1.chainId).toBe(r2.chainId);
      expect(store.snapshots.list()).toHaveLength(2);
      expect(fs.readdirSync(store.snapshots.tmpDir)).toEqual([]);
      expect([...(await viewOf(store, r1.chainId!)).keys()].sort()).toEqual(['a', 'b']);
    } finally {
      other.close();
    }
  });

  it('deleteLocked removes row and directory; listSnapshots names the images', async () => {
    const img = await putImage(store, 'example.com/x:1', tars());
    const r = await unpackImage(store, 'example.com/x:1');
    const list = await listSnapshots(store);
    expect(list.map((s) => s.images)).toEqual([['example.com/x:1'], ['example.com/x:1']]);
    expect(list.every((s) => s.size > 0)).toBe(true);
    store.meta.write(() => store.snapshots.deleteLocked(r.chainId!));
    expect(store.snapshots.has(r.chainId!)).toBe(false);
    expect(fs.existsSync(store.snapshots.path(r.chainId!))).toBe(false);
    expect(store.snapshots.has(img.diffIds[0])).toBe(true);
    expect(store.snapshots.chain(img.diffIds[0]).map((s) => s.chainId)).toEqual([img.diffIds[0]]);
  });

  it('--lease: snapshots are attached to a real lease', async () => {
    await putImage(store, 'example.com/x:1', tars());
    const lease = store.leases.create({ id: 'keep-me' });
    const r = await unpackImage(store, 'example.com/x:1', { lease: store.leases.open('keep-me') });
    expect(store.leases.resources(lease.id).filter((x) => x.kind === 'snapshot').map((x) => x.ref).sort()).toEqual(r.layers.map((l) => l.chainId).sort());
  });
});
