/**
 * `imgtool images` cost grows with the number of distinct images, not of names: names of one
 * image share one closure walk (300 names of one image used to walk it 300 times).
 */
import * as path from 'node:path';
import { Store } from '../../../src/store';
import { listImages } from '../../../src/images/ops';
import { addImage } from '../archive/export-fixtures';
import { rmrf, tmpDir } from '../../helpers/cli';

describe('listImages', () => {
  let dir: string;
  let store: Store;
  beforeAll(() => {
    dir = tmpDir('imgtool-list-');
    store = Store.open(path.join(dir, 's'));
  });
  afterAll(() => {
    store.close();
    rmrf(dir);
  });

  it('reads each image once however many names point at it, and reports every name', async () => {
    const a = await addImage(store, { layers: [{ a: 'a' }], label: 'a' });
    const b = await addImage(store, { layers: [{ b: 'b' }], label: 'b' });
    store.images.put('example.com/a:1', a.manifest);
    store.images.put('example.com/b:1', b.manifest);
    const reads = jest.spyOn(store.content, 'readJSON');
    const one = await listImages(store);
    const perListing = reads.mock.calls.length;
    expect(perListing).toBeGreaterThan(0);

    store.meta.write(() => {
      for (let i = 0; i < 100; i++) store.images.put(`example.com/a:${i + 2}`, a.manifest);
    });
    reads.mockClear();
    const many = await listImages(store);
    expect(reads.mock.calls.length).toBe(perListing);
    reads.mockRestore();

    expect(many).toHaveLength(102);
    expect(new Set(many.map((m) => m.name)).size).toBe(102);
    const a1 = one.find((x) => x.name === 'docker.io/library/a:1' || x.name === 'example.com/a:1')!;
    for (const m of many.filter((x) => x.digest === a.manifest.digest)) {
      expect({ ...m, name: a1.name, created: a1.created }).toEqual(a1);
      expect(m.created).toBe(new Date(store.images.get(m.name)!.createdAt).toISOString());
    }
  });

  it('a listing of distinct images queries the database a fixed number of times, not once per document', async () => {
    const imgs = [];
    for (let i = 0; i < 5; i++) imgs.push(await addImage(store, { layers: [{ 'f.txt': `list-cost ${i}` }] }));
    store.meta.write(() => imgs.forEach((m, i) => store.images.put(`example.com/distinct:${i}`, m.manifest)));
    const info = jest.spyOn(store.content, 'info');
    const rows = await listImages(store);
    expect(rows.filter((r) => r.name.startsWith('example.com/distinct:')).map((r) => r.unreadable)).toEqual([undefined, undefined, undefined, undefined, undefined]);
    expect(info).not.toHaveBeenCalled();
    info.mockRestore();
  });

  it('a listing still verifies each document against its digest and its recorded size', async () => {
    const img = await addImage(store, { layers: [{ 'g.txt': 'list-verify' }] });
    store.images.put('example.com/verify:1', img.manifest);
    const file = store.content.blobPath(img.manifest.digest);
    const fs = await import('node:fs');
    const good = fs.readFileSync(file);
    try {
      const bad = Buffer.from(good);
      bad[bad.length - 2] ^= 1; // same size, other bytes
      fs.writeFileSync(file, bad);
      expect((await listImages(store)).find((r) => r.name === 'example.com/verify:1')!.unreadable).toMatch(/digest mismatch/);
      fs.writeFileSync(file, Buffer.concat([good, Buffer.from(' ')])); // other size
      expect((await listImages(store)).find((r) => r.name === 'example.com/verify:1')!.unreadable).toMatch(/size|digest/);
    } finally {
      fs.writeFileSync(file, good);
    }
  });
});
