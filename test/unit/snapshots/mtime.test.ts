/**
 * mtimes a filesystem cannot take (issue 10 item 3): negative, fractional and huge
 * mtimes are legal in a layer (PAX, base-256). The layer's tar-split keeps them
 * verbatim (exact rebuild); unpack and export-rootfs clamp them with the same helper
 * to [0, MAX_MTIME] with one warning naming the entry, instead of failing with
 * `EINVAL … lutime` (or Node silently using "now" for a negative time).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Store } from '../../../src/store';
import { rawTar } from '../../../src/builder/raw';
import { unpackImage, rebuildLayer } from '../../../src/snapshots/ops';
import { exportRootfs } from '../../../src/snapshots/export';
import { TarParser, TarHeader } from '../../../src/tar';
import { MAX_MTIME, clampMtime } from '../../../src/snapshots/tree';
import { warningsOnly } from '../../../src/progress';
import { tmpDir, rmrf } from '../../helpers/cli';
import { putImage, viewOf, patchHeader, base256 } from './helpers';

const INT64_MAX = '9223372036854775807';

let root: string;
let out: string;
let store: Store;

beforeEach(() => {
  root = tmpDir('imgtool-mtime-');
  out = tmpDir('imgtool-mtime-out-');
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

async function headersOf(buf: Buffer): Promise<Map<string, TarHeader>> {
  const m = new Map<string, TarHeader>();
  await pipeline(Readable.from([buf]), new TarParser({ raw: () => {}, entry: (h) => (m.set(h.name, h), { write: () => {}, end: () => {} }) }));
  return m;
}

/** Three layers, each with exactly one mtime out of range, plus legal fractional ones. */
function layers(): Buffer[] {
  return [
    rawTar([
      { name: 'frac', data: 'f', pax: { mtime: '1700000000.25' } },
      { name: 'neg', data: 'n', pax: { mtime: '-1.5' } },
    ]),
    rawTar([
      { name: 'd/', type: 'dir', pax: { mtime: '1600000000.5' } },
      { name: 'd/huge', data: 'h', pax: { mtime: INT64_MAX } },
    ]),
    // base-256 negative mtime in the ustar header itself
    patchHeader(rawTar([{ name: 'b256', data: 'b' }]), 0, 136, 12, base256(-3600n, 12)),
  ];
}

const MTIME_WARNING = /mtime/;

describe('mtime clamping', () => {
  it('clampMtime: [0, MAX_MTIME], fractions kept', () => {
    expect(clampMtime(-1.5)).toBe(0);
    expect(clampMtime(Number.NaN)).toBe(0);
    expect(clampMtime(1700000000.25)).toBe(1700000000.25);
    expect(clampMtime(9.3e18)).toBe(MAX_MTIME);
    expect(MAX_MTIME).toBe(9223372036); // 2^63-1 ns, the limit of containerd and moby
  });

  it('unpack: one warning per clamped entry naming it; the snapshot keeps the clamped value; the tar-split rebuilds byte for byte', async () => {
    const tars = layers();
    const img = await putImage(store, 'example.com/m:1', tars);
    const warnings: string[] = [];
    const r = await unpackImage(store, 'example.com/m:1', { progress: warningsOnly((w) => warnings.push(w)) });
    const mw = warnings.filter((w) => MTIME_WARNING.test(w));
    expect(mw).toHaveLength(3);
    expect(mw[0]).toMatch(/layer 1\/3.*entry "neg".*-1\.5.*clamped to 0/);
    expect(mw[1]).toMatch(new RegExp(`layer 2/3.*entry "d/huge".*clamped to ${MAX_MTIME}`));
    expect(mw[2]).toMatch(/layer 3\/3.*entry "b256".*-3600.*clamped to 0/);
    for (const w of mw) expect(w).not.toMatch(/\n/);
    const v = await viewOf(store, r.chainId!);
    expect(v.get('frac')!.meta.mtime).toBe(1700000000.25);
    expect(v.get('neg')!.meta.mtime).toBe(0);
    expect(v.get('d')!.meta.mtime).toBe(1600000000.5);
    expect(v.get('d/huge')!.meta.mtime).toBe(MAX_MTIME);
    expect(v.get('b256')!.meta.mtime).toBe(0);
    for (let i = 0; i < tars.length; i++) {
      expect(store.snapshots.get(r.layers[i].chainId)!.reproducible).toBe(true);
      expect((await collect(rebuildLayer(store, img.diffIds[i])!)).equals(tars[i])).toBe(true);
    }
  });

  it('several clamped entries in one layer: still one warning, naming the first', async () => {
    await putImage(store, 'example.com/m:2', [rawTar([
      { name: 'a', data: 'a', pax: { mtime: '-5' } },
      { name: 'b', data: 'b', pax: { mtime: '-6' } },
      { name: 'c', data: 'c', pax: { mtime: INT64_MAX } },
    ])]);
    const warnings: string[] = [];
    await unpackImage(store, 'example.com/m:2', { progress: warningsOnly((w) => warnings.push(w)) });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/entry "a".*-5.*2 more/);
  });

  it('export-rootfs --dir (layers applied on the fly): no EINVAL, same clamp, one warning per entry', async () => {
    await putImage(store, 'example.com/m:1', layers());
    const d = path.join(out, 'root');
    const r = await exportRootfs(store, 'example.com/m:1', { dir: d });
    expect(r.fromSnapshots).toBe(false);
    const mw = r.warnings.filter((w) => MTIME_WARNING.test(w));
    expect(mw).toHaveLength(3);
    expect(mw.join('\n')).toMatch(/entry "neg"[\s\S]*entry "d\/huge"[\s\S]*entry "b256"/);
    const mt = (p: string) => fs.lstatSync(path.join(d, p)).mtimeMs / 1000;
    expect(mt('frac')).toBeCloseTo(1700000000.25, 3);
    expect(mt('neg')).toBe(0); // not "now", which Node's fs uses for a negative time
    expect(mt('b256')).toBe(0);
    expect(mt('d')).toBeCloseTo(1600000000.5, 3);
    expect(mt('d/huge')).toBeGreaterThan(2 ** 32); // what the filesystem keeps of MAX_MTIME
  });

  it('export-rootfs -o: the same clamped values, readable back', async () => {
    await putImage(store, 'example.com/m:1', layers());
    const f = path.join(out, 'rootfs.tar');
    const r = await exportRootfs(store, 'example.com/m:1', { output: f });
    expect(r.warnings.filter((w) => MTIME_WARNING.test(w))).toHaveLength(3);
    const h = await headersOf(fs.readFileSync(f));
    expect(h.get('frac')!.mtime).toBe(1700000000.25);
    expect(h.get('neg')!.mtime).toBe(0);
    expect(h.get('d/')!.mtime).toBe(1600000000.5);
    expect(h.get('d/huge')!.mtime).toBe(MAX_MTIME);
    expect(h.get('b256')!.mtime).toBe(0);
  });

  it('export-rootfs from committed snapshots: nothing left to clamp, no second warning', async () => {
    await putImage(store, 'example.com/m:1', layers());
    await unpackImage(store, 'example.com/m:1');
    const r = await exportRootfs(store, 'example.com/m:1', { dir: path.join(out, 'r2') });
    expect(r.fromSnapshots).toBe(true);
    expect(r.warnings.filter((w) => MTIME_WARNING.test(w))).toEqual([]);
  });
});
