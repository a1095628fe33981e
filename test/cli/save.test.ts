import * as fs from 'node:fs';
import * as path from 'node:path';
import * as crypto from 'node:crypto';
import { spawn } from 'node:child_process';
import { Store, sha256 } from '../../src';
import { runCli, tmpDir, rmrf, BIN } from '../helpers/cli';
import { addImage, addIndex, dropBlob, readTar, entryJSON } from '../unit/archive/export-fixtures';

const amd64 = { os: 'linux', architecture: 'amd64' };
const arm64 = { os: 'linux', architecture: 'arm64' };

describe('imgtool save (CLI)', () => {
  let dir: string;
  let root: string;
  let idxDigest: string;
  let armManifest: string;
  let bigLayer: string;
  beforeAll(async () => {
    dir = tmpDir('imgtool-save-cli-');
    root = path.join(dir, 'store');
    const store = Store.open(root);
    try {
      const x86 = await addImage(store, { platform: amd64, layers: [{ 'bin/sh': 'amd64 shell' }, { 'etc/motd': 'hi' }], label: 'amd64' });
      const arm = await addImage(store, { platform: arm64, layers: [{ 'bin/sh': 'arm64 shell' }], label: 'arm64' });
      armManifest = arm.manifest.digest;
      const idx = await addIndex(store, [x86, arm]);
      idxDigest = idx.digest;
      store.images.put('docker.io/library/multi:1', idx);
      // ~3 MiB of incompressible data, to overflow a pipe buffer.
      const big = await addImage(store, { layers: [{ blob: crypto.createHash('sha512').update('seed').digest().toString('hex').repeat(1).padEnd(64) }, { 'big.bin': prng(3 << 20) }], compression: 'none', label: 'big' });
      bigLayer = big.layers[1].desc.digest;
      store.images.put('docker.io/library/big:1', big.manifest);
      const broken = await addImage(store, { layers: [{ a: 'a' }, { b: 'b' }], label: 'broken' });
      store.images.put('docker.io/library/broken:1', broken.manifest);
      dropBlob(store, broken.layers[1].desc.digest);
    } finally {
      store.close();
    }
  });
  afterAll(() => rmrf(dir));

  const out = (n: string) => path.join(dir, n);

  it('saves to a file twice with identical bytes and prints a summary on stdout', async () => {
    const a = await runCli(['save', '-o', out('a.tar'), 'multi:1', 'big:1'], { root });
    expect(ownStderr(a.stderr)).toBe('');
    expect(a.code).toBe(0);
    expect(a.stdout).toMatch(/saved docker.io\/library\/multi:1 sha256:[0-9a-f]{12} linux\/amd64,linux\/arm64/);
    expect(a.stdout).toMatch(/wrote .*a\.tar: 2 image\(s\)/);
    const b = await runCli(['save', '-o', out('b.tar'), 'big:1', 'multi:1'], { root });
    expect(b.code).toBe(0);
    expect(fs.readFileSync(out('a.tar')).equals(fs.readFileSync(out('b.tar')))).toBe(true);
    expect(fs.readdirSync(dir).filter((n) => n.includes('.tmp-'))).toEqual([]);
    const entries = await readTar(out('a.tar'));
    expect(entryJSON(entries, 'index.json').manifests.find((m: { digest: string }) => m.digest === idxDigest)).toBeDefined();
  });

  it('-o - writes only the archive to stdout; messages go to stderr', async () => {
    const f = out('stdout.tar');
    const r = await runCli(['save', '-o', '-', 'multi:1'], { root, stdoutFile: f });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/saved docker.io\/library\/multi:1/);
    await runCli(['save', '-o', out('file.tar'), 'multi:1'], { root });
    expect(fs.readFileSync(f).equals(fs.readFileSync(out('file.tar')))).toBe(true);
  });

  it('--platform writes a new index and prints old -> new', async () => {
    const r = await runCli(['save', '-o', out('p.tar'), '--platform', 'linux/arm64', 'multi:1'], { root });
    expect(r.code).toBe(0);
    const m = new RegExp(`index ${idxDigest} -> (sha256:[0-9a-f]{64})`).exec(r.stdout);
    expect(m).not.toBeNull();
    const entries = await readTar(out('p.tar'));
    const index = entryJSON(entries, 'index.json');
    expect(index.manifests[0].digest).toBe(m![1]);
    const blob = entries.find((e) => e.name === `blobs/sha256/${m![1].slice(7)}`)!;
    expect(sha256(blob.data)).toBe(m![1]);
    expect(JSON.parse(blob.data.toString()).manifests.map((x: { digest: string }) => x.digest)).toEqual([armManifest]);
  });

  it('--json reports the result', async () => {
    const r = await runCli(['save', '-o', out('j.tar'), '--json', '--platform', 'linux/amd64', 'multi:1'], { root });
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.images[0]).toMatchObject({ name: 'docker.io/library/multi:1', storeDigest: idxDigest, platforms: ['linux/amd64'], leftOut: ['linux/arm64'] });
    expect(j.changes[0]).toMatchObject({ kind: 'index', from: idxDigest });
  });

  it('a missing blob fails naming image, layer and digest, and leaves no file (also for -o -)', async () => {
    const r = await runCli(['save', '-o', out('x.tar'), 'multi:1', 'broken:1'], { root });
    expect(r.code).not.toBe(0);
    expect(ownStderr(r.stderr)).toMatch(/^imgtool: error: cannot save: image docker.io\/library\/broken:1 \(linux\/amd64, manifest sha256:[0-9a-f]{64}\): layer 2 sha256:[0-9a-f]{64} .*not in the store/);
    expect(fs.existsSync(out('x.tar'))).toBe(false);
    expect(fs.readdirSync(dir).filter((n) => n.startsWith('x.tar'))).toEqual([]);
    const f = out('x-stdout.tar');
    const s = await runCli(['save', '-o', '-', 'broken:1'], { root, stdoutFile: f });
    expect(s.code).not.toBe(0);
    expect(s.stderr).toMatch(/layer 2 sha256:/);
    expect(fs.statSync(f).size).toBe(0);
  });

  it('an unknown image fails cleanly', async () => {
    const r = await runCli(['save', '-o', out('u.tar'), 'nope:1'], { root });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/imgtool: error: image "nope:1" not found/);
    expect(fs.existsSync(out('u.tar'))).toBe(false);
  });

  it('-o - into a pipe closed early (| head -c 10) exits non-zero', async () => {
    const res = await new Promise<{ code: number; stderr: string; got: number }>((resolve, reject) => {
      const child = spawn(process.execPath, [BIN, 'save', '-o', '-', 'big:1'], { env: { ...process.env, IMGTOOL_ROOT: root }, stdio: ['ignore', 'pipe', 'pipe'] });
      let got = 0;
      const se: Buffer[] = [];
      child.stderr.on('data', (d) => se.push(d));
      child.stdout.on('data', (d: Buffer) => {
        got += d.length;
        if (got >= 10) child.stdout.destroy(); // the reader goes away, like head -c 10
      });
      child.on('error', reject);
      child.on('close', (code) => resolve({ code: code ?? -1, stderr: Buffer.concat(se).toString(), got }));
    });
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/closed before the archive was complete/);
  });

  it('same through a shell pipeline with head -c 10', async () => {
    const sh = `set -o pipefail; node ${JSON.stringify(BIN)} save -o - big:1 | head -c 10 > /dev/null`;
    const r = await new Promise<{ code: number; stderr: string }>((resolve) => {
      const child = spawn('bash', ['-c', sh], { env: { ...process.env, IMGTOOL_ROOT: root } });
      const se: Buffer[] = [];
      child.stderr.on('data', (d) => se.push(d));
      child.on('close', (code) => resolve({ code: code ?? -1, stderr: Buffer.concat(se).toString() }));
    });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/imgtool: error: output stdout was closed/);
    void bigLayer;
  });

  it('--compression zstd converts layers (stored as variants) and prints old -> new manifest digests', async () => {
    const r = await runCli(['save', '-o', out('zs.tar'), '--compression', 'zstd', '--platform', 'linux/amd64', 'multi:1'], { root });
    // the only warnings: Docker cannot load zstd, so manifest.json is left out (test/cli/save-docker.test.ts)
    expect(ownStderr(r.stderr).split('\n').filter((l) => l && !/manifest\.json/.test(l))).toEqual([]);
    expect(r.code).toBe(0);
    const m = /manifest linux\/amd64 (sha256:[0-9a-f]{64}) -> (sha256:[0-9a-f]{64})/.exec(r.stdout);
    expect(m).not.toBeNull();
    expect(r.stdout).toMatch(new RegExp(`index ${idxDigest} -> sha256:`));
    const entries = await readTar(out('zs.tar'));
    const manifest = entryJSON(entries, `blobs/sha256/${m![2].slice(7)}`);
    expect(manifest.layers.map((l: { mediaType: string }) => l.mediaType)).toEqual([
      'application/vnd.oci.image.layer.v1.tar+zstd', 'application/vnd.oci.image.layer.v1.tar+zstd',
    ]);
    for (const l of manifest.layers) {
      const e = entries.find((x) => x.name === `blobs/sha256/${l.digest.slice(7)}`)!;
      expect(e.data.subarray(0, 4).toString('hex')).toBe('28b52ffd');
    }
    // Converted once: a second save reuses the variants, byte for byte.
    const again = await runCli(['save', '-o', out('zs2.tar'), '--compression', 'zstd', '--platform', 'linux/amd64', 'multi:1'], { root });
    expect(again.code).toBe(0);
    expect(fs.readFileSync(out('zs.tar')).equals(fs.readFileSync(out('zs2.tar')))).toBe(true);
  });

  it('imgtool verify --strict accepts the archive; load + save again gives the same bytes', async () => {
    const f = out('rt.tar');
    expect((await runCli(['save', '-o', f, 'multi:1', 'big:1'], { root })).code).toBe(0);
    const v = await runCli(['verify', '--strict', f], { root });
    expect(ownStderr(v.stderr)).toBe('');
    expect(v.code).toBe(0);
    const root2 = path.join(dir, 'store2');
    const l = await runCli(['load', '--no-unpack', '-i', f], { root: root2 });
    expect(l.code).toBe(0);
    const again = out('rt2.tar');
    expect((await runCli(['save', '-o', again, 'big:1', 'multi:1'], { root: root2 })).code).toBe(0);
    expect(fs.readFileSync(again).equals(fs.readFileSync(f))).toBe(true);
  });

  it('refuses --format docker with --compression zstd and bad flag values', async () => {
    const r = await runCli(['save', '-o', out('z.tar'), '--format', 'docker', '--compression', 'zstd', 'multi:1'], { root });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/zstd/);
    const b = await runCli(['save', '-o', out('z.tar'), '--format', 'tarball', 'multi:1'], { root });
    expect(b.code).not.toBe(0);
    expect(fs.existsSync(out('z.tar'))).toBe(false);
  });
});

/**
 * stderr without Node process warnings (oclif prints one while another engineer's command
 * file is being rebuilt in dist/): only what imgtool itself printed.
 */
function ownStderr(stderr: string): string {
  return stderr.replace(/^\(node:\d+\) Warning:[\s\S]*?^\(Use `node --trace-warnings[^\n]*\n/gm, '');
}

/** Deterministic incompressible bytes. */
function prng(n: number): Buffer {
  const out = Buffer.alloc(n);
  let off = 0;
  let ctr = 0;
  while (off < n) {
    const h = crypto.createHash('sha256').update(`fixture-${ctr++}`).digest();
    off += h.copy(out, off);
  }
  return out;
}
