/**
 * imgtool save -> `podman load` (Debian's podman 4.3, isolated storage from podman-env.sh): every
 * save case of docker-fixtures. For each image podman lists: its ID (config digest), RootFS.Layers
 * (diffIDs) and the /app tree of `podman image mount` equal the fixture's. What podman cannot read
 * (an OCI archive of more than one image) is asserted as a loud failure, never a silent success.
 * Expected outcomes: works-with.json (IMGTOOL_WORKS_WITH_RECORD=1 records them).
 */
import * as path from 'node:path';
import { requirePeer, peerMissing, podmanEnv, podman } from '../helpers/peers';
import { tmpDir, rmrf } from '../helpers/cli';
import { scanTree } from './matrix-fixtures';
import {
  buildDockerFixtures, DkFixtures, EngineDriver, runCase, saveCases, matchesExpected, recordObserved, worksWith, treeLines,
} from './docker-fixtures';

const HAVE = () => requirePeer('podman');
const CASES = saveCases('podman');

describe('imgtool save -> podman load', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let fx: DkFixtures;
  const observed: Record<string, string> = {};
  let version = '';

  beforeAll(async () => {
    if (peerMissing('podman')) return;
    dir = tmpDir('imgtool-podman-load-');
    [fx, env] = await Promise.all([buildDockerFixtures(dir), podmanEnv(path.join(dir, 'podman'))]);
    version = JSON.parse(await podman(env, ['version', '--format', 'json'])).Client.Version;
  }, 180000);
  afterAll(async () => {
    recordObserved('podman', version, observed);
    if (env) await podman(env, ['system', 'reset', '--force']).catch(() => undefined);
    fx?.store.close();
    if (dir) rmrf(dir);
  }, 60000);

  const eng = (): EngineDriver => ({
    peer: 'podman',
    version: async () => version,
    clean: async () => void (await podman(env, ['rmi', '--all', '--force'])),
    load: async (file) => void (await podman(env, ['load', '-i', file])),
    names: async () => (await podman(env, ['images', '--format', '{{.Repository}}:{{.Tag}}'])).split('\n').filter(Boolean),
    inspect: async (name) => {
      const j = JSON.parse(await podman(env, ['image', 'inspect', name]))[0];
      return { id: `sha256:${j.Id}`, diffIds: j.RootFS.Layers };
    },
    tree: async (name) => {
      const mnt = (await podman(env, ['image', 'mount', name])).trim();
      try {
        return treeLines(scanTree(mnt));
      } finally {
        await podman(env, ['image', 'unmount', name]);
      }
    },
  });

  it('is the podman version works-with.json describes', async () => {
    if (!HAVE()) return;
    expect(version).toBe(worksWith().peers.podman.version);
  });

  it.each(CASES.map((c) => [c.id, c] as const))('%s', async (_id, c) => {
    if (!HAVE()) return;
    const r = await runCase(fx, eng(), c, dir);
    observed[c.id] = r.outcome;
    const expected = worksWith().table.podman?.[c.id];
    if (!process.env.IMGTOOL_WORKS_WITH_RECORD) expect({ id: c.id, outcome: r.outcome, ok: matchesExpected(r.outcome, expected) }).toEqual({ id: c.id, outcome: r.outcome, ok: true });
    const notLoaded = r.outcome.startsWith('fails') ? [] : c.images.filter((k) => !r.loaded.includes(k));
    for (const k of notLoaded) expect(r.warnings.join('\n')).toContain(fx.images[k].name);
    if (c.set === 'multi' && c.format === 'docker') expect(r.leftOut.length).toBeGreaterThan(0);
  }, 120000);
});
