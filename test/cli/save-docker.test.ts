/**
 * `save` to a Docker-readable archive as a careless user meets it: a multi-platform image in a
 * Docker archive, --all-platforms with --format docker, a zstd image in the default format, and
 * whether the help tells the truth about what is printed when --format docker re-compresses.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Store } from '../../src';
import { runCli, tmpDir, rmrf } from '../helpers/cli';
import { addImage, addIndex } from '../unit/archive/export-fixtures';
import { makeImage, makeLayer, dockerArchive, ownStderr } from '../unit/archive/import-fixtures';

describe('imgtool save: Docker-readable archives (CLI)', () => {
  let dir: string;
  let root: string;
  beforeAll(async () => {
    dir = tmpDir('imgtool-save-docker-cli-');
    root = path.join(dir, 'store');
    const store = Store.open(root);
    try {
      const x86 = await addImage(store, { platform: { os: 'linux', architecture: 'amd64' }, layers: [{ f: 'amd64' }], label: 'amd64' });
      const arm = await addImage(store, { platform: { os: 'linux', architecture: 'arm64' }, layers: [{ f: 'arm64' }], label: 'arm64' });
      store.images.put('docker.io/library/multi:1', await addIndex(store, [x86, arm]));
      const zs = await addImage(store, { layers: [{ a: 'base' }, { b: 'top' }], compression: 'zstd', label: 'zs' });
      store.images.put('docker.io/library/zs:1', zs.manifest);
    } finally {
      store.close();
    }
  });
  afterAll(() => rmrf(dir));
  const out = (n: string) => path.join(dir, n);

  it('--format docker of a multi-platform image warns which platform was written and which were left out', async () => {
    const r = await runCli(['save', '-o', out('d.tar'), '--format', 'docker', '--platform', 'linux/arm64', 'multi:1'], { root });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/saved docker.io\/library\/multi:1 sha256:[0-9a-f]{12} linux\/arm64 \(left out: linux\/amd64\)/);
    const h = await runCli(['save', '-o', out('h.tar'), '--format', 'docker', 'multi:1'], { root });
    expect(h.code).toBe(0);
    expect(ownStderr(h.stderr)).toMatch(/warning: image docker.io\/library\/multi:1: a Docker archive holds one manifest per image: wrote linux\/(amd64|arm64), left out linux\/(arm64|amd64)/);
    expect(h.stdout).toMatch(/\(left out: linux\/(arm64|amd64)\)/);
  });

  it('--all-platforms --format docker fails saying why, and writes nothing', async () => {
    const r = await runCli(['save', '-o', out('a.tar'), '--format', 'docker', '--all-platforms', 'multi:1'], { root });
    expect(r.code).not.toBe(0);
    expect(ownStderr(r.stderr)).toMatch(/--all-platforms cannot be used with --format docker: a Docker archive holds one manifest per image name/);
    expect(ownStderr(r.stderr).trim().split('\n')).toHaveLength(1);
    expect(fs.existsSync(out('a.tar'))).toBe(false);
  });

  it('the default format warns that Docker before 23 cannot load a zstd image, naming image and layer', async () => {
    const r = await runCli(['save', '-o', out('z.tar'), 'zs:1'], { root });
    expect(r.code).toBe(0);
    expect(ownStderr(r.stderr)).toMatch(/warning: image docker.io\/library\/zs:1 \(linux\/amd64\): manifest.json names zstd layer 1 sha256:[0-9a-f]{64} \(and 1 more\), which Docker before 23 cannot load \("archive\/tar: invalid tar header"\)/);
    const v = await runCli(['verify', out('z.tar')], { root });
    expect(v.code).toBe(0);
    expect(ownStderr(v.stderr)).toMatch(/warning: zs:1: layer 1\/2 "blobs\/sha256\/[0-9a-f]{64}" in manifest.json is zstd: Docker before 23 cannot load it/);
  });

  it('the help says what --format docker prints when layers are re-compressed, and it does so', async () => {
    const help = await runCli(['save', '--help'], { root });
    expect(help.code).toBe(0);
    const text = help.stdout.replace(/\s+/g, ' ');
    expect(text).toMatch(/--format docker has no manifest or index, so no old -> new line is printed for it/);
    // behaviour: no old -> new with --format docker ...
    const d = await runCli(['save', '-o', out('g.tar'), '--format', 'docker', '--compression', 'gzip', 'zs:1'], { root });
    expect(d.code).toBe(0);
    expect(d.stdout).not.toMatch(/->/);
    expect(d.stdout).toMatch(/saved docker.io\/library\/zs:1 .*\n.*\(docker, compression gzip\)/);
    // ... and one with the default format
    const o = await runCli(['save', '-o', out('o.tar'), '--compression', 'gzip', 'zs:1'], { root });
    expect(o.code).toBe(0);
    expect(o.stdout).toMatch(/zs:1: manifest linux\/amd64 sha256:[0-9a-f]{64} -> sha256:[0-9a-f]{64} \(layers as gzip\)/);
  });

  it('verify warns about a manifest.json entry naming a zstd layer (and still says OK)', async () => {
    const img = makeImage({ oci: false, layers: [makeLayer({ a: '1' }, 'zstd', false)] });
    fs.writeFileSync(out('dz.tar'), dockerArchive([{ img, repoTags: ['app:1'] }]));
    const r = await runCli(['verify', out('dz.tar')], { root });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/OK/);
    expect(ownStderr(r.stderr)).toMatch(/warning: app:1: layer 1\/1 "[^"]+" in manifest.json is zstd: Docker before 23 cannot load it/);
  });
});
