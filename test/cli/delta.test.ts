/**
 * Delta archives through the CLI (issue 14): `have` on the receiver, `save --have` /
 * `save --exclude` on the sender, `load` of the delta, `verify` / `verify --have`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Store } from '../../src';
import { runCli, tmpDir, rmrf } from '../helpers/cli';
import { addImage, FixtureImage } from '../unit/archive/export-fixtures';

describe('delta archives (CLI)', () => {
  let dir: string;
  let src: string;
  let dst: string;
  let base: FixtureImage;
  const f = (n: string) => path.join(dir, n);
  beforeAll(async () => {
    dir = tmpDir('imgtool-delta-cli-');
    src = f('src');
    dst = f('dst');
    const s = Store.open(src);
    try {
      base = await addImage(s, { layers: [{ 'bin/sh': 'shell' }, { 'etc/os-release': 'base' }], label: 'base' });
      s.images.put('docker.io/library/base:1', base.manifest);
      const app = await addImage(s, { baseLayers: base.layers, layers: [{ 'app/run': 'v1' }], label: 'app' });
      s.images.put('docker.io/library/app:1', app.manifest);
    } finally {
      s.close();
    }
    expect((await runCli(['save', '-o', f('base.tar'), 'base:1'], { root: src })).code).toBe(0);
    expect((await runCli(['load', '-i', f('base.tar'), '--no-unpack'], { root: dst })).code).toBe(0);
  });
  afterAll(() => rmrf(dir));

  it('have -> save --have -> verify (--have) -> load: the delta completes A, and a full save of A matches the source', async () => {
    const h = await runCli(['have', '-o', f('have.json')], { root: dst });
    expect(h.code).toBe(0);
    const inv = JSON.parse(fs.readFileSync(f('have.json'), 'utf8'));
    expect(inv.format).toBe('imgtool-have');
    const out = await runCli(['have'], { root: dst });
    expect(out.stdout).toBe(fs.readFileSync(f('have.json'), 'utf8'));

    const s = await runCli(['save', '-o', f('delta.tar'), 'app:1', '--have', f('have.json')], { root: src });
    expect(s.code).toBe(0);
    expect(s.stdout).toMatch(/delta: left out 2 blob\(s\)/);

    const v = await runCli(['verify', f('delta.tar')]);
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/delta: holds 3 blob\(s\); expects the receiver to hold 2/);
    for (const l of base.layers) expect(v.stdout).toContain(`expects ${l.desc.digest}`);
    expect((await runCli(['verify', '--have', f('have.json'), f('delta.tar')])).code).toBe(0);
    fs.writeFileSync(f('short.json'), JSON.stringify({ ...inv, blobs: inv.blobs.filter((b: { digest: string }) => b.digest !== base.layers[0].desc.digest) }));
    const bad = await runCli(['verify', '--have', f('short.json'), f('delta.tar')]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain(base.layers[0].desc.digest);

    const empty = await runCli(['load', '-i', f('delta.tar')], { root: f('empty') });
    expect(empty.code).not.toBe(0);
    expect(empty.stderr).toMatch(/imgtool: error: delta archive .* 2 blob\(s\) it leaves out are not in the store/);
    expect((await runCli(['images', '--json'], { root: f('empty') })).stdout.trim()).toBe('[]');

    const l = await runCli(['load', '-i', f('delta.tar')], { root: dst });
    expect(l.code).toBe(0);
    expect(l.stdout).toContain('loaded docker.io/library/app:1');
    expect((await runCli(['save', '-o', f('a-dst.tar'), 'app:1'], { root: dst })).code).toBe(0);
    expect((await runCli(['save', '-o', f('a-src.tar'), 'app:1'], { root: src })).code).toBe(0);
    expect(fs.readFileSync(f('a-dst.tar')).equals(fs.readFileSync(f('a-src.tar')))).toBe(true);
  });

  it('save --exclude BASE gives the same bytes as --have', async () => {
    expect((await runCli(['save', '-o', f('ex.tar'), 'app:1', '--exclude', 'base:1'], { root: src })).code).toBe(0);
    expect((await runCli(['save', '-o', f('hv.tar'), 'app:1', '--have', f('have.json')], { root: src })).code).toBe(0);
    expect(fs.readFileSync(f('ex.tar')).equals(fs.readFileSync(f('hv.tar')))).toBe(true);
  });
});
