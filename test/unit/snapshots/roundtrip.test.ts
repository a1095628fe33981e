/**
 * Round trip through the archive code: load (importArchive) -> unpack -> discard the
 * layer blobs -> save (rebuilding the layers from snapshots) -> load elsewhere ->
 * unpack -> same diffIDs, same trees. Also: images sharing diffIDs with differently
 * compressed blobs (A unpacked, B loaded, A removed, B saved).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Store } from '../../../src/store';
import { ImageBuilder } from '../../../src/builder';
import { importArchive } from '../../../src/archive/import';
import { saveImages } from '../../../src/archive/export';
import { unpackImage, discardLayers, resolveImageLayers } from '../../../src/snapshots/ops';
import { exportRootfs } from '../../../src/snapshots/export';
import { removeImages } from '../../../src/images/ops';
import { tmpDir, rmrf } from '../../helpers/cli';

let work: string;
beforeEach(() => {
  work = tmpDir('imgtool-rt-');
});
afterEach(() => rmrf(work));

async function buildLayers(b: ImageBuilder, compression: 'gzip' | 'zstd', level?: number) {
  return [
    await b.layer([
      { path: 'etc/', type: 'dir' },
      { path: 'etc/conf', content: 'v1\n', xattrs: { 'user.k': 'v' } },
      { path: 'bin/', type: 'dir' },
      { path: 'bin/app', content: { size: 200_000, seed: 3 }, mode: 0o755 },
      { path: 'bin/alias', type: 'hardlink', target: 'bin/app' },
      { path: 'lib/' + 'x'.repeat(120), content: 'long' },
      { path: 'run/', type: 'dir' },
      { path: 'var/', type: 'dir' },
      { path: 'var/run', type: 'symlink', target: '/run' },
    ], { compression, level }),
    await b.layer([
      { path: 'etc/conf', content: 'v2\n' },
      { path: 'bin/alias', type: 'whiteout' },
      { path: 'var/run/x.pid', content: '7' },
      { path: 'etc/conf', content: 'v3 (duplicate path in one layer)\n' },
    ], { compression, level }),
  ];
}

async function tarOf(store: Store, ref: string): Promise<Buffer> {
  const f = path.join(work, `rootfs-${Math.random().toString(36).slice(2)}.tar`);
  await exportRootfs(store, ref, { output: f });
  return fs.readFileSync(f);
}

describe('round trip through load/save', () => {
  it('load -> unpack -> discard blobs -> save (rebuilt) -> load elsewhere -> same diffIDs and trees', async () => {
    const b = new ImageBuilder(path.join(work, 'blobs'));
    const img = b.image({ layers: await buildLayers(b, 'gzip'), platform: `linux/${process.arch === 'x64' ? 'amd64' : process.arch}` });
    const archive = path.join(work, 'in.tar');
    await b.ociArchive(archive, { images: [{ target: img, names: ['example.com/rt:1'] }] });

    const s1 = Store.open(path.join(work, 's1'));
    const s2 = Store.open(path.join(work, 's2'));
    try {
      await importArchive(s1, archive);
      const u1 = await unpackImage(s1, 'example.com/rt:1');
      const tree1 = await tarOf(s1, 'example.com/rt:1');
      const discarded = await discardLayers(s1, 'example.com/rt:1');
      expect(discarded.every((d) => !s1.content.has(d.digest))).toBe(true);

      // A resolver that cannot produce the layers: save fails naming them and writes nothing.
      const out0 = path.join(work, 'out0.tar');
      await expect(saveImages(s1, ['example.com/rt:1'], { output: out0, layerResolver: { resolveLayer: async () => undefined } })).rejects.toThrow();
      expect(fs.existsSync(out0)).toBe(false);

      // The default (every exporter's) rebuilds them from the snapshots.
      const out = path.join(work, 'out.tar');
      await saveImages(s1, ['example.com/rt:1'], { output: out });
      await importArchive(s2, out);
      const u2 = await unpackImage(s2, 'example.com/rt:1');
      expect(u2.layers.map((l) => l.diffId)).toEqual(u1.layers.map((l) => l.diffId));
      expect(u2.chainId).toBe(u1.chainId);
      const l1 = await resolveImageLayers(s1, 'example.com/rt:1');
      const l2 = await resolveImageLayers(s2, 'example.com/rt:1');
      expect(l2.manifest.config.digest).toBe(l1.manifest.config.digest); // same config -> same image ID
      expect((await tarOf(s2, 'example.com/rt:1')).equals(tree1)).toBe(true);
    } finally {
      s1.close();
      s2.close();
    }
  });

  it('shared diffIDs with different blobs: load A (unpacked), load B, rmi A, save B', async () => {
    const plat = `linux/${process.arch === 'x64' ? 'amd64' : process.arch}`;
    const ba = new ImageBuilder(path.join(work, 'a'));
    const a = ba.image({ layers: await buildLayers(ba, 'gzip', 1), platform: plat });
    const bb = new ImageBuilder(path.join(work, 'b'));
    const bimg = bb.image({ layers: await buildLayers(bb, 'zstd'), platform: plat });
    expect(bimg.configJson.rootfs.diff_ids).toEqual(a.configJson.rootfs.diff_ids);
    await ba.ociArchive(path.join(work, 'a.tar'), { images: [{ target: a, names: ['example.com/a:1'] }] });
    await bb.ociArchive(path.join(work, 'b.tar'), { images: [{ target: bimg, names: ['example.com/b:1'] }] });
    const s = Store.open(path.join(work, 's'));
    const s2 = Store.open(path.join(work, 's2'));
    try {
      await importArchive(s, path.join(work, 'a.tar'));
      await unpackImage(s, 'example.com/a:1');
      await importArchive(s, path.join(work, 'b.tar'));
      const ub = await unpackImage(s, 'example.com/b:1');
      expect(ub.layers.every((l) => !l.applied)).toBe(true);
      for (const l of bimg.layers) expect(s.content.has(l.digest)).toBe(true);
      for (let i = 0; i < 2; i++) {
        const rows = s.meta.db.prepare('SELECT digest FROM snapshot_content WHERE chain_id = ?').all(ub.layers[i].chainId) as Array<{ digest: string }>;
        expect(rows.map((r) => r.digest).sort()).toEqual([a.layers[i].digest, bimg.layers[i].digest].sort());
      }
      removeImages(s, ['example.com/a:1']);
      const out = path.join(work, 'b-out.tar');
      await saveImages(s, ['example.com/b:1'], { output: out });
      await importArchive(s2, out, { strict: true });
      const l2 = await resolveImageLayers(s2, 'example.com/b:1');
      expect(l2.manifest.layers.map((l) => l.digest)).toEqual(bimg.layers.map((l) => l.digest));
    } finally {
      s.close();
      s2.close();
    }
  });
});
