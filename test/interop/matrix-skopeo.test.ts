/**
 * Interop matrix (issue 7), skopeo side, through the built CLI and the real skopeo 1.9:
 * - imgtool save → `skopeo copy docker-archive:F:NAME oci:DIR:TAG` and
 *   `skopeo copy oci-archive:F:NAME oci:DIR:TAG` → the same config digests and diffIDs imgtool
 *   reports (`ls-archive --json`) and the builder made; the diffIDs are also recomputed from the
 *   layer bytes skopeo wrote.
 * - skopeo outputs (a docker-archive with several tags, docker-archives of zstd/multi-platform
 *   images, an oci-archive of a whole index, a skopeo OCI layout with tag-only ref.names) →
 *   imgtool load → imgtool save → imgtool verify --strict.
 *
 * skopeo facts the assertions rely on (skopeo 1.9, containers/image 5.23):
 * - converting a Docker schema2 image to OCI (`docker-archive:` → `oci:` by default) re-serialises
 *   the config, so its digest changes; `--format v2s2` keeps the config bytes (and an OCI layout
 *   may hold a schema2 manifest). Both copies are checked: v2s2 for the config digest, the
 *   converted one for the diffIDs.
 * - its OCI transport only looks at index.json entries of OCI media types, so the Docker-typed
 *   images (base, gz1) are read through `docker-archive:` only.
 */
import * as path from 'node:path';
import { rmrf, tmpDir } from '../helpers/cli';
import { requirePeer } from '../helpers/peers';
import { closure } from '../../src/builder';
import {
  FixtureImage, MatrixFixtures, buildMatrixFixtures, imgtool, imgtoolJson, layoutEntry, layoutImage, layoutLayerDiffIds, readLayoutBlob, run,
} from './matrix-fixtures';

const HAVE = (): boolean => requirePeer('skopeo', 'zstd');

interface Listing {
  images: Array<{ names: string[]; digest: string; platforms: string[]; partial: boolean; manifests: Array<{ digest: string; platform?: string; attestation: boolean; config: { digest: string }; layers: Array<{ diffId?: string }> }> }>;
}

/** Familiar tag as docker-archive's manifest.json RepoTags has it. */
const familiar = (n: string) => n.replace(/^docker\.io\/library\//, '');

/** Run async jobs two at a time (2-core machine). */
async function pairwise<T>(items: T[], fn: (x: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  await Promise.all([0, 1].map(async () => {
    for (let x = queue.shift(); x !== undefined; x = queue.shift()) await fn(x);
  }));
}

describe('interop matrix: imgtool ⇄ skopeo', () => {
  let dir: string;
  let fx: MatrixFixtures;
  let all: string;
  let listing: Listing;

  beforeAll(async () => {
    if (!HAVE()) return;
    dir = tmpDir('imx-s-');
    fx = await buildMatrixFixtures(dir);
    all = path.join(dir, 'all.tar');
    await imgtool(fx.root, ['save', '-o', all, ...fx.names]);
    listing = await imgtoolJson<Listing>(fx.root, ['ls-archive', all]);
  });

  afterAll(() => {
    if (dir) rmrf(dir);
  });

  /** What imgtool's ls-archive says about `name`'s host manifest. */
  function reported(img: FixtureImage, name: string): { configDigest: string; diffIds: string[] } {
    const i = listing.images.find((x) => x.names.includes(name));
    if (!i) throw new Error(`ls-archive does not list ${name}`);
    const m = i.manifests.find((x) => x.digest === img.host.digest);
    if (!m) throw new Error(`ls-archive: ${name} has no manifest ${img.host.digest}`);
    return { configDigest: m.config.digest, diffIds: m.layers.map((l) => l.diffId!) };
  }

  const want = (img: FixtureImage) => ({ configDigest: img.host.configDigest, diffIds: img.host.diffIds });

  it('docker-archive: → oci: gives the config digests and diffIDs imgtool reports, for every name', async () => {
    if (!HAVE()) return;
    const cases = Object.values(fx.images).flatMap((img) => img.names.map((name) => ({ img, name })));
    const v2s2 = path.join(dir, 'from-docker-v2s2');
    const conv = path.join(dir, 'from-docker-oci');
    // One layout per job (skopeo's oci: destination is not safe for concurrent writers).
    await pairwise(cases, async ({ img, name }) => {
      const tag = name.replace(/[^a-z0-9]+/g, '-');
      const src = `docker-archive:${all}:${familiar(name)}`;
      await run('skopeo', ['copy', '--quiet', '--format', 'v2s2', src, `oci:${v2s2}-${tag}:${tag}`]);
      await run('skopeo', ['copy', '--quiet', src, `oci:${conv}-${tag}:${tag}`]);
      expect(reported(img, name)).toEqual(want(img));
      const kept = layoutImage(`${v2s2}-${tag}`, tag);
      expect({ name, configDigest: kept.configDigest, diffIds: kept.diffIds }).toEqual({ name, ...want(img) });
      const converted = layoutImage(`${conv}-${tag}`, tag);
      expect({ name, diffIds: converted.diffIds }).toEqual({ name, diffIds: img.host.diffIds });
      // the layer bytes skopeo read out of imgtool's archive really are those diffIDs
      expect({ name, layers: layoutLayerDiffIds(`${conv}-${tag}`, converted.manifest) }).toEqual({ name, layers: img.host.diffIds });
    });
  });

  it('oci-archive: → oci: keeps manifests, configs and diffIDs (OCI-typed images; --all keeps the whole index)', async () => {
    if (!HAVE()) return;
    const layout = path.join(dir, 'from-oci');
    for (const key of ['multi', 'zst', 'plain', 'bzstd'] as const) {
      const img = fx.images[key];
      // keep uncompressed layers uncompressed, so that the manifest digest must survive too
      await run('skopeo', ['copy', '--quiet', '--dest-oci-accept-uncompressed-layers', `oci-archive:${all}:${img.names[0]}`, `oci:${layout}:${key}`]);
      const got = layoutImage(layout, key);
      expect({ key, manifest: got.manifest, configDigest: got.configDigest, diffIds: got.diffIds }).toEqual({ key, manifest: img.host.digest, ...want(img) });
      expect(reported(img, img.names[0])).toEqual(want(img));
      expect({ key, layers: layoutLayerDiffIds(layout, got.manifest) }).toEqual({ key, layers: img.host.diffIds });
    }
    await run('skopeo', ['copy', '--quiet', '--all', `oci-archive:${all}:docker.io/library/multi:1`, `oci:${layout}:multi-all`]);
    expect(layoutEntry(layout, 'multi-all').digest).toBe(fx.images.multi.target.digest);
    for (const d of closure(fx.blobs, fx.images.multi.target)) readLayoutBlob(layout, d.digest); // every platform's and attestation's blob, digest-checked
  });

  it('skopeo outputs → imgtool load → save → verify --strict', async () => {
    if (!HAVE()) return;
    const src = path.join(dir, 'src-layout');
    await run('skopeo', ['copy', '--quiet', '--all', `oci-archive:${all}:docker.io/library/multi:1`, `oci:${src}:multi`]);
    await run('skopeo', ['copy', '--quiet', `oci-archive:${all}:docker.io/library/zst:1`, `oci:${src}:zst`]);
    await run('skopeo', ['copy', '--quiet', '--dest-oci-accept-uncompressed-layers', `oci-archive:${all}:docker.io/library/plain:1`, `oci:${src}:plain`]);
    await run('skopeo', ['copy', '--quiet', `docker-archive:${all}:base:1`, `oci:${src}:base`]);

    const out = (n: string) => path.join(dir, n);
    // a docker-archive with several tags; a docker-archive of the zstd image
    await run('skopeo', ['copy', '--quiet', `oci:${src}:plain`, `docker-archive:${out('plain-tags.tar')}:docker.io/library/plain:1`, '--additional-tag', 'example.com/x/plain:2', '--additional-tag', 'plain:3']);
    // (skopeo cannot convert a zstd OCI manifest to Docker: it reads the zstd image from imgtool's docker-archive)
    await run('skopeo', ['copy', '--quiet', `docker-archive:${all}:zst:1`, `docker-archive:${out('zst.tar')}:zst:1`]);
    // oci-archives: a whole index (with attestations), a zstd image
    await run('skopeo', ['copy', '--quiet', '--all', `oci:${src}:multi`, `oci-archive:${out('multi-all.tar')}:docker.io/library/multi:1`]);
    await run('skopeo', ['copy', '--quiet', `oci:${src}:zst`, `oci-archive:${out('zst-oci.tar')}:example.com/zst:oci`]);
    // skopeo's whole OCI layout (tag-only ref.names) as a tar
    await run('tar', ['-C', src, '-cf', out('layout.tar'), '.']);

    const root = path.join(dir, 'store-from-skopeo');
    type Loaded = { images: Array<{ names: string[]; digest: string; platforms: string[]; partial: boolean }> };
    const load = async (file: string, ...extra: string[]) => (await imgtoolJson<Loaded>(root, ['load', '-i', out(file), ...extra])).images;
    const names = (imgs: Loaded['images']) => imgs.flatMap((i) => i.names).sort();

    // two loads at a time into the same store
    const [plainTags, zst, multi, zo] = await Promise.all([load('plain-tags.tar'), load('zst.tar')]).then(async (a) => [...a, ...(await Promise.all([load('multi-all.tar'), load('zst-oci.tar')]))]);
    expect(names(plainTags)).toEqual(['docker.io/library/plain:1', 'docker.io/library/plain:3', 'example.com/x/plain:2']);
    expect(names(zst)).toEqual(['docker.io/library/zst:1']);
    expect(multi).toEqual([expect.objectContaining({ names: ['docker.io/library/multi:1'], digest: fx.images.multi.target.digest, partial: false })]);
    expect(multi[0].platforms).toHaveLength(fx.images.multi.manifests.length);
    expect(zo).toEqual([expect.objectContaining({ names: ['example.com/zst:oci'], digest: fx.images.zst.target.digest })]);
    const lay = await load('layout.tar', '--base-name', 'example.com/skopeo');
    expect(names(lay)).toEqual(['example.com/skopeo:base', 'example.com/skopeo:multi', 'example.com/skopeo:plain', 'example.com/skopeo:zst']);
    expect(lay.find((i) => i.names[0] === 'example.com/skopeo:multi')!.digest).toBe(fx.images.multi.target.digest);

    // saved again, everything verifies; configs and diffIDs are still the originals
    const all2 = path.join(dir, 'from-skopeo-saved.tar');
    const every = [
      'docker.io/library/plain:1', 'docker.io/library/plain:3', 'example.com/x/plain:2', 'docker.io/library/zst:1',
      'docker.io/library/multi:1', 'example.com/zst:oci', 'example.com/skopeo:base', 'example.com/skopeo:multi', 'example.com/skopeo:plain', 'example.com/skopeo:zst',
    ];
    await imgtool(root, ['save', '-o', all2, ...every]);
    const v = await imgtoolJson<{ ok: boolean; problems: string[]; images: Array<{ names: string[] }> }>(root, ['verify', '--strict', all2]);
    expect(v.problems).toEqual([]);
    expect(v.ok).toBe(true);
    expect(v.images.flatMap((i) => i.names).sort()).toEqual([...every].sort());
    const l2 = await imgtoolJson<Listing>(root, ['ls-archive', all2]);
    const expectFor: Record<string, FixtureImage> = {
      'docker.io/library/plain:1': fx.images.plain, 'docker.io/library/zst:1': fx.images.zst,
      'docker.io/library/multi:1': fx.images.multi, 'example.com/zst:oci': fx.images.zst, 'example.com/skopeo:base': fx.images.base,
      'example.com/skopeo:plain': fx.images.plain,
    };
    for (const [name, img] of Object.entries(expectFor)) {
      const i = l2.images.find((x) => x.names.includes(name))!;
      const m = i.manifests.find((x) => !x.attestation && (x.platform === undefined || x.platform === img.host.platform.split('/').slice(0, 2).join('/')))!;
      const diffIds = m.layers.map((l) => l.diffId);
      expect({ name, diffIds }).toEqual({ name, diffIds: img.host.diffIds });
      // skopeo keeps the config bytes except when it converts a Docker config to OCI (skopeo:base)
      if (name !== 'example.com/skopeo:base') expect({ name, config: m.config.digest }).toEqual({ name, config: img.host.configDigest });
    }
  });
});
