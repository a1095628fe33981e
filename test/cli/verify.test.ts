import * as fs from 'node:fs';
import * as path from 'node:path';
import { runCli, tmpDir, rmrf } from '../helpers/cli';
import { makeImage, makeLayer, ociArchive, dockerArchive, imageBlobs, blobEntry, indexDoc, compress, ownStderr } from '../unit/archive/import-fixtures';

describe('imgtool verify / ls-archive (CLI)', () => {
  let dir: string;
  beforeAll(() => {
    dir = tmpDir('imgtool-verify-cli-');
  });
  afterAll(() => rmrf(dir));

  const amd = makeImage({ arch: 'amd64' });
  const arm = makeImage({ arch: 'arm64', layers: [makeLayer({ z: 'arm' }, 'zstd')] });
  const idx = indexDoc([{ ...amd.manifest.desc, platform: { os: 'linux', architecture: 'amd64' } }, { ...arm.manifest.desc, platform: { os: 'linux', architecture: 'arm64' } }]);
  const full = ociArchive([{ ...idx.desc, annotations: { 'io.containerd.image.name': 'x.io/m:1' } }], [...imageBlobs(amd), ...imageBlobs(arm), blobEntry(idx.bytes)]);
  const partial = ociArchive([{ ...idx.desc, annotations: { 'io.containerd.image.name': 'x.io/m:1' } }], [...imageBlobs(amd), blobEntry(idx.bytes)]);

  it('verify: OK summary for a good archive, no store needed', async () => {
    const f = path.join(dir, 'full.tar');
    fs.writeFileSync(f, full);
    const r = await runCli(['verify', f], { env: { IMGTOOL_ROOT: path.join(dir, 'never-created') } });
    expect(ownStderr(r.stderr)).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/full.tar: oci archive, \d+ entries, 7 blob\(s\)/);
    expect(r.stdout).toMatch(/^ {2}x.io\/m:1 sha256:[0-9a-f]{12} linux\/amd64,linux\/arm64$/m);
    expect(r.stdout).toMatch(/^OK$/m);
    expect(fs.existsSync(path.join(dir, 'never-created'))).toBe(false);
  });

  it('verify: partial is a warning, an error with --strict; stdin with -', async () => {
    const ok = await runCli(['verify', '-'], { input: compress(partial, 'gzip') });
    expect(ok.code).toBe(0);
    expect(ownStderr(ok.stderr)).toMatch(/^imgtool: warning: .*partial/);
    expect(ok.stdout).toMatch(/stdin: oci archive \(gzip\)/);
    expect(ok.stdout).toMatch(/\(partial: linux\/arm64 absent\)/);
    const strict = await runCli(['verify', '-', '--strict', '--json'], { input: partial });
    expect(strict.code).not.toBe(0);
    const j = JSON.parse(strict.stdout);
    expect(j.ok).toBe(false);
    expect(j.problems).toEqual([expect.stringMatching(/partial/)]);
    expect(ownStderr(strict.stderr)).toMatch(/imgtool: error: stdin: 1 problem\(s\)/);
  });

  it('ls-archive: images, names, platforms, layers', async () => {
    const f = path.join(dir, 'full2.tar');
    fs.writeFileSync(f, full);
    const r = await runCli(['ls-archive', f]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`x.io/m:1  ${idx.digest}  linux/amd64,linux/arm64`);
    expect(r.stdout).toMatch(/^ {2}linux\/arm64 {2}manifest sha256:[0-9a-f]{12} {2}config sha256:[0-9a-f]{12}$/m);
    expect(r.stdout).toMatch(/^ {4}layer 1 {2}sha256:[0-9a-f]{12} {2}\d+ B {2}zstd {2}diffID sha256:[0-9a-f]{12}$/m);
    const j = JSON.parse((await runCli(['ls-archive', f, '--json'])).stdout);
    expect(j.images[0].manifests).toHaveLength(2);
  });

  it('ls-archive: a Docker archive on stdin', async () => {
    const img = makeImage({ oci: false, layers: [makeLayer({ a: 'b' }, 'none', false)] });
    const r = await runCli(['ls-archive', '-', '--json'], { input: dockerArchive([{ img, repoTags: ['alpine:3'] }]) });
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.format).toBe('docker');
    expect(j.images[0].names).toEqual(['docker.io/library/alpine:3']);
    expect(j.images[0].manifests[0].config.digest).toBe(img.config.digest);
  });
});
