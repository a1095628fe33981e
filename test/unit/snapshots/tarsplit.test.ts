import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { Store } from '../../../src/store';
import { rawTar, RawEntry } from '../../../src/builder/raw';
import { unpackImage, rebuildLayer, discardLayers, verifyRebuild } from '../../../src/snapshots/ops';
import { ensureLayer } from '../../../src/layers';
import { readRecord } from '../../../src/tar';
import { tmpDir, rmrf } from '../../helpers/cli';
import { putImage, sha, viewOf } from './helpers';

let root: string;
let work: string;
let store: Store;
let n = 0;

beforeEach(() => {
  root = tmpDir('imgtool-split-');
  work = tmpDir('imgtool-split-work-');
  store = Store.open(root);
});
afterEach(() => {
  store.close();
  rmrf(root);
  rmrf(work);
});

async function collect(r: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** Unpack an image of these tars and check every layer rebuilds byte for byte. */
async function roundTrip(tars: Buffer[]): Promise<string> {
  const name = `example.com/split${n++}:1`;
  const img = await putImage(store, name, tars);
  const r = await unpackImage(store, name);
  for (let i = 0; i < tars.length; i++) {
    const s = store.snapshots.get(r.layers[i].chainId)!;
    expect(s.reproducible).toBe(true);
    const rebuilt = await collect(rebuildLayer(store, img.diffIds[i])!);
    expect(rebuilt.length).toBe(tars[i].length);
    expect(rebuilt.equals(tars[i])).toBe(true);
  }
  return r.chainId!;
}

function gnuTar(format: string, extra: string[] = []): Buffer {
  const src = path.join(work, 'src-' + format);
  fs.mkdirSync(path.join(src, 'dir', 'sub'), { recursive: true });
  fs.writeFileSync(path.join(src, 'dir', 'file.txt'), 'hello\n');
  fs.writeFileSync(path.join(src, 'dir', 'sub', 'big.bin'), Buffer.alloc(70000, 7));
  fs.writeFileSync(path.join(src, 'empty'), '');
  const long = 'l'.repeat(60) + '/' + 'o'.repeat(60) + '/' + 'n'.repeat(90);
  fs.mkdirSync(path.join(src, path.dirname(long)), { recursive: true });
  fs.writeFileSync(path.join(src, long), 'long name');
  fs.symlinkSync('x'.repeat(150), path.join(src, 'longlink'));
  fs.symlinkSync('dir/file.txt', path.join(src, 'rel'));
  fs.linkSync(path.join(src, 'dir', 'file.txt'), path.join(src, 'hard'));
  fs.chmodSync(path.join(src, 'dir', 'file.txt'), 0o4750);
  fs.utimesSync(path.join(src, 'empty'), 1_600_000_000.5, 1_600_000_000.5);
  const out = path.join(work, `t-${format}.tar`);
  execFileSync('tar', ['--format=' + format, '-C', src, '-cf', out, ...extra, '.']);
  return fs.readFileSync(out);
}

describe('tar-split: exact rebuild', () => {
  for (const format of ['gnu', 'posix', 'ustar', 'oldgnu']) {
    it(`GNU tar --format=${format} (long names, links, hard links, record padding)`, async () => {
      const extra = format === 'gnu' ? ['--owner=big:3000000', '--group=big:3000001'] : format === 'posix' ? ['--pax-option=exthdr.name=%d/PaxHeaders/%f'] : [];
      const tar = format === 'ustar' || format === 'oldgnu' ? gnuTarNoLong(format) : gnuTar(format, extra);
      expect(tar.length % 10240).toBe(0); // GNU tar pads to its record size: trailing bytes must come back too
      const chain = await roundTrip([tar]);
      const v = await viewOf(store, chain);
      const [f, h] = format === 'ustar' || format === 'oldgnu' ? ['a/b/f', 'a/h'] : ['dir/file.txt', 'hard'];
      expect(v.get(f)!.content!.toString()).toBe(format === 'ustar' || format === 'oldgnu' ? 'f' : 'hello\n');
      expect(v.get(h)!.content!.toString()).toBe(v.get(f)!.content!.toString());
      if (format === 'gnu') expect(v.get('dir/file.txt')!.meta.uid).toBe(3000000);
    });
  }

  function gnuTarNoLong(format: string): Buffer {
    const src = path.join(work, 'src2-' + format);
    fs.mkdirSync(path.join(src, 'a', 'b'), { recursive: true });
    fs.writeFileSync(path.join(src, 'a', 'b', 'f'), 'f');
    fs.symlinkSync('b/f', path.join(src, 'a', 'l'));
    fs.linkSync(path.join(src, 'a', 'b', 'f'), path.join(src, 'a', 'h'));
    const out = path.join(work, `t2-${format}.tar`);
    execFileSync('tar', ['--format=' + format, '-C', src, '-cf', out, '.']);
    return fs.readFileSync(out);
  }

  it('PAX xattrs and capabilities, global headers, GNU long names, ustar prefix, base-256', async () => {
    const longName = 'p'.repeat(80) + '/' + 'q'.repeat(80) + '/file';
    const entries: RawEntry[] = [
      { name: 'pax_global_header', typeflag: 'g', data: '30 comment=global header test\n' },
      { name: 'cap', data: 'bin', pax: { 'SCHILY.xattr.security.capability': Buffer.from([1, 0, 0, 2, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), 'SCHILY.xattr.user.x': 'y', mtime: '1700000000.123456789' } },
      { name: longName, data: 'gnu long', longNames: 'gnu' },
      { name: 'g/' + 'x'.repeat(120), data: 'ustar prefix', longNames: 'ustar' },
      { name: 's', type: 'symlink', linkname: 't'.repeat(200), longNames: 'gnu' },
      { name: 'p/' + 'y'.repeat(150), data: 'pax long', longNames: 'pax' },
      { name: 'bigid', data: 'id', uid: 0o7777777 + 5, gid: 9 },
    ];
    const tar = rawTar(entries);
    const chain = await roundTrip([tar]);
    const v = await viewOf(store, chain);
    expect(v.get(longName)!.content!.toString()).toBe('gnu long');
    expect(v.get('g/' + 'x'.repeat(120))!.content!.toString()).toBe('ustar prefix');
    expect(v.get('s')!.meta.linkname).toBe('t'.repeat(200));
    expect(v.get('cap')!.meta.mtime).toBeCloseTo(1700000000.123456789, 6);
    expect(Object.keys(v.get('cap')!.meta.xattrs!).sort()).toEqual(['security.capability', 'user.x']);
  });

  it('duplicate paths, files hidden or replaced later in the same layer, payloads of ignored entries', async () => {
    const tar = rawTar([
      { name: 'dup', data: 'first version' },
      { name: 'dup', data: 'second' },
      { name: 'd/', type: 'dir' },
      { name: 'd/inner', data: 'will vanish with d' },
      { name: 'd', data: 'd is a file now' },
      { name: 'h', data: 'linked then replaced' },
      { name: 'h2', type: 'hardlink', linkname: 'h' },
      { name: 'h', data: 'new h' },
      { name: 'x', data: 'x' },
      { name: 'x', type: 'symlink', linkname: 'dup' },
      { name: '.wh.gone', data: 'whiteout with a payload' },
      { name: './', type: 'dir' },
      { name: 'dup', data: 'third and last' },
    ]);
    const chain = await roundTrip([tar]);
    const v = await viewOf(store, chain);
    expect(v.get('dup')!.content!.toString()).toBe('third and last');
    expect(v.get('h2')!.content!.toString()).toBe('linked then replaced');
    expect(v.get('h')!.content!.toString()).toBe('new h');
    expect(v.get('d')!.content!.toString()).toBe('d is a file now');
  });

  it('no end-of-archive blocks, and garbage after them', async () => {
    await roundTrip([rawTar([{ name: 'a', data: 'a' }], { endBlocks: false })]);
    await roundTrip([Buffer.concat([rawTar([{ name: 'b', data: 'b' }]), Buffer.from('trailing garbage')])]);
  });

  it('multi-layer with whiteouts: every layer rebuilds', async () => {
    await roundTrip([
      rawTar([{ name: 'a/', type: 'dir' }, { name: 'a/x', data: 'x' }, { name: 'a/y', data: 'y' }]),
      rawTar([{ name: 'a/.wh.x', data: '' }, { name: 'a/.wh..wh..opq', data: '' }, { name: 'a/z', data: 'z' }]),
      rawTar([{ name: 'a', data: 'file' }]),
    ]);
  });

  it('any snapshot with the diffID rebuilds it (stored paths differ with the parent)', async () => {
    const top = rawTar([{ name: 'var/run/pid', data: '42' }, { name: 'var/run/pid2', type: 'hardlink', linkname: 'var/run/pid' }]);
    await putImage(store, 'example.com/p1:1', [rawTar([{ name: 'var/run/', type: 'dir' }]), top]);
    await putImage(store, 'example.com/p2:1', [rawTar([{ name: 'run/', type: 'dir' }, { name: 'var/', type: 'dir' }, { name: 'var/run', type: 'symlink', linkname: '/run' }]), top]);
    const r1 = await unpackImage(store, 'example.com/p1:1');
    const r2 = await unpackImage(store, 'example.com/p2:1');
    expect(r2.layers[1].source!.kind).toBe('blob');
    const snaps = store.snapshots.forDiffId(sha(top));
    expect(snaps.map((s) => s.chainId).sort()).toEqual([r1.chainId, r2.chainId].sort());
    for (const s of snaps) {
      const b = await collect(readRecord(store.snapshots.recordFile(s.chainId), store.snapshots.fsDir(s.chainId)));
      expect(b.equals(top)).toBe(true);
    }
    expect((await viewOf(store, r2.chainId!)).get('run/pid2')!.content!.toString()).toBe('42');
  });
});

describe('discardLayers', () => {
  it('deletes blobs only after a verified rebuild; variants stay; save-side rebuild gives a new blob', async () => {
    const tars = [rawTar([{ name: 'a', data: 'a'.repeat(5000) }]), rawTar([{ name: 'b', data: 'b' }])];
    const img = await putImage(store, 'example.com/d:1', tars);
    await unpackImage(store, 'example.com/d:1');
    const out = await discardLayers(store, 'example.com/d:1');
    expect(out.map((o) => o.digest)).toEqual(img.digests);
    expect(out.every((o) => o.freed > 0)).toBe(true);
    for (let i = 0; i < 2; i++) {
      expect(store.content.has(img.digests[i])).toBe(false);
      expect(store.variants.get(img.digests[i])!.diffId).toBe(img.diffIds[i]);
      expect(await verifyRebuild(store, img.diffIds[i])).toBe(tars[i].length);
    }
    const blob = await ensureLayer(store, img.diffIds[0], { compression: 'zstd' });
    expect(blob.source).toBe('rebuilt');
    expect(store.content.has(blob.digest)).toBe(true);
    expect(store.variants.get(blob.digest)).toMatchObject({ diffId: img.diffIds[0], compression: 'zstd' });
    // A second discard frees nothing and still verifies.
    expect((await discardLayers(store, 'example.com/d:1')).map((o) => o.freed)).toEqual([0, 0]);
  });

  it('never discards when the rebuild does not verify', async () => {
    const tars = [rawTar([{ name: 'a', data: 'aaaa' }])];
    const img = await putImage(store, 'example.com/d:1', tars);
    const r = await unpackImage(store, 'example.com/d:1');
    fs.writeFileSync(path.join(store.snapshots.fsDir(r.chainId!), 'a'), 'bbbb'); // same size, other bytes
    await expect(discardLayers(store, 'example.com/d:1')).rejects.toThrow(/blob kept.*digest mismatch/);
    expect(store.content.has(img.digests[0])).toBe(true);
    fs.writeFileSync(path.join(store.snapshots.fsDir(r.chainId!), 'a'), 'bbbbb'); // other size
    await expect(discardLayers(store, 'example.com/d:1')).rejects.toThrow(/has 5 bytes, the layer recorded 4/);
    expect(store.content.has(img.digests[0])).toBe(true);
  });

  it('refuses an image that is not unpacked', async () => {
    const img = await putImage(store, 'example.com/d:1', [rawTar([{ name: 'a', data: 'a' }])]);
    await expect(discardLayers(store, 'example.com/d:1')).rejects.toThrow(/not unpacked/);
    expect(store.content.has(img.digests[0])).toBe(true);
  });
});

describe('storage', () => {
  it('grows with the sum of the layers, not layers x image size (<= 1.1x)', async () => {
    const big: RawEntry[] = [{ name: 'base/', type: 'dir' }];
    for (let i = 0; i < 40; i++) big.push({ name: `base/f${i}`, data: Buffer.alloc(50_000, i) });
    const tars = [rawTar(big)];
    for (let l = 1; l < 8; l++) {
      tars.push(rawTar([
        { name: `base/f${l}`, data: Buffer.alloc(30_000, 100 + l) },
        { name: `base/.wh.f${l + 20}`, data: '' },
        { name: `layer${l}/`, type: 'dir' },
        { name: `layer${l}/new`, data: Buffer.alloc(40_000, l) },
        { name: `layer${l}/link`, type: 'hardlink', linkname: 'base/f30' },
      ]));
    }
    await roundTrip(tars);
    const sumLayers = tars.reduce((a, t) => a + t.length, 0);
    const seen = new Set<string>();
    let used = 0;
    const visit = (d: string) => {
      for (const e of fs.readdirSync(d)) {
        const p = path.join(d, e);
        const st = fs.lstatSync(p);
        if (st.isDirectory()) visit(p);
        else if (!seen.has(`${st.dev}:${st.ino}`)) {
          seen.add(`${st.dev}:${st.ino}`);
          used += st.size;
        }
      }
    };
    visit(store.snapshots.dir);
    const imageSize = 2_000_000;
    expect(used).toBeLessThanOrEqual(1.1 * sumLayers);
    expect(used).toBeLessThan(tars.length * imageSize * 0.5); // far from a copy per layer
    const rowSum = store.snapshots.list().reduce((a, s) => a + s.size, 0);
    expect(rowSum).toBeLessThanOrEqual(1.1 * sumLayers);
  });
});
