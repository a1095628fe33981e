import { Readable } from 'node:stream';
import { verifyArchive } from '../../../src/archive/verify';
import { listArchive } from '../../../src/archive/list';
import { sha256 } from '../../../src/digest';
import { MediaType } from '../../../src/images/mediatypes';
import { makeImage, makeLayer, ociImageArchive, ociArchive, dockerArchive, imageBlobs, blobEntry, indexDoc, compress } from './import-fixtures';

const src = (b: Buffer) => Readable.from([b]);

function multi(present: string[]) {
  const amd = makeImage({ arch: 'amd64' });
  const arm = makeImage({ arch: 'arm64' });
  const idx = indexDoc([
    { ...amd.manifest.desc, platform: { os: 'linux', architecture: 'amd64' } },
    { ...arm.manifest.desc, platform: { os: 'linux', architecture: 'arm64' } },
  ]);
  const blobs = [...(present.includes('amd64') ? imageBlobs(amd) : []), ...(present.includes('arm64') ? imageBlobs(arm) : []), blobEntry(idx.bytes)];
  return { amd, arm, idx, archive: ociArchive([{ ...idx.desc, annotations: { 'io.containerd.image.name': 'x.io/m:1' } }], blobs) };
}

describe('verifyArchive', () => {
  it('accepts a good OCI archive (any wrapping) and summarises it', async () => {
    const img = makeImage();
    for (const c of ['none', 'gzip', 'zstd'] as const) {
      const r = await verifyArchive(src(compress(ociImageArchive(img, 'x.io/a:1'), c)));
      expect(r).toEqual(expect.objectContaining({ ok: true, format: 'oci', compression: c, problems: [] }));
      expect(r.images).toEqual([expect.objectContaining({ names: ['x.io/a:1'], digest: img.manifest.digest, platforms: ['linux/amd64'], partial: false })]);
      expect(r.blobs.count).toBe(3);
    }
  });

  it('accepts a Docker archive', async () => {
    const img = makeImage({ oci: false, layers: [makeLayer({ a: 'b' }, 'none', false)] });
    const r = await verifyArchive(src(dockerArchive([{ img, repoTags: ['busybox:1'] }])));
    expect(r.ok).toBe(true);
    expect(r.format).toBe('docker');
    expect(r.images[0].names).toEqual(['docker.io/library/busybox:1']);
  });

  it('lists every problem, not just the first', async () => {
    const a = makeImage({ seed: 'a' });
    const b = makeImage({ seed: 'b' });
    const wrong = sha256('wrong');
    const archive = ociArchive([
      { ...a.manifest.desc, annotations: { 'io.containerd.image.name': 'x.io/a:1' } },
      { ...b.manifest.desc, annotations: { 'io.containerd.image.name': 'x.io/b:1' } },
    ], [
      // a: config stored under the wrong name; b: layer missing
      blobEntry(a.config.bytes, wrong), blobEntry(a.layers[0].blob), blobEntry(a.manifest.bytes),
      blobEntry(b.config.bytes), blobEntry(b.manifest.bytes),
      { name: '../evil', data: 'x' },
    ]);
    const r = await verifyArchive(src(archive));
    expect(r.ok).toBe(false);
    expect(r.problems).toEqual(expect.arrayContaining([
      expect.stringMatching(new RegExp(`digest mismatch: expected ${wrong}, got ${a.config.digest}`)),
      expect.stringMatching(/"..\/evil" escapes the archive/),
      expect.stringMatching(new RegExp(`x.io/a:1: config ${a.config.digest} of manifest .* is not in the archive`)),
      expect.stringMatching(new RegExp(`x.io/b:1: layer 1 ${b.layers[0].digest} of manifest .* is not in the archive`)),
    ]));
    expect(r.problems).toHaveLength(4);
  });

  it('partial index: a warning, or a problem with strict', async () => {
    const { archive, arm } = multi(['amd64']);
    const r = await verifyArchive(src(archive));
    expect(r.ok).toBe(true);
    expect(r.images[0]).toEqual(expect.objectContaining({ partial: true, platforms: ['linux/amd64'], absent: [{ digest: arm.manifest.digest, platform: 'linux/arm64' }] }));
    expect(r.warnings.join()).toMatch(/partial/);
    const s = await verifyArchive(src(archive), { strict: true });
    expect(s.ok).toBe(false);
    expect(s.problems[0]).toMatch(/x.io\/m:1: 1 manifest\(s\) of index .* are not in the archive \(partial\): linux\/arm64/);
  });

  it('structural failures are reported, not thrown', async () => {
    const img = makeImage();
    const good = ociImageArchive(img, 'x.io/a:1');
    const r = await verifyArchive(src(good.subarray(0, 2000)));
    expect(r.ok).toBe(false);
    expect(r.problems).toEqual([expect.stringMatching(/truncated/)]);
    const e = await verifyArchive(src(Buffer.alloc(0)));
    expect(e.problems).toEqual([expect.stringMatching(/empty/)]);
  });

  it('warns about unknown media types and mislabelled compression', async () => {
    const l = makeLayer({ a: 'b' }, 'zstd');
    const img = makeImage({ layers: [{ ...l, desc: { ...l.desc, mediaType: MediaType.OCI_LAYER_GZIP } }] });
    const r = await verifyArchive(src(ociImageArchive(img, 'x.io/a:1')));
    expect(r.ok).toBe(true);
    expect(r.warnings.join('\n')).toMatch(/declared application\/vnd.oci.image.layer.v1.tar\+gzip but its bytes are zstd/);
  });
});

describe('listArchive', () => {
  it('lists images, names, platforms and layers with diffIDs', async () => {
    const { archive, amd } = multi(['amd64', 'arm64']);
    const l = await listArchive(src(archive));
    expect(l.problems).toEqual([]);
    expect(l.images).toHaveLength(1);
    expect(l.images[0].names).toEqual(['x.io/m:1']);
    expect(l.images[0].manifests.map((m) => m.platform).sort()).toEqual(['linux/amd64', 'linux/arm64']);
    const m = l.images[0].manifests.find((x) => x.platform === 'linux/amd64')!;
    expect(m.config.digest).toBe(amd.config.digest);
    expect(m.layers).toEqual([expect.objectContaining({ digest: amd.layers[0].digest, diffId: amd.layers[0].diffId, compression: 'gzip', present: true })]);
  });

  it('lists Docker archives through the synthesized manifest', async () => {
    const img = makeImage({ oci: false, layers: [makeLayer({ a: 'b' }, 'none', false)] });
    const l = await listArchive(src(dockerArchive([{ img, repoTags: ['a:1', 'b:2'] }])));
    expect(l.format).toBe('docker');
    expect(l.images[0].names).toEqual(['docker.io/library/a:1', 'docker.io/library/b:2']);
    expect(l.images[0].manifests[0].layers[0]).toEqual(expect.objectContaining({ digest: img.layers[0].digest, compression: 'none', mediaType: MediaType.DOCKER_LAYER }));
  });
});
