/**
 * A pull killed (SIGKILL: no cleanup can run) while it unpacks registers nothing, as a killed
 * load: pull shares load's deferred-names path (src/images/register.ts `unpackThenRegister`), so
 * the names are written by the last transaction, after unpacking. The next command sweeps the
 * dead process's work directory; fsck is clean; pulling again works. Against the real
 * distribution registry (scripts/peers/registry-up.sh).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { rmrf, runCli, tmpDir } from '../helpers/cli';
import { expectKilledLeftNothing, killWhileUnpacking, slowUnpackLayer, snapshotTmp } from '../helpers/kill';
import { requirePeer, startRegistry, stopRegistry } from '../helpers/peers';
import { makeImage, ociImageArchive } from '../unit/archive/import-fixtures';

jest.setTimeout(180_000);

const HAVE = () => requirePeer('docker-registry');

describe('pull killed while unpacking', () => {
  let dir: string;
  let reg: string;

  beforeAll(async () => {
    if (!HAVE()) return;
    dir = tmpDir('imgtool-pull-kill-');
    reg = await startRegistry(path.join(dir, 'reg'));
  });
  afterAll(async () => {
    if (!dir) return;
    await stopRegistry(path.join(dir, 'reg')).catch(() => undefined);
    rmrf(dir);
  });

  it('SIGKILL during unpack: no name registered, tmp swept by the next command, fsck clean, pull again works', async () => {
    if (!HAVE()) return;
    const src = path.join(dir, 'src');
    const ref = `${reg}/kill:1`;
    const archive = path.join(dir, 'big.tar');
    fs.writeFileSync(archive, ociImageArchive(makeImage({ layers: [slowUnpackLayer()] }), ref));
    expect((await runCli(['load', '-i', archive, '--no-unpack'], { root: src })).code).toBe(0);
    const pushed = await runCli(['push', ref, '--insecure'], { root: src });
    expect(pushed.stderr).toBe('');
    expect(pushed.code).toBe(0);

    const root = path.join(dir, 'dst');
    const tmp = snapshotTmp(root);
    const { killed, pid } = await killWhileUnpacking(['pull', ref, '--insecure'], root);
    expect(killed).toBe(true);
    await expectKilledLeftNothing(root, pid);
    const again = await runCli(['pull', ref, '--insecure'], { root });
    expect(again.stderr).toBe('');
    expect(again.code).toBe(0);
    expect(JSON.parse((await runCli(['images', '--json'], { root })).stdout).map((i: { name: string }) => i.name)).toEqual([ref]);
    expect(fs.readdirSync(tmp)).toEqual([]);
  });
});
