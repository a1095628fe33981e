/**
 * Interop matrix (issue 7), umoci side: `imgtool unpack` (+ `export-rootfs --dir`, from the
 * snapshots) against `umoci unpack` of the same image, for the builder-made fixtures whose layers
 * carry whiteouts, an opaque dir, a dir replaced by a file, a symlink replaced by a file, a hard
 * link whose source is rewritten above it, setuid and non-root ownership — gzip (Docker, converted
 * to OCI by skopeo), zstd (umoci 0.4.7 cannot read zstd: skopeo re-compresses it to gzip, same
 * diffIDs), uncompressed, and the host image of a multi-platform index. The trees must be
 * identical: paths, types, modes, owners (as root; ignored with --rootless), symlink targets,
 * file contents, hard-link groups.
 * (test/interop/umoci-unpack.test.ts covers an image umoci itself built, through the library.)
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { rmrf, tmpDir } from '../helpers/cli';
import { requirePeer } from '../helpers/peers';
import { BASE_EXPECTED_PATHS, MatrixFixtures, buildMatrixFixtures, diffTrees, imgtool, imgtoolJson, layoutImage, run, scanTree, chainIds } from './matrix-fixtures';

const HAVE = (): boolean => requirePeer('umoci', 'skopeo');
const ROOTLESS = process.getuid?.() !== 0;

describe('interop matrix: imgtool unpack ⇄ umoci unpack', () => {
  let dir: string;
  let fx: MatrixFixtures;
  /** OCI layout dir per fixture key, and the tag to unpack. */
  const layouts: Record<string, { layout: string; tag: string }> = {};

  beforeAll(async () => {
    if (!HAVE()) return;
    dir = tmpDir('imx-u-');
    fx = await buildMatrixFixtures(dir);
    const all = path.join(dir, 'all.tar');
    await imgtool(fx.root, ['save', '-o', all, ...fx.names]);
    const layout = path.join(dir, 'layout');
    // base has Docker media types: skopeo's oci-archive: transport cannot pick it, docker-archive: can (and converts to OCI)
    await run('skopeo', ['copy', '--quiet', `docker-archive:${all}:base:1`, `oci:${layout}:base`]);
    await run('skopeo', ['copy', '--quiet', '--dest-oci-accept-uncompressed-layers', `oci-archive:${all}:docker.io/library/plain:1`, `oci:${layout}:plain`]);
    await run('skopeo', ['copy', '--quiet', `oci-archive:${all}:docker.io/library/multi:1`, `oci:${layout}:multi`]);
    // a fresh layout, so that skopeo cannot reuse the zstd blobs and must re-compress
    await run('skopeo', ['copy', '--quiet', '--dest-compress-format', 'gzip', `oci-archive:${all}:docker.io/library/zst:1`, `oci:${layout}-zst:zst`]);
    for (const k of ['base', 'plain', 'multi']) layouts[k] = { layout, tag: k };
    layouts.zst = { layout: `${layout}-zst`, tag: 'zst' };
  });

  afterAll(() => {
    if (dir) rmrf(dir);
  });

  it('the layouts umoci reads hold the fixtures (same configs and diffIDs; plain still uncompressed, zst as gzip)', () => {
    if (!HAVE()) return;
    for (const [key, { layout, tag }] of Object.entries(layouts)) {
      const img = fx.images[key as keyof MatrixFixtures['images']];
      const got = layoutImage(layout, tag);
      expect({ key, diffIds: got.diffIds }).toEqual({ key, diffIds: img.host.diffIds });
      if (key !== 'base') expect({ key, config: got.configDigest }).toEqual({ key, config: img.host.configDigest }); // skopeo re-serialises Docker configs
      if (key === 'plain') expect(got.layerMediaTypes).toEqual(['application/vnd.oci.image.layer.v1.tar', 'application/vnd.oci.image.layer.v1.tar']);
      if (key === 'zst') expect(got.layerMediaTypes.every((m) => m.endsWith('+gzip'))).toBe(true);
    }
  });

  for (const key of ['base', 'zst', 'plain', 'multi'] as const) {
    it(`${key}: imgtool unpack + export-rootfs equals umoci unpack`, async () => {
      if (!HAVE()) return;
      const img = fx.images[key];
      const { layout, tag } = layouts[key];
      const bundle = path.join(dir, `bundle-${key}`);
      const mine = path.join(dir, `mine-${key}`);
      const [, u] = await Promise.all([
        run('umoci', ['unpack', ...(ROOTLESS ? ['--rootless'] : []), '--image', `${layout}:${tag}`, bundle]),
        imgtoolJson<{ chainId: string; layers: unknown[] }>(fx.root, ['unpack', img.names[0]]),
      ]);
      expect(u.chainId).toBe(chainIds(img.host.diffIds).pop());
      expect(u.layers).toHaveLength(img.host.diffIds.length);
      const e = await imgtool(fx.root, ['export-rootfs', img.names[0], '--dir', mine]);
      expect(e.stdout).toContain('from snapshots');
      const theirs = scanTree(path.join(bundle, 'rootfs'));
      const ours = scanTree(mine);
      if (key === 'base') {
        // the comparison is about the interesting cases: they are in umoci's tree as expected
        expect([...theirs.keys()]).toEqual(BASE_EXPECTED_PATHS);
        expect(fs.readFileSync(path.join(bundle, 'rootfs', 'etc/hard'), 'utf8')).toBe('ID=matrix\nVERSION_ID=1\n');
        expect(theirs.get('usr/share/doc')!.type).toBe('file');
        expect(theirs.get('bin/sh')!.type).toBe('file');
        expect(theirs.get('usr/bin/su')!.mode).toBe(0o4755);
        expect(theirs.get('etc')!.mode).toBe(0o700);
        if (!ROOTLESS) expect([theirs.get('data/keep')!.uid, theirs.get('data/keep')!.gid]).toEqual([1000, 1000]);
      }
      if (key === 'plain') expect([...theirs.keys()]).toEqual(['srv', 'srv/index.html']);
      if (key === 'multi') expect([...theirs.keys()].filter((p) => p.startsWith('app'))).toEqual(['app', 'app/multi.txt']);
      if (key === 'zst') expect([...theirs.keys()]).toEqual(['app', 'app/bin', 'app/conf', 'app/data.bin']);
      expect({ image: key, differences: diffTrees(ours, theirs, { ignoreOwner: ROOTLESS }) }).toEqual({ image: key, differences: [] });
    });
  }
});
