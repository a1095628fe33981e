import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ImageBuilder } from '../../src/builder';
import { MediaType } from '../../src/images/mediatypes';
import { Manifest } from '../../src/images/types';
import { runCli, tmpDir, rmrf } from '../helpers/cli';
import { requirePeer } from '../helpers/peers';
import { entries } from '../unit/compression/fixture';

const exec = promisify(execFile);
const skopeo = async (args: string[]) => (await exec('skopeo', ['--insecure-policy', ...args], { maxBuffer: 64 << 20 })).stdout;

interface Inspected {
  manifests: Array<{ attestation: boolean; descriptor: { digest: string }; manifest: Manifest; layers: Array<{ diffId: string; descriptor: { digest: string; mediaType: string }; variants: Array<{ digest: string; compression: string; mediaType?: string; present: boolean; referenced: boolean; recorded: boolean }> }> }>;
}

/** skopeo and imgtool agree on zstd images both ways. */
describe('interop: zstd with skopeo', () => {
  let dir: string;
  let root: string;
  let src: string;
  let layers: Array<{ digest: string; diffId: string }>;
  const cli = (args: string[], r = root) => runCli(args, { root: r });

  beforeAll(async () => {
    dir = tmpDir('imgtool-skopeo-zstd-');
    root = path.join(dir, 'store');
    const b = new ImageBuilder(path.join(dir, 'build'));
    const ls = [];
    for (const s of [1, 2]) ls.push(await b.layer(entries(s, 512 * 1024), { compression: 'gzip' }));
    layers = ls;
    const img = b.image({ layers: ls, platform: 'linux/amd64' });
    src = path.join(dir, 'src.tar');
    await b.ociArchive(src, { images: [{ target: img.descriptor, names: ['example.com/zz:1'] }] });
  });
  afterAll(() => rmrf(dir));

  it('skopeo reads an archive of an imgtool-converted zstd image and agrees on every digest', async () => {
    if (!requirePeer('skopeo')) return;
    expect((await cli(['load', '--no-unpack', '-i', src])).code).toBe(0);
    const conv = await cli(['convert', '--compression', 'zstd', '--json', 'example.com/zz:1', 'example.com/zz:zstd']);
    expect(conv.code).toBe(0);
    const target = JSON.parse(conv.stdout).target.digest as string;
    const out = path.join(dir, 'zstd.tar');
    const save = await cli(['save', '--format', 'oci', '-o', out, 'example.com/zz:zstd']);
    expect(save.stderr).toBe('');
    expect(save.code).toBe(0);

    const raw = await skopeo(['inspect', '--raw', `oci-archive:${out}`]);
    const m = JSON.parse(raw) as Manifest;
    expect('sha256:' + require('crypto').createHash('sha256').update(raw).digest('hex')).toBe(target);
    expect(m.layers.map((l) => l.mediaType)).toEqual([MediaType.OCI_LAYER_ZSTD, MediaType.OCI_LAYER_ZSTD]);
    const info = JSON.parse(await skopeo(['inspect', `oci-archive:${out}`])) as { Digest: string; Layers: string[]; LayersData?: Array<{ MIMEType: string }> };
    expect(info.Digest).toBe(target);
    expect(info.Layers).toEqual(m.layers.map((l) => l.digest));

    // skopeo copy verifies every blob's digest while copying; and decompresses to the same diffIDs
    const d = path.join(dir, 'copied');
    await skopeo(['copy', '--dest-decompress', `oci-archive:${out}`, `dir:${d}`]);
    const cfg = JSON.parse(fs.readFileSync(path.join(d, m.config.digest.slice(7)), 'utf8'));
    expect(cfg.rootfs.diff_ids).toEqual(layers.map((l) => l.diffId));
    for (const l of layers) {
      const file = path.join(d, l.diffId.slice(7));
      expect(fs.existsSync(file)).toBe(true);
      expect('sha256:' + require('crypto').createHash('sha256').update(fs.readFileSync(file)).digest('hex')).toBe(l.diffId);
    }
  });

  it('a skopeo-made zstd archive loads; its layers are recognised as zstd variants and convert back to identical gzip', async () => {
    if (!requirePeer('skopeo')) return;
    const z = path.join(dir, 'skopeo-zstd.tar');
    await skopeo(['copy', '--dest-compress-format', 'zstd', `oci-archive:${src}`, `oci-archive:${z}:example.com/zz:skopeo`]);
    const root2 = path.join(dir, 'store2');
    const load = await cli(['load', '--no-unpack', '-i', z], root2);
    expect(load.code).toBe(0);
    const name = (load.stdout.match(/^loaded (\S+)/m) ?? [])[1];
    expect(name).toBe('example.com/zz:skopeo');
    const ins = JSON.parse((await cli(['inspect', name], root2)).stdout) as Inspected;
    const ls = ins.manifests[0].layers;
    expect(ls.map((l) => l.diffId)).toEqual(layers.map((l) => l.diffId));
    for (const l of ls) {
      expect(l.descriptor.mediaType).toBe(MediaType.OCI_LAYER_ZSTD);
      // Loaded without unpacking: the config's diffID is only a claim, so no proof is recorded.
      const v = l.variants.find((x) => x.referenced)!;
      expect(v).toMatchObject({ compression: 'zstd', present: true, recorded: false });
    }
    // reuse: converting to zstd is a no-op (skopeo's blobs are zstd variants)
    const same = await cli(['convert', '--compression', 'zstd', '--json', name, 'example.com/zz:same'], root2);
    expect(same.code).toBe(0);
    expect(JSON.parse(same.stdout).layers.map((x: { source: string }) => x.source)).toEqual(['unchanged', 'unchanged']);
    // back to gzip at imgtool's default level gives the builder's exact blobs (same codec, same level)
    const gz = await cli(['convert', '--compression', 'gzip', '--json', name, 'example.com/zz:gz'], root2);
    expect(gz.code).toBe(0);
    const back = JSON.parse(gz.stdout) as { layers: Array<{ to: { digest: string }; source: string }> };
    expect(back.layers.map((x) => x.source)).toEqual(['converted', 'converted']);
    expect(back.layers.map((x) => x.to.digest)).toEqual(layers.map((l) => l.digest));
    // Converting decoded skopeo's blobs and hashed them to their diffIDs: now they are proven.
    const after = JSON.parse((await cli(['inspect', name], root2)).stdout) as Inspected;
    for (const l of after.manifests[0].layers) expect(l.variants.find((x) => x.referenced)).toMatchObject({ compression: 'zstd', recorded: true });
  });
});
