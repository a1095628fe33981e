import * as fs from 'node:fs';
import * as path from 'node:path';
import { Store } from '../../../src/store';
import { rawTar, RawEntry } from '../../../src/builder/raw';
import { unpackImage, rebuildLayer } from '../../../src/snapshots/ops';
import { exportRootfs } from '../../../src/snapshots/export';
import { ImgtoolError } from '../../../src/errors';
import { tmpDir, rmrf } from '../../helpers/cli';
import { putImage, viewOf, listAll, sha, patchHeader, base256 } from './helpers';

const dir = (name: string, extra: Partial<RawEntry> = {}): RawEntry => ({ name, type: 'dir', mode: 0o755, ...extra });
const file = (name: string, data: string, extra: Partial<RawEntry> = {}): RawEntry => ({ name, data, mode: 0o644, ...extra });
const sym = (name: string, linkname: string): RawEntry => ({ name, type: 'symlink', linkname });
const hard = (name: string, linkname: string): RawEntry => ({ name, type: 'hardlink', linkname });

let root: string;
let outside: string;
let store: Store;
let n = 0;

beforeEach(() => {
  root = tmpDir('imgtool-snap-');
  outside = tmpDir('imgtool-outside-');
  store = Store.open(root);
});
afterEach(() => {
  store.close();
  rmrf(root);
  rmrf(outside);
});

async function unpack(layers: RawEntry[][]) {
  const name = `example.com/t${n++}:latest`;
  const img = await putImage(store, name, layers.map((l) => rawTar(l)));
  const r = await unpackImage(store, name);
  return { img, r, view: await viewOf(store, r.chainId!) };
}

async function expectUnpackFails(layers: RawEntry[][], re: RegExp) {
  const name = `example.com/t${n++}:latest`;
  const img = await putImage(store, name, layers.map((l) => rawTar(l)));
  await expect(unpackImage(store, name)).rejects.toThrow(re);
  return img;
}

/** Path of `outside` as seen from the image root. */
const rel = () => outside.replace(/^\/+/, '');

describe('whiteouts and opaque directories', () => {
  it('.wh.NAME removes a lower file or a whole lower directory; whiteouts never materialise', async () => {
    const { view } = await unpack([
      [dir('a/'), file('a/x', 'x'), file('a/y', 'y'), dir('d/'), file('d/1', '1'), dir('d/sub/'), file('d/sub/2', '2')],
      [file('a/.wh.x', ''), file('.wh.d', '')],
    ]);
    expect([...view.keys()].sort()).toEqual(['a', 'a/y']);
  });

  it('whiteouts hide lower entries only: same-layer entries stay whatever the order', async () => {
    const { view } = await unpack([
      [file('f', 'lower'), dir('d/'), file('d/lower', 'l')],
      [file('f', 'upper'), file('.wh.f', ''), file('d/new', 'n'), file('.wh.d', '')],
    ]);
    expect(view.get('f')!.content!.toString()).toBe('upper');
    expect([...view.keys()].sort()).toEqual(['d', 'd/new', 'f']);
  });

  it('opaque dir hides all lower children, keeps same-layer ones (before and after the marker)', async () => {
    const { view } = await unpack([
      [dir('o/'), file('o/a', 'a'), dir('o/s/'), file('o/s/b', 'b'), file('keep', 'k')],
      [dir('o/'), file('o/before', '1'), file('o/s/c', 'c'), file('o/.wh..wh..opq', ''), file('o/after', '2')],
      [file('o/third', '3')],
    ]);
    expect([...view.keys()].sort()).toEqual(['keep', 'o', 'o/after', 'o/before', 'o/s', 'o/s/c', 'o/third']);
  });

  it('an entry of another type replaces the lower path entirely', async () => {
    const { view } = await unpack([
      [dir('d/'), file('d/x', 'x'), dir('d/s/'), file('d/s/y', 'y'), file('f', 'f')],
      [file('d', 'now a file'), dir('f/'), file('f/inside', 'i')],
      [dir('d2/')],
    ]);
    expect([...view.keys()].sort()).toEqual(['d', 'd2', 'f', 'f/inside']);
    expect(view.get('d')!.meta.type).toBe('file');
  });

  it('file then dir at the same path in one layer: the lower children stay hidden', async () => {
    const { view } = await unpack([
      [dir('d/'), file('d/x', 'x')],
      [file('d', 'f'), dir('d/'), file('d/y', 'y')],
    ]);
    expect([...view.keys()].sort()).toEqual(['d', 'd/y']);
  });

  it('dir over dir keeps lower children and takes the new metadata', async () => {
    const { view } = await unpack([
      [dir('d/', { mode: 0o700 }), file('d/x', 'x')],
      [dir('d/', { mode: 0o751, uid: 7 })],
    ]);
    expect(view.get('d')!.meta.mode).toBe(0o751);
    expect(view.get('d')!.meta.uid).toBe(7);
    expect(view.has('d/x')).toBe(true);
  });

  it('rejects an invalid whiteout name', async () => {
    await expectUnpackFails([[file('.wh.', '')]], /invalid whiteout/);
  });
});

describe('hard links', () => {
  it('within a layer and to lower layers; shares data; survives the target being replaced', async () => {
    const { view, r } = await unpack([
      [file('a', 'AAA', { mode: 0o755 })],
      [hard('b', 'a'), file('c', 'CCC'), hard('d', 'c'), hard('e', '/a')],
      [file('a', 'new'), file('c', 'new c')],
    ]);
    expect(view.get('b')!.content!.toString()).toBe('AAA');
    expect(view.get('b')!.meta.mode).toBe(0o755);
    expect(view.get('d')!.content!.toString()).toBe('CCC');
    expect(view.get('e')!.content!.toString()).toBe('AAA');
    expect(view.get('a')!.content!.toString()).toBe('new');
    expect(r.layers.every((l) => l.applied)).toBe(true);
  });

  it('a hard link to a missing target is an error and commits nothing', async () => {
    await expectUnpackFails([[hard('b', 'nope')]], /not in the image/);
    expect(store.snapshots.list()).toEqual([]);
    expect(fs.readdirSync(store.snapshots.tmpDir)).toEqual([]);
  });

  it('a hard link to a directory is an error', async () => {
    await expectUnpackFails([[dir('d/'), hard('b', 'd')]], /is a directory/);
  });
});

describe('never writes outside the image root', () => {
  const assertNothingOutside = () => {
    expect(listAll(outside)).toEqual(['secret']);
    expect(fs.readFileSync(path.join(outside, 'secret'), 'utf8')).toBe('host secret');
    expect(fs.statSync(path.join(outside, 'secret')).nlink).toBe(1);
  };
  beforeEach(() => fs.writeFileSync(path.join(outside, 'secret'), 'host secret'));

  it('../../ cannot climb above the root', async () => {
    const { view } = await unpack([[file('../../../../../../../../' + rel() + '/pwned', 'x'), file('a/../../../etc/x', 'e')]]);
    assertNothingOutside();
    expect(view.get(rel() + '/pwned')!.content!.toString()).toBe('x');
    expect(view.get('etc/x')!.content!.toString()).toBe('e');
  });

  it('absolute paths are relative to the root', async () => {
    const { view } = await unpack([[file(outside + '/pwned', 'x')]]);
    assertNothingOutside();
    expect(view.has(rel() + '/pwned')).toBe(true);
  });

  it('a symlink to / is followed as if the root were /', async () => {
    const { view } = await unpack([[sym('l', '/'), file('l' + outside + '/pwned', 'x')], [file('l' + outside + '/again', 'y')]]);
    assertNothingOutside();
    expect(view.get(rel() + '/pwned')!.content!.toString()).toBe('x');
    expect(view.get(rel() + '/again')!.content!.toString()).toBe('y');
    expect(view.get('l')!.meta.linkname).toBe('/');
  });

  it('a chain of symlinks climbing out stays inside', async () => {
    const { view } = await unpack([
      [sym('a', '../../../../../../..'), sym('b', 'a' + outside), sym('c', 'b/../' + path.basename(outside))],
      [file('b/pwned', 'x'), file('c/pwned2', 'y')],
    ]);
    assertNothingOutside();
    expect(view.get(rel() + '/pwned')!.content!.toString()).toBe('x');
    expect(view.get(rel() + '/pwned2')!.content!.toString()).toBe('y');
  });

  it('symlink loops are an error', async () => {
    await expectUnpackFails([[sym('x', 'y'), sym('y', 'x'), file('x/f', '1')]], /too many levels of symbolic links/);
  });

  it('a hard link to ../outside is an error (the target is not in the image)', async () => {
    await expectUnpackFails([[hard('h', '../../../../../../..' + outside + '/secret')]], /not in the image/);
    assertNothingOutside();
    expect(store.snapshots.list()).toEqual([]);
  });

  it('a hard link to an absolute path is an error when the image has no such file', async () => {
    await expectUnpackFails([[hard('h', outside + '/secret')]], /not in the image/);
    assertNothingOutside();
  });

  it('a hard link to an absolute path resolves inside the image', async () => {
    const { view } = await unpack([[file(rel() + '/secret', 'image secret')], [hard('h', outside + '/secret')]]);
    assertNothingOutside();
    expect(view.get('h')!.content!.toString()).toBe('image secret');
  });

  it('a hard link through a symlink to / stays inside', async () => {
    const { view } = await unpack([[sym('l', '/'), file(rel() + '/secret', 'image')], [hard('h', 'l' + outside + '/secret')]]);
    assertNothingOutside();
    expect(view.get('h')!.content!.toString()).toBe('image');
  });

  it('a file over a symlink replaces the symlink, never writes through it', async () => {
    const { view } = await unpack([[sym('s', outside + '/secret'), sym('t', '../../../../../../..' + outside + '/secret')], [file('s', 'over'), file('t', 'over2')]]);
    assertNothingOutside();
    expect(view.get('s')!.meta.type).toBe('file');
    expect(view.get('s')!.content!.toString()).toBe('over');
    expect(view.get('t')!.content!.toString()).toBe('over2');
  });

  it('a symlink replaced by a directory: later entries land in the directory', async () => {
    const { view } = await unpack([[sym('d', outside)], [dir('d/'), file('d/pwned', 'x')], [sym('e', outside), dir('e/'), file('e/pwned', 'y')]]);
    assertNothingOutside();
    expect(view.get('d')!.meta.type).toBe('dir');
    expect(view.get('d/pwned')!.content!.toString()).toBe('x');
    expect(view.get('e/pwned')!.content!.toString()).toBe('y');
    expect(view.has(rel() + '/pwned')).toBe(false);
  });

  it('a whiteout through a symlinked parent removes inside the image only', async () => {
    const { view } = await unpack([[sym('l', outside), file(rel() + '/secret', 'img')], [file('l/.wh.secret', '')]]);
    assertNothingOutside();
    expect(view.has(rel() + '/secret')).toBe(false);
  });

  it('legit: var/run -> /run in a lower layer, var/run/x lands in /run/x', async () => {
    const { view } = await unpack([
      [dir('run/'), dir('var/'), sym('var/run', '/run')],
      [file('var/run/x', 'pid'), dir('var/run/sub/'), file('var/run/sub/y', 'y')],
    ]);
    expect(view.get('run/x')!.content!.toString()).toBe('pid');
    expect(view.get('run/sub/y')!.content!.toString()).toBe('y');
    expect(view.get('var/run')!.meta.type).toBe('symlink');
    expect(view.has('var/run/x')).toBe(false);
  });

  it('an entry under a regular file is an error', async () => {
    await expectUnpackFails([[file('f', 'x'), file('f/g', 'y')]], /not a directory/);
  });
});

describe('unpack', () => {
  it('fails on a diffID mismatch and commits nothing', async () => {
    const tar = rawTar([file('a', 'x')]);
    const img = await putImage(store, 'example.com/bad:1', [tar]);
    // Rewrite the config to claim another diffID.
    const m = JSON.parse((await store.content.readBuffer(img.manifest)).toString());
    const cfg = Buffer.from(JSON.stringify({ architecture: process.arch === 'x64' ? 'amd64' : process.arch, os: 'linux', rootfs: { type: 'layers', diff_ids: [sha('other')] } }));
    await store.content.ingestBuffer(cfg);
    m.config = { ...m.config, digest: sha(cfg), size: cfg.length };
    const mb = Buffer.from(JSON.stringify(m));
    await store.content.ingestBuffer(mb);
    store.images.put('example.com/bad:1', { mediaType: m.mediaType, digest: sha(mb), size: mb.length });
    await expect(unpackImage(store, 'example.com/bad:1')).rejects.toThrow(/diffID.*digest mismatch/);
    expect(store.snapshots.list()).toEqual([]);
    expect(fs.readdirSync(store.snapshots.tmpDir)).toEqual([]);
  });

  it('chainIDs and parents; an existing snapshot is not re-applied but the blobs are recorded', async () => {
    const tars = [rawTar([file('a', 'a')]), rawTar([file('b', 'b')])];
    const a = await putImage(store, 'example.com/a:1', tars, { compression: 'gzip', level: 1 });
    const ra = await unpackImage(store, 'example.com/a:1');
    expect(ra.layers.map((l) => l.applied)).toEqual([true, true]);
    const b = await putImage(store, 'example.com/b:1', tars, { compression: 'zstd' });
    expect(b.digests).not.toEqual(a.digests);
    const rb = await unpackImage(store, 'example.com/b:1');
    expect(rb.layers.map((l) => l.applied)).toEqual([false, false]);
    expect(rb.chainId).toBe(ra.chainId);
    const s1 = store.snapshots.get(ra.layers[1].chainId)!;
    expect(s1.parent).toBe(ra.layers[0].chainId);
    expect(s1.diffId).toBe(a.diffIds[1]);
    for (let i = 0; i < 2; i++) {
      expect(store.variants.forDiffId(a.diffIds[i]).map((v) => v.digest).sort()).toEqual([a.digests[i], b.digests[i]].sort());
      const rows = store.meta.db.prepare('SELECT digest FROM snapshot_content WHERE chain_id = ? ORDER BY digest').all(ra.layers[i].chainId) as Array<{ digest: string }>;
      expect(rows.map((r) => r.digest)).toEqual([a.digests[i], b.digests[i]].sort());
    }
  });

  it('applies from another variant or a snapshot rebuild when the blob is absent', async () => {
    const tars = [rawTar([file('a', 'a')]), rawTar([file('b', 'b')])];
    await putImage(store, 'example.com/a:1', tars);
    await unpackImage(store, 'example.com/a:1');
    // Same second layer on another base: its chainID differs, its blob is absent.
    const c = await putImage(store, 'example.com/c:1', [rawTar([file('z', 'z')]), tars[1]], { skipBlobs: [1], compression: 'zstd' });
    const r = await unpackImage(store, 'example.com/c:1');
    expect(r.layers[1].applied).toBe(true);
    expect(r.layers[1].source!.kind).toBe('variant');
    const v = await viewOf(store, r.chainId!);
    expect([...v.keys()].sort()).toEqual(['b', 'z']);
    expect(c.diffIds[1]).toBe(sha(tars[1]));
  });

  it('attaches snapshots to the lease', async () => {
    await putImage(store, 'example.com/a:1', [rawTar([file('a', 'a')]), rawTar([file('b', 'b')])]);
    const attached: string[] = [];
    const r = await unpackImage(store, 'example.com/a:1', { lease: { attach: (k, ref) => attached.push(`${k}:${ref}`) } });
    // Each blob is attached before it is read, each snapshot when committed.
    expect(attached).toEqual(r.layers.flatMap((l) => [`content:${l.digest}`, `snapshot:${l.chainId}`]));
    const again: string[] = [];
    await unpackImage(store, 'example.com/a:1', { lease: { attach: (k, ref) => again.push(`${k}:${ref}`) } });
    // Nothing is read the second time (snapshots exist, blobs proven): only the snapshots are held.
    expect(again).toEqual(r.layers.map((l) => `snapshot:${l.chainId}`));
  });

  it('keeps ownership, modes, mtimes, xattrs, devices as metadata', async () => {
    const { view } = await unpack([[
      file('f', 'x', { uid: 1000, gid: 1001, uname: 'u', gname: 'g', mode: 0o4755, mtime: 1234567890, pax: { 'SCHILY.xattr.security.capability': Buffer.from([1, 0, 0, 2, 0x20, 0, 0, 0]), 'SCHILY.xattr.user.k': 'v' } }),
      { name: 'dev/null', type: 'char', devmajor: 1, devminor: 3, mode: 0o666 },
      { name: 'fifo', type: 'fifo', mode: 0o600 },
    ]]);
    const f = view.get('f')!.meta;
    expect(f).toMatchObject({ uid: 1000, gid: 1001, uname: 'u', gname: 'g', mode: 0o4755, mtime: 1234567890 });
    expect(Buffer.from(f.xattrs!['security.capability'], 'base64')).toEqual(Buffer.from([1, 0, 0, 2, 0x20, 0, 0, 0]));
    expect(view.get('dev/null')!.meta).toMatchObject({ type: 'char', devmajor: 1, devminor: 3 });
    expect(view.get('dev')!.meta.implicit).toBe(true);
    expect(view.get('fifo')!.meta.type).toBe('fifo');
    expect(rebuildLayer(store, sha('nothing'))).toBeUndefined();
  });
});

describe('hostile numbers inside a layer', () => {
  it('a negative PAX size fails the unpack promptly, naming the entry; nothing is committed', async () => {
    const t0 = Date.now();
    const img = await expectUnpackFails([[file('a', 'x'.repeat(100)), file('victim', 'y'.repeat(700), { pax: { size: '-1536' } }), file('b', 'b')]], /entry "victim".*invalid PAX size "-1536"/);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(store.snapshots.has(img.diffIds[0])).toBe(false);
  }, 10000);

  it('a negative uid (base-256) is refused at parse, not a RangeError later', async () => {
    const name = `example.com/t${n++}:latest`;
    const tar = patchHeader(rawTar([file('f', 'x')]), 0, 108, 8, base256(-1n, 8));
    await putImage(store, name, [tar]);
    await expect(unpackImage(store, name)).rejects.toThrow(/entry "f".*uid -1 is out of range/);
  });

  it('export-rootfs --dir of such an image fails with the header error, not a RangeError from lchown', async () => {
    const name = `example.com/t${n++}:latest`;
    await putImage(store, name, [patchHeader(rawTar([file('g', 'x')]), 0, 116, 8, base256(-2n, 8))]);
    const err = await exportRootfs(store, name, { dir: path.join(outside, 'rootfs') }).catch((e) => e);
    expect(err).toBeInstanceOf(ImgtoolError);
    expect(err.message).toMatch(/entry "g".*gid -2 is out of range/);
  });
});
