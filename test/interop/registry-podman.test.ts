/**
 * podman (4.3, an isolated store from scripts/peers/podman-env.sh) against the REAL docker-registry,
 * cross-checking imgtool both ways: what imgtool pushes, podman pulls with the same image ID
 * (config digest) and manifest digest; what podman pushes (it recompresses from its own storage),
 * imgtool pulls with the same manifest, config and layer digests.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { rmrf, tmpDir } from '../helpers/cli';
import { podman, podmanEnv, requirePeer, startRegistry, stopRegistry } from '../helpers/peers';
import { ImageBuilder, BuiltImage } from '../../src/builder';
import { imgtool, imgtoolJson } from './matrix-fixtures';

jest.setTimeout(240_000);

const HAVE = requirePeer('docker-registry', 'podman');
const sha = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');

describe('registry cross-check with podman', () => {
  let dir: string;
  let reg: string;
  let env: NodeJS.ProcessEnv;
  let img: BuiltImage;
  let src: string;

  beforeAll(async () => {
    if (!HAVE) return;
    dir = tmpDir('iregpod-');
    reg = await startRegistry(path.join(dir, 'reg'));
    env = await podmanEnv(path.join(dir, 'podman'));
    const b = new ImageBuilder(path.join(dir, 'build'));
    const l1 = await b.layer([{ path: 'etc/', type: 'dir' }, { path: 'etc/podman-check', content: 'imgtool\n' }]);
    const l2 = await b.layer([{ path: 'data.bin', content: { size: 1 << 20, seed: 31 } }]);
    img = b.image({ layers: [l1, l2], platform: 'linux/amd64' });
    await b.ociArchive(path.join(dir, 'p.tar'), { images: [{ target: img, names: [`${reg}/from-imgtool:1`] }] });
    src = path.join(dir, 'src');
    await imgtool(src, ['load', '-i', path.join(dir, 'p.tar'), '--no-unpack']);
  });

  afterAll(async () => {
    if (!HAVE || !dir) return;
    await podman(env, ['system', 'reset', '--force']).catch(() => undefined);
    await stopRegistry(path.join(dir, 'reg')).catch(() => undefined);
    rmrf(dir);
  });

  it('what imgtool pushes, podman pulls: same image ID (config digest) and manifest digest', async () => {
    if (!HAVE) return;
    const p = await imgtoolJson(src, ['push', `${reg}/from-imgtool:1`, '--insecure']);
    expect(p.digest).toBe(img.descriptor.digest);
    await podman(env, ['pull', '--tls-verify=false', '--quiet', `${reg}/from-imgtool:1`]);
    const [info] = JSON.parse(await podman(env, ['image', 'inspect', `${reg}/from-imgtool:1`]));
    expect(`sha256:${info.Id}`).toBe(img.manifest.config.digest);
    expect(info.Digest).toBe(img.descriptor.digest);
    expect(info.RepoDigests).toContain(`${reg}/from-imgtool@${img.descriptor.digest}`);
  });

  it('what podman pushes, imgtool pulls with the same manifest, config and layer digests', async () => {
    if (!HAVE) return;
    await podman(env, ['load', '-q', '-i', path.join(dir, 'p.tar')]);
    const digestFile = path.join(dir, 'podman.digest');
    await podman(env, ['push', '--tls-verify=false', '--quiet', '--digestfile', digestFile, `${reg}/from-imgtool:1`, `${reg}/from-podman:1`]);
    const pushed = fs.readFileSync(digestFile, 'utf8').trim();
    expect(pushed).toMatch(/^sha256:[0-9a-f]{64}$/);
    const [info] = JSON.parse(await podman(env, ['image', 'inspect', `${reg}/from-imgtool:1`]));

    const dst = path.join(dir, 'dst');
    const r = await imgtoolJson(dst, ['pull', `${reg}/from-podman:1`, '--insecure']);
    expect(r.images[0].digest).toBe(pushed);
    const res = await fetch(`http://${reg}/v2/from-podman/manifests/1`, { headers: { Accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' } });
    const raw = Buffer.from(await res.arrayBuffer());
    expect(sha(raw)).toBe(pushed);
    const m = JSON.parse(raw.toString());
    expect(m.config.digest).toBe(`sha256:${info.Id}`);
    // Every blob podman pushed is in imgtool's store under its digest (verified on the way in), and the image unpacked.
    for (const d of [m.config, ...m.layers]) expect(fs.existsSync(path.join(dst, 'content', 'blobs', 'sha256', d.digest.slice(7)))).toBe(true);
    expect(r.unpacked).toHaveLength(1);
    const ls = await imgtoolJson(dst, ['images']);
    expect(JSON.stringify(ls)).toContain(pushed);
    // And imgtool pushes it back byte-identically (nothing to upload: same digests).
    const back = await imgtoolJson(dst, ['push', `${reg}/from-podman:1`, '--insecure']);
    expect(back.digest).toBe(pushed);
    expect(back.blobs.uploaded).toBe(0);
    expect(back.manifests.uploaded).toBe(0);
  });
});
