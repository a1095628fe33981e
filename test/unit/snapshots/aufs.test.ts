/**
 * Layers from the aufs era (issue 10 item 9): `.wh..wh.aufs`, `.wh..wh.orph/` and
 * `.wh..wh.plnk/` at the layer root are aufs bookkeeping. As in moby's and
 * containerd's layer apply, regular files under `.wh..wh.plnk/` are kept only as the
 * targets of hard links into it; none of these entries appears in the snapshot or an
 * exported root filesystem, and the layer still rebuilds byte for byte (tar-split).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Store } from '../../../src/store';
import { rawTar, RawEntry } from '../../../src/builder/raw';
import { unpackImage, rebuildLayer, verifyRebuild } from '../../../src/snapshots/ops';
import { exportRootfs } from '../../../src/snapshots/export';
import { TarParser } from '../../../src/tar';
import { tmpDir, rmrf } from '../../helpers/cli';
import { putImage, viewOf, listAll } from './helpers';

let root: string;
let out: string;
let store: Store;
let n = 0;

beforeEach(() => {
  root = tmpDir('imgtool-aufs-');
  out = tmpDir('imgtool-aufs-out-');
  store = Store.open(root);
});
afterEach(() => {
  store.close();
  rmrf(root);
  rmrf(out);
});

async function collect(r: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

async function tarNames(buf: Buffer): Promise<string[]> {
  const names: string[] = [];
  await pipeline(Readable.from([buf]), new TarParser({ raw: () => {}, entry: (h) => (names.push(h.name), { write: () => {}, end: () => {} }) }));
  return names;
}

const base: RawEntry[] = [
  { name: 'usr/', type: 'dir' },
  { name: 'usr/bin/', type: 'dir' },
  { name: 'usr/bin/lower', data: 'lower' },
];

/** An aufs-era layer: metadata at the root, a hard link into .wh..wh.plnk. */
const aufsLayer: RawEntry[] = [
  { name: '.wh..wh.aufs', data: '' },
  { name: '.wh..wh.orph/', type: 'dir' },
  { name: '.wh..wh.orph/leftover', data: 'orphan' },
  { name: '.wh..wh.plnk/', type: 'dir', mode: 0o700 },
  { name: '.wh..wh.plnk/123.45', data: 'linked content', mode: 0o755, uid: 7, gid: 8, mtime: 1234 },
  { name: '.wh..wh.plnk/999.1', data: 'never linked' },
  { name: 'usr/bin/x', type: 'hardlink', linkname: '.wh..wh.plnk/123.45' },
  { name: 'usr/bin/y', type: 'hardlink', linkname: '/.wh..wh.plnk/123.45' },
  { name: 'usr/bin/new', data: 'new' },
];

async function unpack(layers: RawEntry[][]) {
  const name = `example.com/aufs${n++}:1`;
  const tars = layers.map((l) => rawTar(l));
  const img = await putImage(store, name, tars);
  const r = await unpackImage(store, name);
  return { name, tars, img, r, view: await viewOf(store, r.chainId!) };
}

describe('aufs metadata at the layer root', () => {
  it('applies; hard links into .wh..wh.plnk get its file; no .wh..wh.* in the view; rebuild hashes to the diffID', async () => {
    const { tars, img, r, view } = await unpack([base, aufsLayer]);
    expect([...view.keys()].sort()).toEqual(['usr', 'usr/bin', 'usr/bin/lower', 'usr/bin/new', 'usr/bin/x', 'usr/bin/y']);
    const x = view.get('usr/bin/x')!;
    expect(x.content!.toString()).toBe('linked content');
    expect(x.meta).toMatchObject({ type: 'file', mode: 0o755, uid: 7, gid: 8, mtime: 1234, size: 14 });
    expect(view.get('usr/bin/y')!.content!.toString()).toBe('linked content');
    // nothing of aufs is stored in the snapshot's own files either
    const fsDir = store.snapshots.fsDir(r.layers[1].chainId);
    expect(listAll(fsDir).filter((p) => p.includes('.wh.'))).toEqual([]);
    expect(fs.statSync(path.join(fsDir, 'usr/bin/x')).ino).toBe(fs.statSync(path.join(fsDir, 'usr/bin/y')).ino);
    // exact rebuild
    expect(store.snapshots.get(r.layers[1].chainId)!.reproducible).toBe(true);
    expect((await collect(rebuildLayer(store, img.diffIds[1])!)).equals(tars[1])).toBe(true);
    await verifyRebuild(store, img.diffIds[1]);
  });

  it('export-rootfs (directory and tar) never shows .wh..wh.* entries', async () => {
    const { name } = await unpack([base, aufsLayer]);
    const d = path.join(out, 'root');
    await exportRootfs(store, name, { dir: d });
    expect(listAll(d)).toEqual(['usr', 'usr/bin', 'usr/bin/lower', 'usr/bin/new', 'usr/bin/x', 'usr/bin/y']);
    expect(fs.readFileSync(path.join(d, 'usr/bin/x'), 'utf8')).toBe('linked content');
    expect(fs.statSync(path.join(d, 'usr/bin/x')).ino).toBe(fs.statSync(path.join(d, 'usr/bin/y')).ino);
    const f = path.join(out, 'rootfs.tar');
    await exportRootfs(store, name, { output: f });
    const names = await tarNames(fs.readFileSync(f));
    expect(names.filter((p) => p.includes('.wh.'))).toEqual([]);
    expect(names).toContain('usr/bin/x');
  });

  it('export-rootfs applying the layers itself (not unpacked) gives the same tree', async () => {
    const name = `example.com/aufs${n++}:1`;
    await putImage(store, name, [rawTar(base), rawTar(aufsLayer)]);
    const d = path.join(out, 'root2');
    const r = await exportRootfs(store, name, { dir: d });
    expect(r.fromSnapshots).toBe(false);
    expect(listAll(d)).toEqual(['usr', 'usr/bin', 'usr/bin/lower', 'usr/bin/new', 'usr/bin/x', 'usr/bin/y']);
    expect(fs.readFileSync(path.join(d, 'usr/bin/y'), 'utf8')).toBe('linked content');
  });

  it('a link replaced later in the layer, then linked again: content kept, exact rebuild', async () => {
    const { tars, img, view } = await unpack([base, [
      { name: '.wh..wh.plnk/1.1', data: 'one' },
      { name: 'usr/bin/a', type: 'hardlink', linkname: '.wh..wh.plnk/1.1' },
      { name: 'usr/bin/a', data: 'a replaced' },
      { name: 'usr/bin/b', type: 'hardlink', linkname: '.wh..wh.plnk/1.1' },
      { name: 'usr/bin/c', type: 'hardlink', linkname: 'usr/bin/b' },
      { name: 'usr/bin/b', type: 'hardlink', linkname: '.wh..wh.plnk/1.1' },
    ]]);
    expect([...view.keys()].sort()).toEqual(['usr', 'usr/bin', 'usr/bin/a', 'usr/bin/b', 'usr/bin/c', 'usr/bin/lower']);
    expect(view.get('usr/bin/a')!.content!.toString()).toBe('a replaced');
    expect(view.get('usr/bin/b')!.content!.toString()).toBe('one');
    expect(view.get('usr/bin/c')!.content!.toString()).toBe('one');
    expect((await collect(rebuildLayer(store, img.diffIds[1])!)).equals(tars[1])).toBe(true);
  });

  it('the root opaque marker still works; .wh..wh.* below the root is still an invalid whiteout', async () => {
    const { view } = await unpack([base, [{ name: '.wh..wh..opq', data: '' }, { name: 'top', data: 't' }]]);
    expect([...view.keys()]).toEqual(['top']);
    const name = `example.com/aufs${n++}:1`;
    await putImage(store, name, [rawTar([{ name: 'usr/.wh..wh.plnk', data: '' }])]);
    await expect(unpackImage(store, name)).rejects.toThrow(/invalid whiteout "usr\/.wh..wh.plnk"/);
  });

  it('a hard link to a .wh..wh.plnk file the layer does not have is an error naming the entry', async () => {
    const name = `example.com/aufs${n++}:1`;
    await putImage(store, name, [rawTar([
      { name: 'usr/bin/x', type: 'hardlink', linkname: '.wh..wh.plnk/404.1' },
      { name: '.wh..wh.plnk/404.1', data: 'too late' },
    ])]);
    await expect(unpackImage(store, name)).rejects.toThrow(/entry "usr\/bin\/x": hard link target ".wh..wh.plnk\/404.1"/);
    expect(store.snapshots.list()).toEqual([]);
  });
});
