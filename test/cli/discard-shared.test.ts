import * as fs from 'node:fs';
import * as path from 'node:path';
import { Store } from '../../src';
import { runCli, tmpDir, rmrf } from '../helpers/cli';
import { makeImage, makeLayer, ociImageArchive, ownStderr } from '../unit/archive/import-fixtures';

/**
 * Issue 10 item 2: `load --discard-layers` must not delete a blob that another image or a
 * lease still references, and prune must keep a snapshot that is the only way left to
 * rebuild a retained layer.
 */
describe('load --discard-layers and prune never delete what is still needed (CLI)', () => {
  let dir: string;
  let root: string;
  beforeEach(() => {
    dir = tmpDir('imgtool-discard-cli-');
    root = path.join(dir, 'store');
  });
  afterEach(() => rmrf(dir));
  const file = (name: string, b: Buffer) => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, b);
    return p;
  };
  const ok = async (args: string[]) => {
    const r = await runCli(args, { root });
    expect({ args, stderr: ownStderr(r.stderr), code: r.code }).toEqual({ args, stderr: '', code: 0 });
    return r;
  };

  it('lease L holds A = [L0, S] (--no-unpack); discarding B = [S] keeps S; rmi B + prune keeps what save A needs', async () => {
    const l0 = makeLayer({ 'etc/base': 'base layer\n' }, 'gzip');
    const s = makeLayer({ 'etc/shared': 'shared layer\n' }, 'gzip');
    const a = makeImage({ layers: [l0, s], seed: 'a' });
    const b = makeImage({ layers: [s], seed: 'b' });
    const fa = file('a.tar', ociImageArchive(a, 'x.io/a:1'));
    const fb = file('b.tar', ociImageArchive(b, 'x.io/b:1'));

    await ok(['lease', 'create', '--id', 'L']);
    await ok(['load', '--no-unpack', '--lease', 'L', '-i', fa]);
    const d = await ok(['load', '--discard-layers', '-i', fb, '--json']);
    const discarded = JSON.parse(d.stdout).unpacked[0].discarded as Array<{ digest: string; freed: number }>;
    expect(discarded).toEqual([expect.objectContaining({ digest: s.digest, freed: 0 })]);
    const st = Store.open(root);
    try {
      expect(st.content.has(s.digest)).toBe(true);
    } finally {
      st.close();
    }

    await ok(['rmi', 'x.io/b:1']);
    await ok(['prune']);
    await ok(['prune', '--all']);
    const out = path.join(dir, 'a-out.tar');
    await ok(['save', '-o', out, 'x.io/a:1']);
    expect((await runCli(['verify', out])).code).toBe(0);
  });

  it('after S was discarded (no one else held it), rmi B + prune --all keeps the only snapshot that rebuilds S for A', async () => {
    const l0 = makeLayer({ 'etc/base': 'base layer 2\n' }, 'gzip');
    const s = makeLayer({ 'etc/shared': 'shared layer 2\n' }, 'gzip');
    const a = makeImage({ layers: [l0, s], seed: 'a2' });
    const b = makeImage({ layers: [s], seed: 'b2' });
    // B first: nothing else references S, so it is discarded.
    const d = await ok(['load', '--discard-layers', '-i', file('b.tar', ociImageArchive(b, 'x.io/b:2')), '--json']);
    expect(JSON.parse(d.stdout).unpacked[0].discarded).toEqual([expect.objectContaining({ digest: s.digest, freed: s.blob.length })]);
    // Then A, leased, content only; its S blob is gone again (as if A had been loaded
    // from a registry that only had the other layers): B's snapshot is S's only source.
    await ok(['lease', 'create', '--id', 'L']);
    await ok(['load', '--no-unpack', '--lease', 'L', '-i', file('a.tar', ociImageArchive(a, 'x.io/a:2'))]);
    const st = Store.open(root);
    try {
      st.meta.write(() => st.content.deleteLocked(s.digest));
    } finally {
      st.close();
    }
    await ok(['rmi', 'x.io/b:2']);
    await ok(['prune']);
    await ok(['prune', '--all']);
    const out = path.join(dir, 'a2-out.tar');
    await ok(['save', '-o', out, 'x.io/a:2']);
    expect((await runCli(['verify', out])).code).toBe(0);
  });
});
