import * as fs from 'node:fs';
import * as path from 'node:path';
import { Store } from '../../src';
import { walkImage } from '../../src/images/walk';
import { contentSource } from '../../src/images/source';
import { ImageBuilder } from '../../src/builder';
import { runCli, tmpDir, rmrf } from '../helpers/cli';

/**
 * The prune scenario from the field: convert an image to zstd under a lease, rmi the
 * source, prune; `save --compression zstd` and `save --compression gzip` of the
 * converted image still work and the lease's chain is intact; after `lease rm` and
 * prune, what only the lease held goes.
 */
describe('prune scenario: convert under a lease, rmi the source, prune (CLI)', () => {
  let dir: string;
  let root: string;
  let archive: string;
  const SRC = 'field.local/app:gzip';
  const DST = 'field.local/app:zstd';

  beforeAll(async () => {
    dir = tmpDir('imgtool-field-');
    root = path.join(dir, 'store');
    const b = new ImageBuilder(path.join(dir, 'build'));
    const l1 = await b.layer([{ path: 'etc/', type: 'dir' }, { path: 'etc/os-release', content: 'ID=field\n' }, { path: 'bin/tool', content: { size: 300_000, seed: 1 } }]);
    const l2 = await b.layer([{ path: 'app/data.txt', content: { size: 200_000, seed: 2, text: true } }]);
    const l3 = await b.layer([{ path: 'app/data.txt', type: 'whiteout' }, { path: 'app/new.bin', content: { size: 100_000, seed: 3 } }]);
    const img = b.image({ layers: [l1, l2, l3], format: 'oci' });
    archive = path.join(dir, 'src.tar');
    await b.ociArchive(archive, { images: [{ target: img, names: [SRC] }] });
  });
  afterAll(() => rmrf(dir));

  const ok = async (args: string[]) => {
    const r = await runCli(args, { root });
    if (r.code !== 0) throw new Error(`imgtool ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
    return r;
  };

  function inspectStore<T>(fn: (s: Store) => T): T {
    const s = Store.open(root);
    try {
      return fn(s);
    } finally {
      s.close();
    }
  }

  async function closure(name: string): Promise<string[]> {
    const s = Store.open(root);
    try {
      const w = await walkImage(contentSource(s.content), s.images.resolve(name).target);
      return w.blobs.map((b) => b.digest).sort();
    } finally {
      s.close();
    }
  }

  it('keeps what the converted image and the lease need, and lets it go after lease rm', async () => {
    await ok(['load', '-i', archive]);
    await ok(['lease', 'create', '--id', 'field']);
    // The lease holds the source's snapshot chain; the zstd variants convert records
    // afterwards are "blobs recorded later" for those snapshots.
    await ok(['unpack', '--lease', 'field', SRC]);
    const chain = inspectStore((s) => s.snapshots.list().map((x) => x.chainId).sort());
    expect(chain).toHaveLength(3);
    const srcLayers = await closure(SRC);
    await ok(['convert', '--lease', 'field', '--compression', 'zstd', SRC, DST]);
    await ok(['rmi', SRC]);
    const pruned = JSON.parse((await ok(['prune', '--json'])).stdout);
    expect(pruned.leases).toEqual([]);

    // The converted image saves in both compressions, and the archives verify.
    for (const c of ['zstd', 'gzip']) {
      const out = path.join(dir, `dst-${c}.tar`);
      await ok(['save', '--compression', c, '-o', out, DST]);
      const v = await runCli(['verify', out], { root });
      // A zstd image in manifest.json is OK, with one warning per layer (Docker before 23 cannot load it).
      const lines = v.stderr.split('\n').filter(Boolean);
      expect(lines.filter((l) => !/in manifest\.json is zstd: Docker before 23 cannot load it/.test(l))).toEqual([]);
      expect(lines).toHaveLength(c === 'zstd' ? chain.length : 0);
      expect(v.code).toBe(0);
    }

    // The lease's resources are intact: every held blob present, every held snapshot with its parent chain.
    const held = inspectStore((s) => {
      const res = s.leases.resources('field');
      const missingBlobs = res.filter((r) => r.kind === 'content' && !s.content.has(r.ref)).map((r) => r.ref);
      const brokenChains: string[] = [];
      for (const r of res.filter((x) => x.kind === 'snapshot')) {
        let cur: string | undefined = r.ref;
        while (cur) {
          const snap = s.snapshots.get(cur);
          if (!snap) {
            brokenChains.push(`${r.ref} (at ${cur})`);
            break;
          }
          cur = snap.parent;
        }
      }
      return { res, missingBlobs, brokenChains };
    });
    expect(held.res.filter((r) => r.kind === 'snapshot').map((r) => r.ref).sort()).toEqual(chain);
    // Every blob of the source survives the rmi: the leased chain holds them.
    const present = inspectStore((s) => srcLayers.filter((d) => s.content.has(d)));
    const srcLayerBlobs = inspectStore((s) => srcLayers.filter((d) => s.variants.get(d)));
    expect(srcLayerBlobs).toHaveLength(3);
    expect(present).toEqual(expect.arrayContaining(srcLayerBlobs));
    // The unpacked chain is still whole (the converted image has the same diffIDs).
    expect(inspectStore((s) => s.snapshots.list().map((x) => x.chainId).sort())).toEqual(chain);
    expect(held.missingBlobs).toEqual([]);
    expect(held.brokenChains).toEqual([]);
    const fsck1 = await runCli(['fsck'], { root });
    expect(fsck1.code).toBe(0);

    // After the lease goes, prune leaves exactly the converted image's closure (and
    // whatever save produced into the store for it goes too, unless the image references it).
    await ok(['lease', 'rm', 'field']);
    await ok(['prune']);
    const dstClosure = await closure(DST);
    const blobs = inspectStore((s) => s.content.list().map((b) => b.digest).sort());
    expect(blobs).toEqual(dstClosure);

    // And once the converted image is removed too, everything goes.
    await ok(['rmi', DST]);
    await ok(['prune']);
    inspectStore((s) => {
      expect(s.content.list()).toEqual([]);
      expect(s.snapshots.list()).toEqual([]);
    });
    expect(fs.readdirSync(path.join(root, 'content', 'blobs', 'sha256'))).toEqual([]);
    expect((await runCli(['fsck'], { root })).code).toBe(0);
  });
});
