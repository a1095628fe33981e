/**
 * podman 4.3 / buildah 1.28 -> imgtool -> podman: `podman save` as docker-archive, oci-archive
 * and `-m` (two images, docker-archive) -> `imgtool load` -> `imgtool save` -> `podman load`
 * again gives the same image IDs (config digests) and diffIDs; and an image made by buildah
 * (from / run / commit on a base imgtool saved: a whiteout, an opaque dir, hard links) ->
 * `imgtool load` (unpack) -> `imgtool export-rootfs` equals `podman export` of a container from
 * that image, ignoring only what the engine adds to every container (ENGINE_PATHS).
 */
import * as path from 'node:path';
import { requirePeer, peerMissing, podmanEnv, podman, buildah } from '../helpers/peers';
import { tmpDir, rmrf } from '../helpers/cli';
import { imgtool, imgtoolJson } from './matrix-fixtures';
import { buildDockerFixtures, DkFixtures, expectSameExport, BUILD_STEP } from './docker-fixtures';

const HAVE = () => requirePeer('podman', 'buildah');
const ONE = 'docker.io/library/dk-one:1';
const TWO = 'docker.io/library/dk-two:1';
const BUILT = 'docker.io/library/dk-bah:1';

describe('podman save / buildah -> imgtool -> podman load', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let fx: DkFixtures;
  const ids: Record<string, { id: string; diffIds: string[] }> = {};
  const inspect = async (name: string) => {
    const j = JSON.parse(await podman(env, ['image', 'inspect', name]))[0];
    return { id: `sha256:${j.Id}`, diffIds: j.RootFS.Layers as string[] };
  };

  beforeAll(async () => {
    if (peerMissing('podman') || peerMissing('buildah')) return;
    dir = tmpDir('imgtool-podman-rt-');
    [fx, env] = await Promise.all([buildDockerFixtures(dir), podmanEnv(path.join(dir, 'podman'))]);
    // the base images come from imgtool (one OCI archive each: podman 4.3 reads one image per OCI archive)
    for (const n of [ONE, TWO]) {
      const f = path.join(dir, `base-${n.replace(/\W/g, '_')}.tar`);
      await imgtool(fx.root, ['save', '-o', f, '--format', 'oci', n]);
      await podman(env, ['load', '-i', f]);
    }
    const ctr = (await buildah(env, ['from', '--pull-never', ONE])).trim();
    await buildah(env, ['run', '--network', 'none', ctr, '--', '/bin/sh', '-c', BUILD_STEP]);
    await buildah(env, ['commit', '-q', ctr, BUILT]);
    await buildah(env, ['rm', ctr]);
    for (const n of [ONE, TWO, BUILT]) ids[n] = await inspect(n);
  }, 180000);
  afterAll(async () => {
    fx?.store.close();
    if (env) await podman(env, ['system', 'reset', '--force']).catch(() => undefined);
    if (dir) rmrf(dir);
  }, 60000);

  it('the images imgtool saved are what podman reports', () => {
    if (!HAVE()) return;
    expect(ids[ONE]).toEqual({ id: fx.images.one.id, diffIds: fx.images.one.diffIds });
    expect(ids[TWO]).toEqual({ id: fx.images.two.id, diffIds: fx.images.two.diffIds });
    expect(ids[BUILT].diffIds.slice(0, 3)).toEqual(fx.images.one.diffIds);
  });

  it.each([
    ['docker-archive', ['--format', 'docker-archive'], [BUILT]],
    ['oci-archive', ['--format', 'oci-archive'], [BUILT]],
    ['docker-archive -m (two images)', ['-m', '--format', 'docker-archive'], [ONE, TWO]],
  ])('podman save %s -> imgtool load -> imgtool save -> podman load: same IDs and diffIDs', async (what, args, names) => {
    if (!HAVE()) return;
    const key = what.replace(/\W+/g, '_');
    const root = path.join(dir, `rt-${key}`);
    const saved = path.join(dir, `podman-${key}.tar`);
    await podman(env, ['save', ...args, '-o', saved, ...names]);
    const loaded = await imgtoolJson(root, ['load', '--no-unpack', '-i', saved]);
    // podman writes only the tag as an OCI archive's ref.name: imgtool names it by that tag then
    const got = loaded.images.flatMap((i: { names: string[] }) => i.names).sort();
    expect(got).toHaveLength(names.length);
    const again = path.join(dir, `imgtool-${key}.tar`);
    const res = await imgtoolJson(root, ['save', '-o', again, ...got]);
    expect(res.warnings).toEqual([]);
    await podman(env, ['rmi', ...names]);
    await podman(env, ['load', '-i', again]);
    const listed = (await podman(env, ['images', '--format', '{{.Repository}}:{{.Tag}}'])).split('\n').filter(Boolean);
    for (const n of names) {
      const as = listed.find((l) => l === n || l.endsWith('/' + n.split('/').pop()));
      expect({ n, as }).toEqual({ n, as: expect.any(String) });
      expect(await inspect(as!)).toEqual(ids[n]);
      if (as !== n) await podman(env, ['tag', as!, n]);
    }
  });

  it('buildah from/run/commit (whiteout, opaque dir, hard links) -> imgtool load + export-rootfs equals podman export', async () => {
    if (!HAVE()) return;
    const root = path.join(dir, 'built');
    const saved = path.join(dir, 'built.tar');
    await podman(env, ['save', '--format', 'oci-archive', '-o', saved, BUILT]);
    const name = (await imgtoolJson(root, ['load', '-i', saved])).images[0].names[0];
    const mine = path.join(dir, 'built-imgtool');
    await imgtool(root, ['export-rootfs', '--dir', mine, name]);
    const cid = (await podman(env, ['create', BUILT, '/bin/sh'])).trim();
    await podman(env, ['export', '-o', path.join(dir, 'built-export.tar'), cid]);
    await podman(env, ['rm', cid]);
    await expectSameExport(mine, path.join(dir, 'built-export.tar'), dir);
  });
});
