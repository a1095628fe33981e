/**
 * A pull killed (SIGKILL: no cleanup can run) while it unpacks registers nothing, as a killed
 * load: pull shares load's deferred-names path (src/archive/load.ts `unpackThenRegister`), so
 * the names are written by the last transaction, after unpacking. The next command sweeps the
 * dead process's work directory; fsck is clean; pulling again works. Against the real
 * distribution registry (scripts/peers/registry-up.sh).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { spawn } from 'node:child_process';
import { BIN, rmrf, runCli, tmpDir } from '../helpers/cli';
import { requirePeer, startRegistry, stopRegistry } from '../helpers/peers';
import { makeImage, ociImageArchive, tar } from '../unit/archive/import-fixtures';
import { sha256 } from '../../src';
import { MediaType } from '../../src/images/mediatypes';

jest.setTimeout(180_000);

const HAVE = requirePeer('docker-registry');

function bigLayer() {
  const files = Array.from({ length: 40000 }, (_, i) => ({ name: `d${i % 100}/f${i}`, data: `file ${i}\n`.repeat(40) }));
  const t = tar(files);
  const blob = zlib.gzipSync(t, { level: 1 });
  const digest = sha256(blob);
  return { tar: t, blob, digest, diffId: sha256(t), compression: 'gzip' as const, desc: { mediaType: MediaType.OCI_LAYER_GZIP, digest, size: blob.length } };
}

describe('pull killed while unpacking', () => {
  let dir: string;
  let reg: string;

  beforeAll(async () => {
    if (!HAVE) return;
    dir = tmpDir('imgtool-pull-kill-');
    reg = await startRegistry(path.join(dir, 'reg'));
  });
  afterAll(async () => {
    if (!HAVE || !dir) return;
    await stopRegistry(path.join(dir, 'reg')).catch(() => undefined);
    rmrf(dir);
  });

  it('SIGKILL during unpack: no name registered, tmp swept by the next command, fsck clean, pull again works', async () => {
    if (!HAVE) return;
    const src = path.join(dir, 'src');
    const ref = `${reg}/kill:1`;
    const archive = path.join(dir, 'big.tar');
    fs.writeFileSync(archive, ociImageArchive(makeImage({ layers: [bigLayer()] }), ref));
    expect((await runCli(['load', '-i', archive, '--no-unpack'], { root: src })).code).toBe(0);
    const pushed = await runCli(['push', ref, '--insecure'], { root: src });
    expect(pushed.stderr).toBe('');
    expect(pushed.code).toBe(0);

    const root = path.join(dir, 'dst');
    const tmp = path.join(root, 'snapshots', 'tmp');
    const child = spawn(process.execPath, [BIN, 'pull', ref, '--insecure'], { env: { ...process.env, IMGTOOL_ROOT: root }, stdio: 'ignore' });
    const exited = new Promise<void>((r) => child.on('exit', () => r()));
    let killed = false;
    for (let i = 0; i < 6000 && !killed; i++) {
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
    expect(fs.readdirSync(tmp).filter((n) => n.includes(`${child.pid}`))).toEqual([]);
    const again = await runCli(['pull', ref, '--insecure'], { root });
    expect(again.stderr).toBe('');
    expect(again.code).toBe(0);
    expect(JSON.parse((await runCli(['images', '--json'], { root })).stdout).map((i: { name: string }) => i.name)).toEqual([ref]);
    expect(fs.readdirSync(tmp)).toEqual([]);
  });
});
