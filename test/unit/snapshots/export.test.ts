import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable, PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Store } from '../../../src/store';
import { rawTar } from '../../../src/builder/raw';
import { unpackImage } from '../../../src/snapshots/ops';
import { exportRootfs } from '../../../src/snapshots/export';
import { TarParser, TarHeader } from '../../../src/tar';
import { tmpDir, rmrf } from '../../helpers/cli';
import { putImage } from './helpers';

let root: string;
let out: string;
let store: Store;

beforeEach(async () => {
  root = tmpDir('imgtool-exp-');
  out = tmpDir('imgtool-exp-out-');
  store = Store.open(root);
  await putImage(store, 'example.com/e:1', [
    rawTar([
      { name: 'z/', type: 'dir', mode: 0o750, uid: 3, gid: 4, mtime: 1000 },
      { name: 'z/file', data: 'zzz', mode: 0o4711, uid: 1000, gid: 1000, uname: 'user', gname: 'grp', mtime: 2000, pax: { 'SCHILY.xattr.security.capability': Buffer.from([1, 2, 3, 0]), 'SCHILY.xattr.user.note': 'hi' } },
      { name: 'a/', type: 'dir' },
      { name: 'a/link', type: 'hardlink', linkname: 'z/file' },
      { name: 'dev/', type: 'dir' },
      { name: 'dev/null', type: 'char', devmajor: 1, devminor: 3, mode: 0o666 },
      { name: 'dev/sda', type: 'block', devmajor: 8, devminor: 0, mode: 0o660 },
      { name: 'pipe', type: 'fifo', mode: 0o600 },
      { name: 's', type: 'symlink', linkname: '../../escape' },
      { name: 'deep/' + 'n'.repeat(150), data: 'long', longNames: 'pax' },
    ]),
    rawTar([{ name: 'z/.wh.gone', data: '' }, { name: 'b', data: 'b', mtime: 5 }]),
  ]);
});
afterEach(() => {
  store.close();
  rmrf(root);
  rmrf(out);
});

async function readTar(buf: Buffer) {
  const entries: Array<{ h: TarHeader; data: Buffer }> = [];
  await pipeline(Readable.from([buf]), new TarParser({
    raw: () => {},
    entry: (h) => {
      const parts: Buffer[] = [];
      const e = { h, data: Buffer.alloc(0) };
      entries.push(e);
      return { write: (c) => { parts.push(Buffer.from(c)); }, end: () => { e.data = Buffer.concat(parts); } };
    },
  }));
  return entries;
}

describe('exportRootfs', () => {
  it('tar: deterministic, path order, metadata, xattrs, devices, hard links; same before and after unpack', async () => {
    const before = path.join(out, 'before.tar');
    const r0 = await exportRootfs(store, 'example.com/e:1', { output: before });
    expect(r0.fromSnapshots).toBe(false);
    expect(store.snapshots.list()).toEqual([]);
    expect(fs.readdirSync(store.snapshots.tmpDir)).toEqual([]);
    await unpackImage(store, 'example.com/e:1');
    const after = path.join(out, 'after.tar');
    const r1 = await exportRootfs(store, 'example.com/e:1', { output: after });
    expect(r1.fromSnapshots).toBe(true);
    const buf = fs.readFileSync(after);
    expect(buf.equals(fs.readFileSync(before))).toBe(true);
    const chunks: Buffer[] = [];
    const pt = new PassThrough();
    pt.on('data', (c) => chunks.push(c));
    await exportRootfs(store, 'example.com/e:1', { output: pt });
    expect(Buffer.concat(chunks).equals(buf)).toBe(true);

    const entries = await readTar(buf);
    expect(entries.map((e) => e.h.name)).toEqual(['a/', 'a/link', 'b', 'deep/', 'deep/' + 'n'.repeat(150), 'dev/', 'dev/null', 'dev/sda', 'pipe', 's', 'z/', 'z/file']);
    const byName = new Map(entries.map((e) => [e.h.name, e]));
    expect(byName.get('a/link')!.h).toMatchObject({ type: 'file', size: 3, mode: 0o4711, uid: 1000 });
    expect(byName.get('z/file')!.h).toMatchObject({ type: 'link', linkname: 'a/link', uname: 'user', gname: 'grp', mtime: 2000 });
    expect(byName.get('a/link')!.h.xattrs['security.capability']).toEqual(Buffer.from([1, 2, 3, 0]));
    expect(byName.get('a/link')!.data.toString()).toBe('zzz');
    expect(byName.get('z/')!.h).toMatchObject({ mode: 0o750, uid: 3, gid: 4, mtime: 1000 });
    expect(byName.get('dev/null')!.h).toMatchObject({ type: 'char', devmajor: 1, devminor: 3 });
    expect(byName.get('dev/sda')!.h).toMatchObject({ type: 'block', devmajor: 8, devminor: 0 });
    expect(byName.get('pipe')!.h.type).toBe('fifo');
    expect(byName.get('s')!.h.linkname).toBe('../../escape');
  });

  it('directory: modes, owners (as root), links, devices, symlinks never followed', async () => {
    const d = path.join(out, 'root');
    const r = await exportRootfs(store, 'example.com/e:1', { dir: d });
    const st = fs.statSync(path.join(d, 'z/file'));
    expect(st.mode & 0o7777).toBe(0o4711);
    expect(fs.statSync(path.join(d, 'a/link')).ino).toBe(st.ino);
    expect(fs.statSync(path.join(d, 'z')).mode & 0o7777).toBe(0o750);
    expect(Math.floor(fs.statSync(path.join(d, 'z')).mtimeMs / 1000)).toBe(1000);
    expect(fs.readlinkSync(path.join(d, 's'))).toBe('../../escape');
    expect(fs.existsSync(path.join(out, 'escape'))).toBe(false);
    expect(fs.lstatSync(path.join(d, 'pipe')).isFIFO()).toBe(true);
    if (process.getuid?.() === 0) {
      expect(st.uid).toBe(1000);
      expect(fs.lstatSync(path.join(d, 'dev/null')).isCharacterDevice()).toBe(true);
    } else {
      expect(r.warnings.join('\n')).toMatch(/device node/);
    }
    expect(r.warnings.join('\n')).toMatch(/extended attributes/);
    await expect(exportRootfs(store, 'example.com/e:1', { dir: d })).rejects.toThrow(/must be an empty directory/);
  });

  it('-o FILE leaves no file when the export fails', async () => {
    const f = path.join(out, 'x.tar');
    const digest = (await store.images.resolve('example.com/e:1')).target.digest;
    const m = JSON.parse((await store.content.readBuffer(digest)).toString());
    store.meta.write(() => store.content.deleteLocked(m.layers[1].digest));
    await expect(exportRootfs(store, 'example.com/e:1', { output: f })).rejects.toThrow(/not in the store/);
    expect(fs.readdirSync(out)).toEqual([]);
  });
});
