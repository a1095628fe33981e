/**
 * export-rootfs --dir that fails removes what it created (a new directory entirely; the
 * contents it put into an existing empty one) and says which entry failed, in one line.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Store } from '../../../src/store';
import { rawTar } from '../../../src/builder/raw';
import { unpackImage } from '../../../src/snapshots/ops';
import { exportRootfs } from '../../../src/snapshots/export';
import { ImgtoolError } from '../../../src/errors';
import { tmpDir, rmrf } from '../../helpers/cli';
import { putImage } from './helpers';

let base: string;
let store: Store;
beforeEach(() => {
  base = tmpDir('imgtool-exportdir-');
  store = Store.open(path.join(base, 'store'));
});
afterEach(() => {
  store.close();
  rmrf(base);
});

async function brokenImage() {
  const name = 'example.com/broken:1';
  await putImage(store, name, [rawTar([{ name: 'a/', type: 'dir', mode: 0o755 }, { name: 'a/one', data: '1', mode: 0o644 }, { name: 'z', data: 'zz', mode: 0o644 }])]);
  const r = await unpackImage(store, name);
  // the store loses a data file (disk trouble): the export fails at entry "z"
  fs.rmSync(path.join(store.snapshots.fsDir(r.chainId!), 'z'));
  return name;
}

it('a new directory is removed when the export fails', async () => {
  const name = await brokenImage();
  const out = path.join(base, 'new', 'rootfs');
  const e = await exportRootfs(store, name, { dir: out }).catch((x) => x);
  expect(e).toBeInstanceOf(ImgtoolError);
  expect(e.message).toMatch(/^export-rootfs: image example.com\/broken:1: entry "z": /);
  expect(e.message).not.toMatch(/\n|ENOENT: no such file|snapshots\//);
  expect(fs.existsSync(out)).toBe(false);
  expect(fs.existsSync(path.join(base, 'new'))).toBe(false);
});

it('an existing empty directory is left empty', async () => {
  const name = await brokenImage();
  const out = path.join(base, 'empty');
  fs.mkdirSync(out);
  await expect(exportRootfs(store, name, { dir: out })).rejects.toThrow(/entry "z"/);
  expect(fs.readdirSync(out)).toEqual([]);
});
