import { Descriptor, MediaType, sha256, parsePlatform } from '../../../src';
import { walkImage, BlobSource } from '../../../src/images/walk';
import { exactMatcher } from '../../../src/platform';

/** An in-memory BlobSource holding JSON documents and raw blobs. */
function memSource() {
  const blobs = new Map<string, Buffer>();
  const put = (mediaType: string, v: unknown): Descriptor => {
    const buf = Buffer.isBuffer(v) ? v : Buffer.from(JSON.stringify(v));
    const digest = sha256(buf);
    blobs.set(digest, buf);
    return { mediaType, digest, size: buf.length };
  };
  const src: BlobSource = {
    has: (d) => blobs.has(d.digest),
    readJSON: async <T>(d: Descriptor) => JSON.parse(blobs.get(d.digest)!.toString()) as T,
  };
  return { blobs, put, src };
}

function image(m: ReturnType<typeof memSource>, arch: string, layerText: string) {
  const layer = m.put(MediaType.OCI_LAYER, Buffer.from(layerText));
  const config = m.put(MediaType.OCI_CONFIG, { os: 'linux', architecture: arch, rootfs: { type: 'layers', diff_ids: [layer.digest] } });
  const manifest = m.put(MediaType.OCI_MANIFEST, { schemaVersion: 2, mediaType: MediaType.OCI_MANIFEST, config, layers: [layer] });
  return { layer, config, manifest };
}

describe('walkImage', () => {
  it('walks an index, selects platforms, keeps attestations with their image', async () => {
    const m = memSource();
    const amd = image(m, 'amd64', 'a');
    const arm = image(m, 'arm64', 'b');
    const attLayer = m.put(MediaType.IN_TOTO, Buffer.from('{}'));
    const attCfg = m.put(MediaType.OCI_CONFIG, { os: 'unknown', architecture: 'unknown', rootfs: { type: 'layers', diff_ids: [] } });
    const att = m.put(MediaType.OCI_MANIFEST, { schemaVersion: 2, config: attCfg, layers: [attLayer] });
    const index = m.put(MediaType.OCI_INDEX, {
      schemaVersion: 2,
      manifests: [
        { ...amd.manifest, platform: { os: 'linux', architecture: 'amd64' } },
        { ...arm.manifest, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
        { ...att, platform: { os: 'unknown', architecture: 'unknown' }, annotations: { 'vnd.docker.reference.type': 'attestation-manifest', 'vnd.docker.reference.digest': arm.manifest.digest } },
      ],
    });
    const all = await walkImage(m.src, index, { host: parsePlatform('linux/amd64') });
    expect(all.manifests.map((x) => [x.platform && `${x.platform.os}/${x.platform.architecture}`, x.attestation])).toEqual([
      ['linux/amd64', false], ['linux/arm64', false], [undefined, true],
    ]);
    expect(all.absent).toEqual([]);
    expect(all.missing).toEqual([]);

    const armOnly = await walkImage(m.src, index, { platforms: exactMatcher([parsePlatform('linux/arm64')]) });
    expect(armOnly.manifests.map((x) => x.desc.digest)).toEqual([arm.manifest.digest, att.digest]);
    expect(armOnly.blobs.map((b) => b.digest)).not.toContain(amd.layer.digest);
    expect(armOnly.blobs.map((b) => b.digest)).toContain(attLayer.digest);

    const amdOnly = await walkImage(m.src, index, { platforms: exactMatcher([parsePlatform('linux/amd64')]) });
    expect(amdOnly.manifests.map((x) => x.desc.digest)).toEqual([amd.manifest.digest]);
  });

  it('reports absent index entries and missing layers without throwing', async () => {
    const m = memSource();
    const amd = image(m, 'amd64', 'a');
    const arm = image(m, 'arm64', 'b');
    m.blobs.delete(arm.manifest.digest);
    m.blobs.delete(amd.layer.digest);
    const index = m.put(MediaType.OCI_INDEX, { schemaVersion: 2, manifests: [
      { ...amd.manifest, platform: { os: 'linux', architecture: 'amd64' } },
      { ...arm.manifest, platform: { os: 'linux', architecture: 'arm64' } },
    ] });
    const w = await walkImage(m.src, index);
    expect(w.absent.map((d) => d.digest)).toEqual([arm.manifest.digest]);
    expect(w.missing).toEqual([{ desc: amd.layer, manifest: amd.manifest.digest, role: 'layer', index: 0 }]);
  });

  it('takes the platform of a bare manifest from its config', async () => {
    const m = memSource();
    const arm = image(m, 'arm64', 'x');
    const w = await walkImage(m.src, arm.manifest);
    expect(w.manifests[0].platform).toEqual({ os: 'linux', architecture: 'arm64' });
    const none = await walkImage(m.src, arm.manifest, { platforms: exactMatcher([parsePlatform('linux/amd64')]) });
    expect(none.manifests).toEqual([]);
  });
});
