import { inspectImage } from '../../../src/compression/inspect';
import { convertImage } from '../../../src/compression/convert';
import { chainIds } from '../../../src/snapshots/store';
import { NotFoundError } from '../../../src/errors';
import { Env, env, layers, put } from './fixture';

describe('inspectImage', () => {
  let e: Env;
  beforeEach(() => { e = env(); });
  afterEach(() => e.cleanup());

  it('lists index, manifests, configs and per layer diffID, chainID, variants and snapshot', async () => {
    const amdL = await layers(e, [1, 2]);
    const armL = await layers(e, [3]);
    const amd = e.b.image({ layers: amdL, platform: 'linux/amd64' });
    const arm = e.b.image({ layers: armL, platform: 'linux/arm64' });
    const idx = e.b.index({ images: [amd, arm], attestations: true });
    await put(e, idx, 'ins:1', { skip: new Set([arm.descriptor.digest]) });
    await convertImage(e.store, 'ins:1', 'ins:z', { compression: 'zstd' });
    // a committed snapshot for the amd64 base layer
    const chains = chainIds(amdL.map((l) => l.diffId));
    e.store.meta.db.prepare('INSERT INTO snapshots (chain_id, parent, diff_id, size, reproducible, created_at) VALUES (?, NULL, ?, 123, 1, 0)').run(chains[0], amdL[0].diffId);

    const r = await inspectImage(e.store, 'ins:1');
    expect(r.name).toBe('docker.io/library/ins:1');
    expect(r.index!.manifests).toHaveLength(4);
    expect(r.absent.map((d) => d.digest)).toEqual([arm.descriptor.digest]);
    expect(r.platforms).toEqual(['linux/amd64']);
    const m = r.manifests.find((x) => !x.attestation)!;
    expect(m.config!.rootfs.diff_ids).toEqual(amdL.map((l) => l.diffId));
    expect(m.layers.map((l) => l.chainId)).toEqual(chains);
    expect(m.layers[0].snapshot).toEqual({ present: true, chainId: chains[0], parent: undefined, size: 123, reproducible: true });
    expect(m.layers[1].snapshot).toEqual({ present: false, chainId: chains[1] });
    const v = m.layers[0].variants;
    expect(v.map((x) => x.compression).sort()).toEqual(['gzip', 'zstd']);
    expect(v.find((x) => x.referenced)).toMatchObject({ digest: amdL[0].digest, compression: 'gzip', present: true, recorded: true });
    expect(v.find((x) => x.compression === 'zstd')).toMatchObject({ level: 3, present: true, referenced: false });
    const att = r.manifests.find((x) => x.attestation)!;
    expect(att.describes).toBe(amd.descriptor.digest);
    expect(att.layers[0].diffId).toBeUndefined();

    // the blob of a layer gone: still listed, as absent
    e.store.meta.write(() => e.store.content.deleteLocked(amdL[1].digest));
    const r2 = await inspectImage(e.store, 'ins:1', { platform: 'linux/amd64' });
    const l1 = r2.manifests[0].layers[1];
    expect(l1.present).toBe(false);
    expect(l1.variants.find((x) => x.referenced)).toMatchObject({ present: false });
    await expect(inspectImage(e.store, 'ins:1', { platform: 'linux/arm64' })).rejects.toThrow(NotFoundError);
  });
});
