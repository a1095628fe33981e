/**
 * The attacker's tests for "a variant row is a proof" (issue 10 item 1): an archive whose
 * config claims that its zstd layer X has the diffID of another image's good layer Y must
 * never make X stand in for Y — not in `save --compression`, `convert`, `unpack`, `fsck`
 * or `verify --strict`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runCli, tmpDir, rmrf } from '../helpers/cli';
import { makeImage, makeLayer, ociImageArchive, ownStderr, Image } from '../unit/archive/import-fixtures';
import { Store } from '../../src';
import { execFileSync } from 'node:child_process';

const listArchive = (f: string): string[] => execFileSync('tar', ['-tf', f]).toString().split('\n').filter(Boolean);

describe('trust: unproven blob <-> diffID claims (CLI)', () => {
  let dir: string;
  let root: string;
  let good: Image;
  let evil: Image;
  let goodFile: string;
  let evilFile: string;
  beforeEach(() => {
    dir = tmpDir('imgtool-trust-');
    root = path.join(dir, 'store');
    const y = makeLayer({ 'etc/good': 'good\n' }, 'gzip');
    good = makeImage({ layers: [y] });
    const x = makeLayer({ 'etc/evil': 'evil\n' }, 'zstd');
    // The hostile config claims X decompresses to Y's diffID.
    evil = makeImage({ layers: [{ ...x, diffId: y.diffId }] });
    goodFile = path.join(dir, 'good.tar');
    evilFile = path.join(dir, 'evil.tar');
    fs.writeFileSync(goodFile, ociImageArchive(good, 'x.io/good:1'));
    fs.writeFileSync(evilFile, ociImageArchive(evil, 'x.io/evil:1'));
  });
  afterEach(() => rmrf(dir));

  const variantRows = () => {
    const s = Store.open(root);
    try {
      return s.variants.list().map((v) => ({ digest: v.digest, diffId: v.diffId }));
    } finally {
      s.close();
    }
  };

  it('load --no-unpack of a lying archive records no variant; save --compression zstd of the good image never ships X', async () => {
    expect((await runCli(['load', '-i', goodFile], { root })).code).toBe(0);
    const l = await runCli(['load', '--no-unpack', '-i', evilFile], { root });
    expect(l.code).toBe(0);
    expect(variantRows().find((v) => v.digest === evil.layers[0].digest)).toBeUndefined();

    const out = path.join(dir, 'out.tar');
    const s = await runCli(['save', '--compression', 'zstd', '--format', 'oci', '-o', out, 'x.io/good:1'], { root });
    expect(ownStderr(s.stderr)).not.toMatch(/error/);
    expect(s.code).toBe(0);
    const names = listArchive(out);
    expect(names).not.toContain(`blobs/sha256/${evil.layers[0].digest.slice(7)}`);
    // The archive is honest: every layer decompresses to its config's diffID.
    const v = await runCli(['verify', '--strict', out], { root });
    expect(v.code).toBe(0);
  });

  it('a load whose unpack fails (diffID mismatch) leaves no variant row and no name', async () => {
    expect((await runCli(['load', '-i', goodFile], { root })).code).toBe(0);
    const rowsBefore = variantRows();
    // X's claimed diffID is Y's, whose snapshot exists: the load must still check X.
    const l = await runCli(['load', '-i', evilFile], { root });
    expect(l.code).not.toBe(0);
    expect(ownStderr(l.stderr)).toMatch(/^imgtool: error: .*x\.io\/evil:1.*layer 1.*sha256:[0-9a-f]{64}/m);
    expect(variantRows()).toEqual(rowsBefore);
    const imgs = JSON.parse((await runCli(['images', '--json'], { root })).stdout).map((i: { name: string }) => i.name);
    expect(imgs).toEqual(['x.io/good:1']);
  });

  it('convert of the good image does not pick X; unpack of the lying image fails; fsck reports it', async () => {
    expect((await runCli(['load', '-i', goodFile], { root })).code).toBe(0);
    expect((await runCli(['load', '--no-unpack', '-i', evilFile], { root })).code).toBe(0);
    const c = await runCli(['convert', '--compression', 'zstd', 'x.io/good:1', 'x.io/good:z', '--json'], { root });
    expect(c.code).toBe(0);
    const s = Store.open(root);
    let layerDigest: string;
    try {
      const rec = s.images.get('x.io/good:z')!;
      const m = JSON.parse((await s.content.readBuffer(rec.target.digest)).toString());
      layerDigest = m.layers[0].digest;
    } finally {
      s.close();
    }
    expect(layerDigest).not.toBe(evil.layers[0].digest);

    const u = await runCli(['unpack', 'x.io/evil:1'], { root });
    expect(u.code).not.toBe(0);
    expect(ownStderr(u.stderr)).toMatch(/x\.io\/evil:1.*layer 1.*does not decompress to|diffID/);

    const f = await runCli(['fsck', '--json'], { root });
    expect(f.code).not.toBe(0);
    const j = JSON.parse(f.stdout);
    expect(j.problems.some((p: { kind: string; subject: string }) => p.kind === 'image-invalid' && p.subject === evil.layers[0].digest)).toBe(true);
  });

  it('verify --strict refuses an archive whose layer does not decompress to its diffID', async () => {
    const v = await runCli(['verify', '--strict', evilFile], { root });
    expect(v.code).not.toBe(0);
    expect(ownStderr(v.stderr)).toMatch(/layer 1 sha256:[0-9a-f]{64}.* decompresses to sha256:[0-9a-f]{64}, but the config says/);
    // Without --strict the (expensive) decompression check is not made.
    expect((await runCli(['verify', evilFile], { root })).code).toBe(0);
  });
});
