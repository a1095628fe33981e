/**
 * Docker 20.10 -> imgtool -> Docker: `docker save` (one image, `docker save A B` of two) ->
 * `imgtool load` -> `imgtool save` -> `docker load` again gives the same image IDs (config
 * digests) and diffIDs; and an image made by `docker build` (a Dockerfile FROM a base imgtool
 * saved, with a RUN making a whiteout, an opaque dir and hard links) -> `imgtool load` (unpack)
 * -> `imgtool export-rootfs` equals `docker export` of a container from that image, ignoring
 * only what the engine adds to every container (ENGINE_PATHS).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { requirePeer, peerMissing, startDockerd, stopDockerd, docker } from '../helpers/peers';
import { tmpDir, rmrf } from '../helpers/cli';
import { imgtool, imgtoolJson } from './matrix-fixtures';
import { buildDockerFixtures, DkFixtures, expectSameExport, BUILD_STEP } from './docker-fixtures';

const HAVE = () => requirePeer('docker');

describe('docker save / docker build -> imgtool -> docker load', () => {
  let dir: string;
  let dk: string;
  let host: string;
  let fx: DkFixtures;
  const ids: Record<string, { id: string; diffIds: string[] }> = {};
  const inspect = async (name: string) => {
    const j = JSON.parse(await docker(host, ['image', 'inspect', name]))[0];
    return { id: j.Id as string, diffIds: j.RootFS.Layers as string[] };
  };

  beforeAll(async () => {
    if (peerMissing('docker')) return;
    dir = tmpDir('imgtool-docker-rt-');
    dk = fs.mkdtempSync('/tmp/dk-');
    [fx, host] = await Promise.all([buildDockerFixtures(dir), startDockerd(dk)]);
    // the base images come from imgtool, then Docker builds on one of them
    await imgtool(fx.root, ['save', '-o', path.join(dir, 'base.tar'), '--format', 'docker', fx.images.one.name, fx.images.two.name]);
    await docker(host, ['load', '-i', path.join(dir, 'base.tar')]);
    process.env.DOCKER_BUILDKIT = '0';
    await docker(host, ['build', '-q', '-t', 'dk-built:1', '-'], { input: `FROM dk-one:1\nRUN ${BUILD_STEP}\n` });
    for (const n of ['dk-one:1', 'dk-two:1', 'dk-built:1']) ids[n] = await inspect(n);
  }, 180000);
  afterAll(async () => {
    fx?.store.close();
    if (dk) await stopDockerd(dk);
    if (dir) rmrf(dir);
    if (dk) rmrf(dk);
  }, 60000);

  it('the images imgtool saved are what Docker reports', () => {
    if (!HAVE()) return;
    expect(ids['dk-one:1']).toEqual({ id: fx.images.one.id, diffIds: fx.images.one.diffIds });
    expect(ids['dk-two:1']).toEqual({ id: fx.images.two.id, diffIds: fx.images.two.diffIds });
    expect(ids['dk-built:1'].diffIds.slice(0, 3)).toEqual(fx.images.one.diffIds);
    expect(ids['dk-built:1'].diffIds).toHaveLength(4);
  });

  it.each([
    ['one image', ['dk-built:1']],
    ['two images (docker save A B)', ['dk-one:1', 'dk-two:1']],
  ])('docker save of %s -> imgtool load -> imgtool save -> docker load: same IDs and diffIDs', async (_what, names) => {
    if (!HAVE()) return;
    const key = names.join('+').replace(/[^a-z0-9+]/gi, '_');
    const root = path.join(dir, `rt-${key}`);
    const saved = path.join(dir, `docker-${key}.tar`);
    await docker(host, ['save', '-o', saved, ...names]);
    const loaded = await imgtoolJson(root, ['load', '--no-unpack', '-i', saved]);
    expect(loaded.images.flatMap((i: { names: string[] }) => i.names).sort()).toEqual(names.map((n) => `docker.io/library/${n}`).sort());
    const again = path.join(dir, `imgtool-${key}.tar`);
    const res = await imgtoolJson(root, ['save', '-o', again, ...names]);
    expect(res.warnings).toEqual([]);
    await docker(host, ['rmi', ...names]);
    await docker(host, ['load', '-i', again]);
    for (const n of names) expect(await inspect(n)).toEqual(ids[n]);
  });

  it('docker build (whiteout, opaque dir, hard links) -> imgtool load + export-rootfs equals docker export', async () => {
    if (!HAVE()) return;
    const root = path.join(dir, 'built');
    const saved = path.join(dir, 'built.tar');
    await docker(host, ['save', '-o', saved, 'dk-built:1']);
    await imgtool(root, ['load', '-i', saved]);
    const mine = path.join(dir, 'built-imgtool');
    await imgtool(root, ['export-rootfs', '--dir', mine, 'dk-built:1']);
    const cid = (await docker(host, ['create', '--network', 'none', 'dk-built:1', '/bin/sh'])).trim();
    await docker(host, ['export', '-o', path.join(dir, 'built-export.tar'), cid]);
    await docker(host, ['rm', cid]);
    const a = await expectSameExport(mine, path.join(dir, 'built-export.tar'), dir);
    expect(a.get('bin/busybox')?.size).toBe(fs.statSync('/bin/busybox').size);
  });
});
