/**
 * A load killed (SIGKILL: no cleanup can run) while it unpacks leaves a consistent store:
 * the names are registered only by the load's last transaction, after unpacking, so the
 * image is not registered; the next command sweeps the dead process's temp directory;
 * fsck is clean and loading again works.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { runCli, tmpDir, rmrf, BIN } from '../helpers/cli';
import { makeImage, ociImageArchive } from '../unit/archive/import-fixtures';
import { sha256 } from '../../src';
import { MediaType } from '../../src/images/mediatypes';
import * as zlib from 'node:zlib';
import { tar } from '../unit/archive/import-fixtures';

let dir: string;
beforeAll(() => (dir = tmpDir('imgtool-load-kill-')));
afterAll(() => rmrf(dir));

function bigLayer() {
  const files = Array.from({ length: 40000 }, (_, i) => ({ name: `d${i % 100}/f${i}`, data: `file ${i}\n`.repeat(40) }));
  const t = tar(files);
  const blob = zlib.gzipSync(t, { level: 1 });
  const digest = sha256(blob);
  return { tar: t, blob, digest, diffId: sha256(t), compression: 'gzip' as const, desc: { mediaType: MediaType.OCI_LAYER_GZIP, digest, size: blob.length } };
}

it('SIGKILL during unpack: no name registered, tmp swept by the next command, fsck clean, load again works', async () => {
  const root = path.join(dir, 'store');
  const img = makeImage({ layers: [bigLayer()] });
  const archive = path.join(dir, 'big.tar');
  fs.writeFileSync(archive, ociImageArchive(img, 'x.io/kill:1'));
  const tmp = path.join(root, 'snapshots', 'tmp');
  const child = spawn(process.execPath, [BIN, 'load', '-i', archive], { env: { ...process.env, IMGTOOL_ROOT: root }, stdio: 'ignore' });
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  let killed = false;
  for (let i = 0; i < 3000 && !killed; i++) {
    await new Promise((r) => setTimeout(r, 10));
    if (fs.existsSync(tmp) && fs.readdirSync(tmp).some((n) => n.includes('-extract-'))) {
      child.kill('SIGKILL');
      killed = true;
    }
  }
  await exited;
  expect(killed).toBe(true);
  const images = await runCli(['images', '--json'], { root });
  expect(images.code).toBe(0);
  expect(JSON.parse(images.stdout)).toEqual([]);
  const fsck = await runCli(['fsck'], { root });
  expect(fsck.code).toBe(0);
  expect(fs.readdirSync(tmp).filter((n) => n.startsWith(`p${child.pid}`) || n.includes(`${child.pid}`))).toEqual([]);
  const again = await runCli(['load', '-i', archive], { root });
  expect(again.stderr).toBe('');
  expect(again.code).toBe(0);
  expect(fs.readdirSync(tmp)).toEqual([]);
});
