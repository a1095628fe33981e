import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Store } from '../../src';
import { runCli, tmpDir, rmrf } from '../helpers/cli';
import { layer, makeImage, addSnapshots } from '../unit/gc/fixture';

describe('imgtool prune (CLI)', () => {
  let dir: string;
  let root: string;
  beforeEach(() => {
    dir = tmpDir('imgtool-prune-cli-');
    root = path.join(dir, 'store');
  });
  afterEach(() => rmrf(dir));

  async function build(): Promise<{ keep: string[]; junk: string; chains: string[]; layers: string[] }> {
    const store = Store.open(root);
    try {
      const ls = [layer('cli1'), layer('cli2')];
      const img = await makeImage(store, 'docker.io/library/app:1', ls);
      const chains = addSnapshots(store, ls);
      const junk = await store.content.ingestBuffer(Buffer.from('nobody wants me'));
      return { keep: [img.manifest, img.config, ...ls.map((l) => l.digest)], junk: junk.digest, chains, layers: ls.map((l) => l.digest) };
    } finally {
      store.close();
    }
  }

  const blobs = () => {
    const s = Store.open(root);
    try {
      return s.content.list().map((b) => b.digest).sort();
    } finally {
      s.close();
    }
  };

  it('--dry-run lists and changes nothing; prune removes only what nothing retains and prints bytes freed', async () => {
    const b = await build();
    const before = blobs();
    const dry = await runCli(['prune', '--dry-run'], { root });
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain(`would remove blob ${b.junk}`);
    expect(dry.stdout).toMatch(/would free 15 B: 1 blob\(s\), 0 snapshot\(s\)/);
    expect(blobs()).toEqual(before);

    const r = await runCli(['prune'], { root });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`removed blob ${b.junk} (15 B)`);
    expect(r.stdout).toMatch(/^freed 15 B: 1 blob\(s\)/m);
    expect(blobs()).toEqual([...b.keep].sort());

    const json = await runCli(['prune', '--json'], { root });
    expect(JSON.parse(json.stdout)).toEqual({ dryRun: false, blobs: [], snapshots: [], variants: [], leases: [], tempFiles: [], bytesFreed: 0 });
  });

  it('--all drops snapshots only images hold; after rmi everything goes', async () => {
    const b = await build();
    const all = await runCli(['prune', '--all', '--json'], { root });
    expect(all.code).toBe(0);
    const res = JSON.parse(all.stdout);
    expect(res.snapshots.map((s: { chainId: string }) => s.chainId).sort()).toEqual([...b.chains].sort());
    expect(blobs()).toEqual([...b.keep].sort());

    expect((await runCli(['rmi', 'app:1'], { root })).code).toBe(0);
    const r = await runCli(['prune'], { root });
    expect(r.code).toBe(0);
    expect(blobs()).toEqual([]);
    expect(fs.readdirSync(path.join(root, 'content', 'blobs', 'sha256'))).toEqual([]);
  });

  it('a leased snapshot keeps its chain and blobs after rmi; lease rm + prune removes them', async () => {
    const b = await build();
    const s = Store.open(root);
    s.leases.create({ id: 'hold' }).attach('snapshot', b.chains[1]);
    s.close();
    await runCli(['rmi', 'app:1'], { root });
    const r = await runCli(['prune', '--all', '--json'], { root });
    const res = JSON.parse(r.stdout);
    expect(res.snapshots).toEqual([]);
    expect(blobs()).toEqual([...b.layers].sort());
    expect((await runCli(['lease', 'rm', 'hold'], { root })).code).toBe(0);
    const r2 = JSON.parse((await runCli(['prune', '--json'], { root })).stdout);
    expect(r2.snapshots).toHaveLength(2);
    expect(blobs()).toEqual([]);
  });

  it('clears leases of processes that have exited', async () => {
    await build();
    const script = `
      const { Store } = require(${JSON.stringify(path.resolve(__dirname, '../../dist/src'))});
      const { acquireProcessLease } = require(${JSON.stringify(path.resolve(__dirname, '../../dist/src/leases'))});
      const s = Store.open(${JSON.stringify(root)});
      const l = acquireProcessLease(s);
      l.attach('content', s.content.list()[0].digest);
      process.kill(process.pid, 'SIGKILL');
    `;
    spawnSync(process.execPath, ['-e', script]);
    const ls = JSON.parse((await runCli(['lease', 'ls', '--json'], { root })).stdout);
    expect(ls).toHaveLength(1);
    expect(ls[0].type).toBe('process');
    expect(ls[0].live).toBe(false);
    const r = JSON.parse((await runCli(['prune', '--json'], { root })).stdout);
    expect(r.leases).toEqual([ls[0].id]);
    expect(JSON.parse((await runCli(['lease', 'ls', '--json'], { root })).stdout)).toEqual([]);
  });
});
