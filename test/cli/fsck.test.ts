import * as fs from 'node:fs';
import * as path from 'node:path';
import { Store } from '../../src';
import { runCli, tmpDir, rmrf } from '../helpers/cli';
import { layer, makeImage } from '../unit/gc/fixture';
import { makeImage as makeArchiveImage, makeLayer, ociImageArchive, ownStderr } from '../unit/archive/import-fixtures';

describe('imgtool fsck (CLI)', () => {
  let dir: string;
  let root: string;
  beforeEach(() => {
    dir = tmpDir('imgtool-fsck-cli-');
    root = path.join(dir, 'store');
  });
  afterEach(() => rmrf(dir));

  it('exit 0 on a healthy store; non-zero naming the damage; --repair reports the unrecoverable', async () => {
    const s = Store.open(root);
    const ls = [layer('f1'), layer('f2')];
    await makeImage(s, 'docker.io/library/fs:1', ls);
    s.close();
    const ok = await runCli(['fsck'], { root });
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/checked 4 blob\(s\) .* 0 snapshot\(s\), 1 image\(s\): 0 error\(s\), 0 orphan\(s\)/);

    const p = path.join(root, 'content', 'blobs', 'sha256', ls[1].digest.slice(7));
    fs.chmodSync(p, 0o644);
    fs.appendFileSync(p, 'x');
    const bad = await runCli(['fsck'], { root });
    expect(bad.code).not.toBe(0);
    expect(bad.stdout).toContain(`error: blob ${ls[1].digest}: size mismatch`);
    expect(bad.stderr).toMatch(/^imgtool: error: store check found 1 error\(s\); first: blob sha256:[a-f0-9]{64}: size mismatch.*fsck --repair/);

    const rep = await runCli(['fsck', '--repair', '--json'], { root });
    expect(rep.code).not.toBe(0);
    const j = JSON.parse(rep.stdout);
    expect(j.problems.map((x: { kind: string }) => x.kind).sort()).toEqual(['blob-corrupt', 'image-incomplete']);
    expect(j.problems.every((x: { unrecoverable?: boolean }) => x.unrecoverable)).toBe(true);
    expect(fs.existsSync(p)).toBe(false);
  });
});

describe('corrupt stored blobs: re-load repairs, fsck --repair quarantines (CLI)', () => {
  let dir: string;
  let root: string;
  beforeEach(() => {
    dir = tmpDir('imgtool-quarantine-cli-');
    root = path.join(dir, 'store');
  });
  afterEach(() => rmrf(dir));

  it('a truncated blob is repaired by the next load; a flipped byte is quarantined by fsck --repair and restored by a load', async () => {
    const img = makeArchiveImage({ layers: [makeLayer({ 'a/one': 'first layer\n'.repeat(50) }), makeLayer({ 'b/two': 'second layer\n'.repeat(50) })] });
    const archive = path.join(dir, 'img.tar');
    fs.writeFileSync(archive, ociImageArchive(img, 'x.io/q:1'));
    const blob = (d: string) => path.join(root, 'content', 'blobs', 'sha256', d.slice(7));
    const load = async () => {
      const r = await runCli(['load', '--no-unpack', '-i', archive], { root });
      expect(ownStderr(r.stderr)).toBe('');
      expect(r.code).toBe(0);
    };
    await load();

    const truncated = img.layers[0].desc.digest;
    const flipped = img.layers[1].desc.digest;
    const t = blob(truncated);
    fs.chmodSync(t, 0o644);
    fs.truncateSync(t, 10);
    const f = blob(flipped);
    fs.chmodSync(f, 0o644);
    const bytes = fs.readFileSync(f);
    bytes[bytes.length >> 1] ^= 0xff;
    fs.writeFileSync(f, bytes);

    // Re-loading notices the size and rewrites the truncated blob; the same-size corruption needs fsck.
    await load();
    expect(fs.readFileSync(t).equals(img.layers[0].blob)).toBe(true);
    const bad = await runCli(['fsck', '--json'], { root });
    expect(bad.code).not.toBe(0);
    expect(JSON.parse(bad.stdout).problems.map((p: { kind: string; subject: string }) => `${p.kind} ${p.subject}`)).toEqual([`blob-corrupt ${flipped}`]);

    // --repair moves the file to the quarantine directory and forgets its rows; the image now misses it.
    const rep = await runCli(['fsck', '--repair', '--json'], { root });
    expect(rep.code).not.toBe(0);
    const rj = JSON.parse(rep.stdout);
    const corrupt = rj.problems.find((p: { kind: string }) => p.kind === 'blob-corrupt');
    expect(corrupt.subject).toBe(flipped);
    expect(corrupt.repaired).toMatch(/quarantined/);
    expect(fs.existsSync(f)).toBe(false);
    const q = path.join(root, 'content', 'quarantine');
    const kept = fs.readdirSync(q);
    expect(kept).toHaveLength(1);
    expect(kept[0].startsWith(flipped.slice(7))).toBe(true);
    expect(fs.readFileSync(path.join(q, kept[0])).equals(bytes)).toBe(true);
    const s = Store.open(root);
    try {
      expect(s.content.has(flipped)).toBe(false);
      expect(s.variants.get(flipped)).toBeUndefined();
      expect(s.content.labels(flipped)).toEqual({});
    } finally {
      s.close();
    }
    const after = await runCli(['fsck', '--json'], { root });
    expect(after.code).not.toBe(0);
    const aj = JSON.parse(after.stdout);
    expect(aj.problems.map((p: { kind: string }) => p.kind)).toEqual(['image-incomplete']);
    expect(aj.problems[0].message).toContain(flipped);

    // The next load carries the blob again: restored, the store is clean, save works.
    await load();
    expect(fs.readFileSync(f).equals(img.layers[1].blob)).toBe(true);
    const clean = await runCli(['fsck'], { root });
    expect(clean.stderr).toBe('');
    expect(clean.code).toBe(0);
    expect(clean.stdout).toMatch(/0 error\(s\), 0 orphan\(s\)/);
    const out = path.join(dir, 'out.tar');
    const save = await runCli(['save', '-o', out, 'x.io/q:1'], { root });
    expect(save.stderr).toBe('');
    expect(save.code).toBe(0);
    const ver = await runCli(['verify', out], { root });
    expect(ver.code).toBe(0);
  });
});
