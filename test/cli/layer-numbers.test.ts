/**
 * Every message numbers layers the same way: 1-based, as in "layer 2/3" progress labels.
 * One image of three layers whose second blob is missing: save, convert, verify-like checks
 * and fsck must all call it "layer 2".
 */
import * as path from 'node:path';
import { Store } from '../../src/store';
import { runCli, tmpDir, rmrf } from '../helpers/cli';
import { addImage, dropBlob } from '../unit/archive/export-fixtures';

describe('layer numbers in messages', () => {
  let dir: string;
  let root: string;
  let missing: string;
  beforeAll(async () => {
    dir = tmpDir('imgtool-layerno-');
    root = path.join(dir, 'store');
    const store = Store.open(root);
    try {
      const img = await addImage(store, { layers: [{ a: 'a' }, { b: 'b' }, { c: 'c' }], label: 'three' });
      store.images.put('example.com/three:1', img.manifest);
      missing = img.layers[1].desc.digest;
      dropBlob(store, missing);
    } finally {
      store.close();
    }
  });
  afterAll(() => rmrf(dir));

  it('save says layer 2', async () => {
    const r = await runCli(['save', '-o', path.join(dir, 'x.tar'), 'example.com/three:1'], { root });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`layer 2 ${missing}`);
    expect(r.stderr).not.toMatch(/layer [013]\b/);
  });

  it('convert says layer 2', async () => {
    const r = await runCli(['convert', '--compression', 'zstd', 'example.com/three:1', 'example.com/three:zstd'], { root });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/ layer 2: /);
    expect(r.stderr).not.toMatch(/ layer [013]\b/);
  });

  it('fsck says layer 2', async () => {
    const r = await runCli(['fsck'], { root });
    expect(r.code).not.toBe(0);
    const lines = (r.stdout + r.stderr).split('\n').filter((l) => l.includes(missing.slice(7, 19)) || l.includes(missing));
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) expect(l).not.toMatch(/layer [013]\b/);
    expect(lines.some((l) => /layer 2\b/.test(l))).toBe(true);
  });
});
