/**
 * `save -o NAME.tar.gz|.tar.zst` compresses the outer archive by the name's extension (issue 16):
 * it used to write a plain tar under a compressed name. Readers are warned about; `kind preload`
 * refuses compressed names (ctr 1.6 in KIND nodes imports no compressed archive).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { Store } from '../../src';
import { runCli, tmpDir, rmrf } from '../helpers/cli';
import { addImage } from '../unit/archive/export-fixtures';
import { ownStderr } from '../unit/archive/import-fixtures';

describe('save to a compressed name (CLI)', () => {
  let dir: string;
  let root: string;
  beforeAll(async () => {
    dir = tmpDir('imgtool-savez-');
    root = path.join(dir, 'store');
    const store = Store.open(root);
    try {
      const a = await addImage(store, { layers: [{ 'etc/a': 'a'.repeat(10000) }], label: 'a' });
      store.images.put('docker.io/library/a:1', a.manifest);
    } finally {
      store.close();
    }
  });
  afterAll(() => rmrf(dir));

  it.each([['a.tar.gz', [0x1f, 0x8b]], ['a.tgz', [0x1f, 0x8b]], ['a.tar.zst', [0x28, 0xb5, 0x2f, 0xfd]]])('%s is compressed, deterministic, and loads', async (name, magic) => {
    const out = path.join(dir, name);
    const r = await runCli(['save', '-o', out, 'a:1'], { root });
    expect(r.code).toBe(0);
    expect(ownStderr(r.stderr)).toMatch(/warning: writing a (gzip|zstd)-compressed archive .*ctr 1\.6/);
    expect([...fs.readFileSync(out).subarray(0, magic.length)]).toEqual(magic);
    const again = path.join(dir, `again-${name}`);
    expect((await runCli(['save', '-o', again, 'a:1'], { root })).code).toBe(0);
    expect(fs.readFileSync(again).equals(fs.readFileSync(out))).toBe(true);
    const v = await runCli(['verify', '--strict', out], { root });
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/\((gzip|zstd)\)/);
    const root2 = path.join(dir, `store-${name}`);
    expect((await runCli(['load', '-i', out], { root: root2 })).code).toBe(0);
  });

  it('a plain .tar name stays a plain tar with no warning', async () => {
    const out = path.join(dir, 'plain.tar');
    const r = await runCli(['save', '-o', out, 'a:1'], { root });
    expect(r.code).toBe(0);
    expect(ownStderr(r.stderr)).toBe('');
    expect(() => zlib.gunzipSync(fs.readFileSync(out))).toThrow();
    expect(fs.readFileSync(out).subarray(257, 262).toString()).toBe('ustar');
  });

  it('kind preload refuses a compressed name before doing anything', async () => {
    const out = path.join(dir, 'p.tar.gz');
    const r = await runCli(['kind', 'preload', '-o', out, 'a:1'], { root });
    expect(r.code).not.toBe(0);
    expect(ownStderr(r.stderr)).toMatch(/^imgtool: error: kind preload -o .*p\.tar\.gz: a preload archive must be a plain tar/m);
    expect(fs.existsSync(out)).toBe(false);
  });
});
