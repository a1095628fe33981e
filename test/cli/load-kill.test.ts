/**
 * A load killed (SIGKILL: no cleanup can run) while it unpacks leaves a consistent store:
 * the names are registered only by the load's last transaction, after unpacking, so the
 * image is not registered; the next command sweeps the dead process's temp directory;
 * fsck is clean and loading again works.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runCli, tmpDir, rmrf } from '../helpers/cli';
import { expectKilledLeftNothing, killWhileUnpacking, slowUnpackLayer, snapshotTmp } from '../helpers/kill';
import { makeImage, ociImageArchive } from '../unit/archive/import-fixtures';

let dir: string;
beforeAll(() => (dir = tmpDir('imgtool-load-kill-')));
afterAll(() => rmrf(dir));

it('SIGKILL during unpack: no name registered, tmp swept by the next command, fsck clean, load again works', async () => {
  const root = path.join(dir, 'store');
  const img = makeImage({ layers: [slowUnpackLayer()] });
  const archive = path.join(dir, 'big.tar');
  fs.writeFileSync(archive, ociImageArchive(img, 'x.io/kill:1'));
  const tmp = snapshotTmp(root);
  const { killed, pid } = await killWhileUnpacking(['load', '-i', archive], root, 30_000);
  expect(killed).toBe(true);
  await expectKilledLeftNothing(root, pid);
  const again = await runCli(['load', '-i', archive], { root });
  expect(again.stderr).toBe('');
  expect(again.code).toBe(0);
  expect(fs.readdirSync(tmp)).toEqual([]);
});
