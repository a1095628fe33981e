import * as fs from 'node:fs';
import * as path from 'node:path';
import { Store } from '../../src';
import { runCli, tmpDir, rmrf } from '../helpers/cli';
import { layer, makeImage } from '../unit/gc/fixture';

describe('imgtool fsck (CLI)', () => {
  let dir: string;
  let root: string;
  beforeEach(() => {
    dir = tmpDir('imgtool-fsck-cli-');
    root = path.join(dir, 'store');
  });
  afterEach(() => rmrf(dir));

  it('exit 0 on a healthy store; non-zero naming the damage; --repair reports the unrecoverable', async () => {
    const s = Store.open(root);
    const ls = [layer('f1'), layer('f2')];
    await makeImage(s, 'docker.io/library/fs:1', ls);
    s.close();
    const ok = await runCli(['fsck'], { root });
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/checked 4 blob\(s\) .* 0 snapshot\(s\), 1 image\(s\): 0 error\(s\), 0 orphan\(s\)/);

    const p = path.join(root, 'content', 'blobs', 'sha256', ls[1].digest.slice(7));
    fs.chmodSync(p, 0o644);
    fs.appendFileSync(p, 'x');
    const bad = await runCli(['fsck'], { root });
    expect(bad.code).not.toBe(0);
    expect(bad.stdout).toContain(`error: blob ${ls[1].digest}: size mismatch`);
    expect(bad.stderr).toMatch(/^imgtool: error: store check found 1 error\(s\); first: blob sha256:[a-f0-9]{64}: size mismatch.*fsck --repair/);

    const rep = await runCli(['fsck', '--repair', '--json'], { root });
    expect(rep.code).not.toBe(0);
    const j = JSON.parse(rep.stdout);
    expect(j.problems.map((x: { kind: string }) => x.kind).sort()).toEqual(['blob-corrupt', 'image-incomplete']);
    expect(j.problems.every((x: { unrecoverable?: boolean }) => x.unrecoverable)).toBe(true);
    expect(fs.existsSync(p)).toBe(false);
  });
});
