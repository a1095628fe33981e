/**
 * Interop matrix (issue 7), containerd side, through the built CLI and the real `ctr`/containerd
 * 1.6 (one isolated daemon for this file, one namespace per test):
 * - imgtool save → ctr import --no-unpack --all-platforms --digests → ctr images check complete →
 *   ctr images export → imgtool load: same manifest/index digests, names exact; then
 *   imgtool save → imgtool verify --strict.
 * - ctr's host-platform-only export → imgtool load: partial, same index digest; save → verify.
 * - imgtool save (oci+docker and --format docker) → ctr import WITH unpack (native snapshotter):
 *   complete and unpacked, snapshots keyed by the same chainIDs imgtool computes, and containerd's
 *   merged tree equals `imgtool export-rootfs` (whiteouts, opaque dirs, hard links, zstd).
 * - imgtool save --compression zstd / --format docker --compression gzip → ctr import with unpack.
 * - imgtool kind load of the shared-diffID images (other blobs, same diffIDs and config) into the
 *   live containerd after the base image: delta, complete, unpacked.
 * See matrix-fixtures.ts for the image set.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { rmrf, tmpDir } from '../helpers/cli';
import { requirePeer, startContainerd, stopContainerd, ctr } from '../helpers/peers';
import { parseImagesCheck, parseImagesLs, parseContentLs } from '../../src/kind/ctr';
import { closure } from '../../src/builder';
import { Manifest } from '../../src/images/types';
import {
  BASE_EXPECTED_PATHS, HOST_STR, MatrixFixtures, FixtureImage, buildMatrixFixtures, chainIds, diffTrees, imgtool, imgtoolJson,
  scanTree,
} from './matrix-fixtures';

interface Inspected {
  platforms: string[];
  absent: unknown[];
  manifests: Array<{ attestation: boolean; descriptor: { digest: string }; configPresent: boolean; layers: Array<{ present: boolean; diffId: string }> }>;
}
interface Verified {
  ok: boolean;
  images: Array<{ names: string[]; digest: string; platforms: string[]; partial: boolean }>;
}

// Missing containerd/ctr (or not root): one loud SKIP warning and every test returns early; under CI=true this throws.
const HAVE = (): boolean => requirePeer('containerd');

describe('interop matrix: imgtool ⇄ containerd (ctr 1.6)', () => {
  let dir: string;
  let fx: MatrixFixtures;
  let sock: string;
  /** imgtool save of every fixture name (default format oci+docker, compression keep). */
  let all: string;

  beforeAll(async () => {
    if (!HAVE()) return;
    dir = tmpDir('imx-c-');
    const [f, s] = await Promise.all([buildMatrixFixtures(dir), startContainerd(path.join(dir, 'ctd'))]);
    fx = f;
    sock = s;
    all = path.join(dir, 'all.tar');
    await imgtool(fx.root, ['save', '-o', all, ...fx.names]);
  });

  afterAll(async () => {
    if (!HAVE() || !dir) return;
    if (sock) await stopContainerd(path.join(dir, 'ctd')).catch(() => undefined);
    rmrf(dir);
  });

  const imgs = (): FixtureImage[] => Object.values(fx.images);
  const nameDigests = (): Array<[string, string]> => imgs().flatMap((i) => i.names.map((n) => [n, i.target.digest] as [string, string]));

  async function check(ns: string, snapshotter?: string) {
    return parseImagesCheck(await ctr(sock, ['images', 'check', ...(snapshotter ? ['--snapshotter', snapshotter] : [])], { namespace: ns }));
  }

  /**
   * Directory of containerd's committed native snapshot `chainId`: the source of the bind mount of a
   * read-only view, read in the same ctr call that creates the view (nothing holds the view, so
   * containerd's GC may remove it at any time; the committed snapshot stays, held by the image).
   */
  async function nativeSnapshotDir(ns: string, chainId: string, key: string): Promise<string> {
    const out = await ctr(sock, ['snapshots', '--snapshotter', 'native', 'view', '--mounts', key, chainId], { namespace: ns });
    const mounts = JSON.parse(out) as Array<{ Type: string; Source: string }>;
    if (mounts.length !== 1 || mounts[0].Type !== 'bind') throw new Error(`native snapshot ${chainId}: unexpected mounts ${out}`);
    await ctr(sock, ['snapshots', '--snapshotter', 'native', 'rm', key], { namespace: ns }).catch(() => undefined);
    return mounts[0].Source;
  }

  it('save → ctr import --no-unpack --all-platforms --digests → check complete → ctr export → load: same digests; save → verify', async () => {
    if (!HAVE()) return;
    const ns = 'roundtrip';
    await ctr(sock, ['images', 'import', '--no-unpack', '--all-platforms', '--digests', all], { namespace: ns });

    // names exactly as saved, each on its original digest; --digests adds import-DATE@DIGEST per digest
    const listed = parseImagesLs(await ctr(sock, ['images', 'ls'], { namespace: ns }));
    const named = listed.filter((i) => !i.name.includes('@'));
    expect(named.map((i) => [i.name, i.digest]).sort()).toEqual(nameDigests().sort());
    const byDigest = listed.filter((i) => i.name.includes('@')).map((i) => i.digest).sort();
    expect(byDigest).toEqual([...new Set(imgs().map((i) => i.target.digest))].sort());

    // every image complete; every blob of every platform (and attestation) is in containerd
    const rows = await check(ns);
    expect(rows.length).toBe(listed.length);
    for (const r of rows) expect({ name: r.name, status: r.status, complete: r.complete, all: r.total !== undefined && r.present === r.total }).toEqual({ name: r.name, status: 'complete', complete: true, all: true });
    const content = new Set(parseContentLs(await ctr(sock, ['content', 'ls'], { namespace: ns })).map((b) => b.digest));
    for (const i of imgs()) for (const d of closure(fx.blobs, i.target)) expect({ image: i.key, blob: d.digest, present: content.has(d.digest) }).toEqual({ image: i.key, blob: d.digest, present: true });

    // ctr export of every name (all platforms) → imgtool load into a fresh store: same names and digests
    const exported = path.join(dir, 'ctr-export.tar');
    await ctr(sock, ['images', 'export', '--all-platforms', exported, ...fx.names], { namespace: ns });
    const root2 = path.join(dir, 'store-from-ctr');
    const loaded = await imgtoolJson<{ images: Array<{ names: string[]; digest: string; partial: boolean }> }>(root2, ['load', '-i', exported]);
    expect(loaded.images.flatMap((l) => l.names.map((n) => [n, l.digest])).sort()).toEqual(nameDigests().sort());
    for (const l of loaded.images) expect({ names: l.names, partial: l.partial }).toEqual({ names: l.names, partial: false });

    // … every platform and attestation of the index is there; saved again, the archive verifies
    // strictly and lists the original names and digests
    const resaved = path.join(dir, 'resaved.tar');
    const [multi] = await Promise.all([
      imgtoolJson<Inspected>(root2, ['inspect', 'multi:1']),
      imgtool(root2, ['save', '-o', resaved, ...fx.names]),
    ]);
    expect(multi.absent).toEqual([]);
    expect(multi.platforms.sort()).toEqual(fx.images.multi.manifests.map((m) => m.platform.split('/').slice(0, 2).join('/')).sort());
    expect(multi.manifests.filter((m) => m.attestation)).toHaveLength(fx.images.multi.attestations);
    for (const m of multi.manifests) expect(m.configPresent && m.layers.every((l) => l.present)).toBe(true);
    const host = multi.manifests.find((m) => m.descriptor.digest === fx.images.multi.host.digest)!;
    expect(host.layers.map((l) => l.diffId)).toEqual(fx.images.multi.host.diffIds);
    const v = await imgtoolJson<Verified>(root2, ['verify', '--strict', resaved]);
    expect(v.ok).toBe(true);
    expect(v.images.flatMap((i) => i.names.map((n) => [n, i.digest])).sort()).toEqual(nameDigests().sort());
  });

  it("ctr's default export (host platform only) loads as partial with the same index digest; save → verify", async () => {
    if (!HAVE()) return;
    const ns = 'hostonly';
    await ctr(sock, ['images', 'import', '--no-unpack', '--all-platforms', all], { namespace: ns });
    const exported = path.join(dir, 'ctr-export-host.tar');
    await ctr(sock, ['images', 'export', exported, 'docker.io/library/multi:1'], { namespace: ns });
    const root = path.join(dir, 'store-host-only');

    const loaded = await imgtoolJson<{ images: Array<{ names: string[]; digest: string; partial: boolean; platforms: string[]; absent: Array<{ digest: string }> }> }>(root, ['load', '-i', exported]);
    expect(loaded.images).toHaveLength(1);
    const l = loaded.images[0];
    expect(l).toMatchObject({ names: ['docker.io/library/multi:1'], digest: fx.images.multi.target.digest, partial: true, platforms: [HOST_STR] });
    const others = fx.images.multi.manifests.filter((m) => m.platform !== HOST_STR).map((m) => m.digest);
    for (const o of others) expect(l.absent.map((a) => a.digest)).toContain(o);

    // saved: a new index over what is present (old → new printed) that verifies strictly
    const out = path.join(dir, 'host-only-resaved.tar');
    const s = await imgtool(root, ['save', '-o', out, 'multi:1']);
    expect(s.stdout).toContain(fx.images.multi.target.digest);
    const v = await imgtoolJson<Verified>(root, ['verify', '--strict', out]);
    expect(v.ok).toBe(true);
    expect(v.images).toHaveLength(1);
    expect(v.images[0]).toMatchObject({ names: ['docker.io/library/multi:1'], platforms: [HOST_STR], partial: false });
    expect(v.images[0].digest).not.toBe(fx.images.multi.target.digest);
    expect(s.stdout).toContain(v.images[0].digest);
  });

  it('save → ctr import WITH unpack (native): complete, unpacked, same chainIDs, same merged trees as imgtool export-rootfs', async () => {
    if (!HAVE()) return;
    const ns = 'unpack';
    const out = await ctr(sock, ['images', 'import', '--snapshotter', 'native', all], { namespace: ns });
    for (const n of fx.names) expect(out).toContain(`unpacking ${n} (`);
    const rows = await check(ns, 'native');
    expect(rows.map((r) => [r.name, r.digest]).sort()).toEqual(nameDigests().sort());
    for (const r of rows) expect({ name: r.name, complete: r.complete, unpacked: r.unpacked }).toEqual({ name: r.name, complete: true, unpacked: true });
    const snaps = (await ctr(sock, ['snapshots', '--snapshotter', 'native', 'ls'], { namespace: ns })).split('\n').map((l) => l.split(/\s+/)[0]);
    for (const i of imgs()) for (const c of chainIds(i.host.diffIds)) expect({ image: i.key, chainId: c, present: snaps.includes(c) }).toEqual({ image: i.key, chainId: c, present: true });

    // containerd's merged tree vs imgtool's export-rootfs (layers applied without snapshots here;
    // matrix-umoci covers `imgtool unpack` and export from snapshots)
    await Promise.all((['base', 'zst'] as const).map(async (key) => {
      const img = fx.images[key];
      const top = chainIds(img.host.diffIds).pop()!;
      const mine = path.join(dir, `rootfs-${key}`);
      const e = await imgtool(fx.root, ['export-rootfs', img.names[0], '--dir', mine]);
      expect(e.stdout).toContain('layers applied');
      const theirs = await nativeSnapshotDir(ns, top, `view-${key}`);
      const a = scanTree(mine);
      const b = scanTree(theirs);
      if (key === 'base') {
        expect([...b.keys()]).toEqual(BASE_EXPECTED_PATHS);
        expect(fs.readFileSync(path.join(theirs, 'etc/hard'), 'utf8')).toBe('ID=matrix\nVERSION_ID=1\n');
      }
      expect({ image: key, differences: diffTrees(a, b) }).toEqual({ image: key, differences: [] });
    }));
  });

  it('save --format docker → ctr import WITH unpack (native): complete, unpacked, same configs and chainIDs', async () => {
    if (!HAVE()) return;
    const ns = 'docker';
    const keys = ['base', 'multi', 'plain'] as const;
    const file = path.join(dir, 'docker.tar');
    await imgtool(fx.root, ['save', '-o', file, '--format', 'docker', ...keys.map((k) => fx.images[k].names[0])]);
    await ctr(sock, ['images', 'import', '--snapshotter', 'native', file], { namespace: ns });
    const rows = await check(ns, 'native');
    const snaps = (await ctr(sock, ['snapshots', '--snapshotter', 'native', 'ls'], { namespace: ns })).split('\n').map((l) => l.split(/\s+/)[0]);
    for (const k of keys) {
      const img = fx.images[k];
      const r = rows.find((x) => x.name === img.names[0]);
      expect({ image: k, complete: r?.complete, unpacked: r?.unpacked }).toEqual({ image: k, complete: true, unpacked: true });
      const man = JSON.parse(await ctr(sock, ['content', 'get', r!.digest], { namespace: ns })) as Manifest;
      expect(man.config.digest).toBe(img.host.configDigest);
      expect(snaps).toContain(chainIds(img.host.diffIds).pop());
    }
  });

  it('save --compression zstd and --format docker --compression gzip → ctr import WITH unpack: complete, same configs and chainIDs', async () => {
    if (!HAVE()) return;
    const ns = 'convert';
    const zz = path.join(dir, 'as-zstd.tar');
    const zg = path.join(dir, 'as-gzip.tar');
    await Promise.all([
      imgtool(fx.root, ['save', '-o', zz, '--compression', 'zstd', 'base:1', 'plain:1', 'multi:1']).then(() => imgtool(fx.root, ['verify', '--strict', zz])),
      imgtool(fx.root, ['save', '-o', zg, '--format', 'docker', '--compression', 'gzip', 'zst:1', 'plain:1']).then(() => imgtool(fx.root, ['verify', '--strict', zg])),
    ]);
    await ctr(sock, ['images', 'import', '--snapshotter', 'native', zz], { namespace: `${ns}-zstd` });
    await ctr(sock, ['images', 'import', '--snapshotter', 'native', zg], { namespace: `${ns}-gzip` });
    const cases: Array<[string, FixtureImage, string]> = [
      [`${ns}-zstd`, fx.images.base, 'zstd'], [`${ns}-zstd`, fx.images.plain, 'zstd'], [`${ns}-zstd`, fx.images.multi, 'zstd'],
      [`${ns}-gzip`, fx.images.zst, 'gzip'], [`${ns}-gzip`, fx.images.plain, 'gzip'],
    ];
    for (const [space, img, comp] of cases) {
      const r = (await check(space, 'native')).find((x) => x.name === img.names[0]);
      expect({ ns: space, image: img.key, complete: r?.complete, unpacked: r?.unpacked }).toEqual({ ns: space, image: img.key, complete: true, unpacked: true });
      let desc = JSON.parse(await ctr(sock, ['content', 'get', r!.digest], { namespace: space }));
      if (desc.manifests) desc = JSON.parse(await ctr(sock, ['content', 'get', desc.manifests.find((m: { platform?: { architecture: string } }) => m.platform?.architecture === fx.images.multi.host.platform.split('/')[1]).digest], { namespace: space }));
      const man = desc as Manifest;
      expect(man.config.digest).toBe(img.host.configDigest);
      for (const l of man.layers) expect({ image: img.key, mediaType: l.mediaType }).toEqual({ image: img.key, mediaType: expect.stringContaining(comp === 'zstd' ? '+zstd' : 'gzip') });
      const snaps = await ctr(sock, ['snapshots', '--snapshotter', 'native', 'ls'], { namespace: space });
      expect(snaps).toContain(chainIds(img.host.diffIds).pop());
    }
  });

  it('kind load: the shared-diffID images (other blobs, same diffIDs) after the base image: delta, complete, unpacked', async () => {
    if (!HAVE()) return;
    const exec = `env CONTAINERD_ADDRESS=${sock}`;
    const first = await imgtoolJson(fx.root, ['kind', 'load', 'base:1', '--exec', exec, '--nodes', 'local']);
    expect(first.nodes[0].imported).toEqual(['docker.io/library/base:1']);
    const r = await imgtoolJson(fx.root, ['kind', 'load', 'base:gz1', 'base:zstd', '--exec', exec, '--nodes', 'local']);
    const n = r.nodes[0];
    expect(n.imported.sort()).toEqual(['docker.io/library/base:gz1', 'docker.io/library/base:zstd']);
    // only the config blob is shared with what the node holds: every layer blob differs
    expect(n.omittedBlobs).toBe(1);
    expect(n.bytesSent).toBeLessThan(n.fullBytes);
    const listed = parseImagesLs(await ctr(sock, ['images', 'ls']));
    const rows = parseImagesCheck(await ctr(sock, ['images', 'check']));
    for (const k of ['base', 'gz1', 'bzstd'] as const) {
      const img = fx.images[k];
      expect(listed.find((i) => i.name === img.names[0])?.digest).toBe(img.target.digest);
      const row = rows.find((x) => x.name === img.names[0]);
      expect({ image: k, complete: row?.complete, unpacked: row?.unpacked }).toEqual({ image: k, complete: true, unpacked: true });
    }
    const content = new Set(parseContentLs(await ctr(sock, ['content', 'ls'])).map((b) => b.digest));
    for (const k of ['gz1', 'bzstd'] as const) for (const d of fx.images[k].host.layerDigests) expect(content.has(d)).toBe(true);
  });
});

