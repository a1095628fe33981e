/**
 * Checking passes (src/layers/prove.ts) decode a stored blob only as far as the limits allow
 * (src/limits: the per-layer decompressed cap and the ratio to the compressed size), as unpack
 * does: a bomb claiming the diffID of a snapshot already there (unpack's checking pass) or
 * proven for a discard stops at the first byte past the bound, with one line naming the
 * image, the layer and the flag.
 */
import { createHash } from 'node:crypto';
import { rawTar } from '../../../src/builder/raw';
import { unpackImage } from '../../../src/snapshots/ops';
import { hashDecompressed, proveVariant } from '../../../src/layers/prove';
import { LimitExceededError, DigestMismatchError } from '../../../src/errors';
import { zstdZeroLayer } from '../archive/bomb-fixtures';
import { MediaType } from '../../../src/images/mediatypes';
import { hostPlatform } from '../../../src/platform';
import { useTempStore } from '../../helpers/store';
import { putImage, sha } from '../snapshots/helpers';

jest.setTimeout(60_000);

const t = useTempStore('imgtool-prove-limits-');

/** A zstd blob of a tar holding `size` zero bytes (a few KB for hundreds of MiB). */
const zstdBomb = async (size: number): Promise<Buffer> => (await zstdZeroLayer(size)).blob;

/** An image (one zstd layer `blob`) whose config claims `diffId`. */
async function putClaimingImage(name: string, blob: Buffer, diffId: string): Promise<void> {
  await t.store.content.ingestBuffer(blob);
  const p = hostPlatform();
  const config = Buffer.from(JSON.stringify({ architecture: p.architecture, os: p.os, rootfs: { type: 'layers', diff_ids: [diffId] } }));
  await t.store.content.ingestBuffer(config);
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: MediaType.OCI_MANIFEST,
    config: { mediaType: MediaType.OCI_CONFIG, digest: sha(config), size: config.length },
    layers: [{ mediaType: MediaType.OCI_LAYER_ZSTD, digest: sha(blob), size: blob.length }],
  }));
  await t.store.content.ingestBuffer(manifest);
  t.store.images.put(name, { mediaType: MediaType.OCI_MANIFEST, digest: sha(manifest), size: manifest.length });
}

const RATIO = /\d+ compressed bytes decompress to more than 2000 times that .*limit --max-ratio\); refusing it as a decompression bomb$/;

describe('checking passes are bounded in size', () => {
  it('hashDecompressed refuses a zstd bomb past --max-ratio, and a layer over --max-layer-size', async () => {
    const bomb = await zstdBomb(300 * 1024 * 1024);
    expect(bomb.length).toBeLessThan(64 * 1024);
    const info = await t.store.content.ingestBuffer(bomb);
    const err = await hashDecompressed(t.store, info.digest, 'layer X', { ratio: 2000 }).catch((e) => e);
    expect(err).toBeInstanceOf(LimitExceededError);
    expect(err.message).toMatch(/^layer X: /);
    expect(err.message).toMatch(RATIO);
    // the default passes it (zero-filled zstd is real)
    const ok = await hashDecompressed(t.store, info.digest, 'layer X');
    expect(ok.size).toBeGreaterThan(300 * 1024 * 1024);

    const plain = rawTar([{ name: 'a', data: 'x'.repeat(3 * 1024 * 1024), mode: 0o644 }]);
    const gz = await t.store.content.ingestBuffer(require('node:zlib').gzipSync(plain));
    await expect(hashDecompressed(t.store, gz.digest, 'layer Y', { layerSize: 1024 * 1024 })).rejects.toThrow(/^layer Y: decompresses to more than 1 MiB \(limit --max-layer-size\); refusing it$/);
  });

  it('proveVariant refuses a bomb and records nothing', async () => {
    const bomb = await zstdBomb(300 * 1024 * 1024);
    const info = await t.store.content.ingestBuffer(bomb);
    const diffId = 'sha256:' + createHash('sha256').update('whatever').digest('hex');
    await expect(proveVariant(t.store, info.digest, diffId, { what: 'image Z layer 1/1', limits: { ratio: 2000 } })).rejects.toThrow(RATIO);
    expect(t.store.variants.get(info.digest)).toBeUndefined();
  });

  it("unpack's checking pass: a bomb claiming an existing snapshot's diffID is refused by the limits, naming image and layer", async () => {
    const good = rawTar([{ name: 'etc/os', data: 'real\n', mode: 0o644 }]);
    const a = await putImage(t.store, 'example.com/good:1', [good]);
    await unpackImage(t.store, 'example.com/good:1');
    const bomb = await zstdBomb(300 * 1024 * 1024);
    const name = 'example.com/claims:1';
    await putClaimingImage(name, bomb, a.diffIds[0]);
    const err = await unpackImage(t.store, name, { limits: { ratio: 2000 } }).catch((e) => e);
    expect(err).toBeInstanceOf(LimitExceededError);
    expect(err.message).toContain(`image ${name} layer 1/1 (${sha(bomb)})`);
    expect(err.message).toMatch(RATIO);
    expect(err.message).not.toMatch(/\n|undefined/);
    // the limits given to unpack apply to the checking pass; at the default the claim is refuted instead
    await expect(unpackImage(t.store, name)).rejects.toBeInstanceOf(DigestMismatchError);
    // and a layer over --max-layer-size is refused by the checking pass as well
    await expect(unpackImage(t.store, name, { limits: { layerSize: 64 * 1024 * 1024 } })).rejects.toThrow(/decompresses to more than 64 MiB \(limit --max-layer-size\)/);
  });
});
