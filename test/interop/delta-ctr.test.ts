/**
 * A delta archive (issue 14) imports into a containerd that already holds the omitted blobs:
 * `ctr images import` of the full base, then of `imgtool save --have` / `--exclude` of the app,
 * then `ctr images check` says complete. Into a containerd without the base, the import leaves
 * the app incomplete (ctr has no way to refuse it) — which is why imgtool's own load refuses.
 */
import * as path from 'node:path';
import { Store } from '../../src';
import { runCli, tmpDir, rmrf } from '../helpers/cli';
import { requirePeer, startContainerd, stopContainerd, ctr } from '../helpers/peers';
import { parseImagesCheck } from '../../src/kind/ctr';
import { addImage } from '../unit/archive/export-fixtures';

const HAVE = requirePeer('containerd');

describe('delta archives into containerd (ctr 1.6)', () => {
  let dir: string;
  let src: string;
  let sock: string;
  const f = (n: string) => path.join(dir, n);
  beforeAll(async () => {
    if (!HAVE) return;
    dir = tmpDir('imgtool-delta-ctr-');
    src = f('src');
    const s = Store.open(src);
    try {
      const base = await addImage(s, { layers: [{ 'bin/sh': 'shell' }, { 'etc/os-release': 'base' }], label: 'base' });
      s.images.put('docker.io/library/base:1', base.manifest);
      const app = await addImage(s, { baseLayers: base.layers, layers: [{ 'app/run': 'v1' }], label: 'app' });
      s.images.put('docker.io/library/app:1', app.manifest);
    } finally {
      s.close();
    }
    sock = await startContainerd(f('ctd'));
    for (const [n, args] of [['base.tar', ['base:1']], ['app.tar', ['app:1']]] as const) {
      expect((await runCli(['save', '-o', f(n), ...args], { root: src })).code).toBe(0);
    }
    // The receiver's inventory: a store holding the base.
    expect((await runCli(['load', '--no-unpack', '-i', f('base.tar')], { root: f('recv') })).code).toBe(0);
    expect((await runCli(['have', '-o', f('have.json')], { root: f('recv') })).code).toBe(0);
    expect((await runCli(['save', '-o', f('delta-have.tar'), 'app:1', '--have', f('have.json')], { root: src })).code).toBe(0);
    expect((await runCli(['save', '-o', f('delta-excl.tar'), 'app:1', '--exclude', 'base:1'], { root: src })).code).toBe(0);
  });
  afterAll(async () => {
    if (!HAVE || !dir) return;
    await stopContainerd(f('ctd')).catch(() => undefined);
    rmrf(dir);
  });

  const check = async (ns: string) => parseImagesCheck(await ctr(sock, ['images', 'check'], { namespace: ns }));

  it.each([['--have', 'delta-have.tar'], ['--exclude', 'delta-excl.tar']])('delta made with %s completes the app after the base', async (_flag, file) => {
    if (!HAVE) return;
    const ns = `d-${file.replace(/\W/g, '')}`;
    await ctr(sock, ['images', 'import', '--no-unpack', '--all-platforms', f('base.tar')], { namespace: ns });
    await ctr(sock, ['images', 'import', '--no-unpack', '--all-platforms', f(file)], { namespace: ns });
    const rows = await check(ns);
    const app = rows.find((r) => r.name === 'docker.io/library/app:1');
    expect(app).toMatchObject({ status: 'complete', complete: true });
    // The same digest as a full archive of the app gives.
    await ctr(sock, ['images', 'import', '--no-unpack', '--all-platforms', f('app.tar')], { namespace: `${ns}-full` });
    const full = (await check(`${ns}-full`)).find((r) => r.name === 'docker.io/library/app:1');
    expect(app!.digest).toBe(full!.digest);
  });

  it('without the base, containerd is left with an incomplete app (imgtool load refuses instead)', async () => {
    if (!HAVE) return;
    const ns = 'nobase';
    await ctr(sock, ['images', 'import', '--no-unpack', '--all-platforms', f('delta-have.tar')], { namespace: ns }).catch(() => undefined);
    const app = (await check(ns)).find((r) => r.name === 'docker.io/library/app:1');
    if (app) expect(app.complete).toBe(false);
    const l = await runCli(['load', '-i', f('delta-have.tar')], { root: f('empty') });
    expect(l.code).not.toBe(0);
  });
});
