/**
 * imgtool save -> `docker load` (Debian's docker.io 20.10 with an isolated dockerd): every save
 * case of docker-fixtures (format × compression × {one, two, multi-platform, --platform subset}).
 * For each image Docker lists: its ID (config digest), RootFS.Layers (diffIDs) and the /app tree
 * printed by a container (`--network none`) equal the fixture's. What Docker cannot read is
 * asserted as a loud failure and, where imgtool knows (zstd in manifest.json, platforms left out
 * of a Docker archive), as imgtool's warning too — never as a silent success. Expected outcomes: works-with.json (IMGTOOL_WORKS_WITH_RECORD=1 records them).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { requirePeer, peerMissing, startDockerd, stopDockerd, docker } from '../helpers/peers';
import { tmpDir, rmrf } from '../helpers/cli';
import {
  buildDockerFixtures, DkFixtures, EngineDriver, runCase, saveCases, matchesExpected, recordObserved, worksWith, TREE_SCRIPT, lines,
} from './docker-fixtures';

const HAVE = () => requirePeer('docker');
const CASES = saveCases('docker');

describe('imgtool save -> docker load', () => {
  let dir: string;
  let dk: string;
  let host: string;
  let fx: DkFixtures;
  const observed: Record<string, string> = {};
  let version = '';

  beforeAll(async () => {
    if (peerMissing('docker')) return;
    dir = tmpDir('imgtool-docker-load-');
    dk = fs.mkdtempSync('/tmp/dk-');
    [fx, host] = await Promise.all([buildDockerFixtures(dir), startDockerd(dk)]);
    version = (await docker(host, ['version', '--format', '{{.Server.Version}}'])).trim();
  }, 180000);
  afterAll(async () => {
    if (dk) await stopDockerd(dk);
    recordObserved('docker', version, observed);
    fx?.store.close();
    if (dir) rmrf(dir);
    if (dk) rmrf(dk);
  }, 60000);

  const eng = (): EngineDriver => ({
    peer: 'docker',
    version: async () => version,
    clean: async () => {
      const ids = (await docker(host, ['images', '-q'])).split('\n').filter(Boolean);
      if (ids.length) await docker(host, ['rmi', '-f', ...new Set(ids)]);
    },
    load: async (file) => void (await docker(host, ['load', '-i', file])),
    names: async () => (await docker(host, ['images', '--format', '{{.Repository}}:{{.Tag}}'])).split('\n').filter(Boolean),
    inspect: async (name) => {
      const j = JSON.parse(await docker(host, ['image', 'inspect', name]))[0];
      return { id: j.Id, diffIds: j.RootFS.Layers };
    },
    // runc itself: the default runtime (a wrapper for --privileged in sandboxes) costs ~8 s a start
    tree: async (name) => lines(await docker(host, ['run', '--rm', '--network', 'none', '--runtime', 'runc', name, '/bin/sh', '-c', TREE_SCRIPT])),
  });

  it('is the docker version works-with.json describes', async () => {
    if (!HAVE()) return;
    expect(version.split('+')[0]).toBe(worksWith().peers.docker.version);
  });

  it.each(CASES.map((c) => [c.id, c] as const))('%s', async (_id, c) => {
    if (!HAVE()) return;
    const r = await runCase(fx, eng(), c, dir);
    observed[c.id] = r.outcome;
    const expected = worksWith().table.docker?.[c.id];
    if (!process.env.IMGTOOL_WORKS_WITH_RECORD) expect({ id: c.id, outcome: r.outcome, ok: matchesExpected(r.outcome, expected) }).toEqual({ id: c.id, outcome: r.outcome, ok: true });
    // never silence: an image the archive holds that Docker did not load is named by imgtool's
    // warnings (zstd left out of manifest.json, a platform left out) or Docker fails loudly
    const notLoaded = r.outcome.startsWith('fails') ? [] : c.images.filter((k) => !r.loaded.includes(k));
    for (const k of notLoaded) expect(r.warnings.join('\n')).toContain(fx.images[k].name);
    if (c.set === 'multi' && c.format === 'docker') expect(r.leftOut.length).toBeGreaterThan(0);
    // and a zstd image in manifest.json, which Docker 20.10 fails on, was warned about by imgtool
    if (c.format === 'oci+docker' && (c.compression === 'zstd' || c.images.includes('zst'))) {
      expect(r.warnings.join('\n')).toMatch(/manifest\.json names zstd layer .*which Docker before 23 cannot load/);
    }
  }, 120000);
});
