import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { Store } from '../../src/store';
import { rawTar } from '../../src/builder/raw';
import { runCli, tmpDir, rmrf } from '../helpers/cli';
import { putImage } from '../unit/snapshots/helpers';

let root: string;
let out: string;

beforeAll(async () => {
  root = tmpDir('imgtool-cli-snap-');
  out = tmpDir('imgtool-cli-snap-out-');
  const store = Store.open(root);
  try {
    await putImage(store, 'example.com/app:1', [
      rawTar([{ name: 'etc/', type: 'dir' }, { name: 'etc/os', data: 'base\n' }, { name: 'bin/', type: 'dir' }, { name: 'bin/sh', data: '#!', mode: 0o755 }, { name: 'var/', type: 'dir' }, { name: 'run/', type: 'dir' }, { name: 'var/run', type: 'symlink', linkname: '/run' }]),
      rawTar([{ name: 'etc/os', data: 'upper\n' }, { name: 'bin/.wh.sh', data: '' }, { name: 'var/run/app.pid', data: '1' }, { name: 'etc/hard', type: 'hardlink', linkname: 'etc/os' }]),
    ]);
  } finally {
    store.close();
  }
});
afterAll(() => {
  rmrf(root);
  rmrf(out);
});

const tarList = (f: string) => execFileSync('tar', ['-tvf', f]).toString();

describe('unpack / snapshots / export-rootfs', () => {
  it('export-rootfs works before unpack and commits nothing', async () => {
    const f = path.join(out, 'pre.tar');
    const r = await runCli(['export-rootfs', 'example.com/app:1', '-o', f], { root });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/layers applied/);
    expect(tarList(f)).toMatch(/run\/app\.pid/);
    const s = await runCli(['snapshots', '--json'], { root });
    expect(JSON.parse(s.stdout)).toEqual([]);
  });

  it('unpack creates the chain; snapshots lists it with the image', async () => {
    const r = await runCli(['unpack', 'example.com/app:1'], { root });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^applied sha256:[0-9a-f]{12} layer 1\/2/m);
    expect(r.stdout).toMatch(/unpacked example\.com\/app:1 .*sha256:[0-9a-f]{64}/);
    const again = await runCli(['unpack', 'example.com/app:1', '--json'], { root });
    expect(JSON.parse(again.stdout).layers.map((l: { applied: boolean }) => l.applied)).toEqual([false, false]);
    const s = JSON.parse((await runCli(['snapshots', '--json'], { root })).stdout);
    expect(s).toHaveLength(2);
    expect(s[1].parent).toBe(s[0].chainId);
    expect(s.every((x: { images: string[]; reproducible: boolean }) => x.images[0] === 'example.com/app:1' && x.reproducible)).toBe(true);
    const plain = await runCli(['snapshots'], { root });
    expect(plain.stdout).toMatch(/CHAINID/);
  });

  it('export-rootfs from snapshots: tar file, stdout and directory', async () => {
    const f = path.join(out, 'rootfs.tar');
    const r = await runCli(['export-rootfs', 'example.com/app:1', '-o', f], { root });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/from snapshots/);
    const list = tarList(f);
    expect(list).toMatch(/etc\/os link to etc\/hard/);
    expect(list).not.toMatch(/bin\/sh/);
    expect(list).toMatch(/var\/run -> \/run/);
    const so = path.join(out, 'stdout.tar');
    const r2 = await runCli(['export-rootfs', 'example.com/app:1', '-o', '-'], { root, stdoutFile: so });
    expect(r2.code).toBe(0);
    expect(fs.readFileSync(so).equals(fs.readFileSync(f))).toBe(true);
    const d = path.join(out, 'dir');
    const r3 = await runCli(['export-rootfs', 'example.com/app:1', '--dir', d], { root });
    expect(r3.code).toBe(0);
    expect(fs.readFileSync(path.join(d, 'etc/os'), 'utf8')).toBe('upper\n');
    expect(fs.readlinkSync(path.join(d, 'var/run'))).toBe('/run');
    expect(fs.readFileSync(path.join(d, 'run/app.pid'), 'utf8')).toBe('1');
    expect(fs.existsSync(path.join(d, 'bin/sh'))).toBe(false);
    expect(fs.statSync(path.join(d, 'etc/hard')).ino).toBe(fs.statSync(path.join(d, 'etc/os')).ino);
    const r4 = await runCli(['export-rootfs', 'example.com/app:1', '--dir', d], { root });
    expect(r4.code).not.toBe(0);
    expect(r4.stderr).toMatch(/^imgtool: error: .*must be an empty directory/);
  });

  it('errors are one clear line', async () => {
    const r = await runCli(['unpack', 'example.com/nope:1'], { root });
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/imgtool: error: image .*not found/);
    const r2 = await runCli(['export-rootfs', 'example.com/app:1'], { root });
    expect(r2.code).not.toBe(0);
  });
});
