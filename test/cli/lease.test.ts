import * as path from 'node:path';
import { runCli, tmpDir, rmrf } from '../helpers/cli';

describe('imgtool lease (CLI)', () => {
  let dir: string;
  let root: string;
  beforeEach(() => {
    dir = tmpDir('imgtool-lease-cli-');
    root = path.join(dir, 'store');
  });
  afterEach(() => rmrf(dir));

  it('create, ls, rm', async () => {
    const a = await runCli(['lease', 'create', '--id', 'build-1', '--expire', '24h', '--label', 'who=ci'], { root });
    expect(a.stderr).toBe('');
    expect(a.stdout.trim()).toBe('build-1');
    const b = await runCli(['lease', 'create', '--json'], { root });
    const bj = JSON.parse(b.stdout);
    expect(bj.id).toMatch(/^lease-/);
    expect(bj.expiresAt).toBeNull();

    const ls = await runCli(['lease', 'ls', '--json'], { root });
    const rows = JSON.parse(ls.stdout);
    expect(rows.map((r: { id: string }) => r.id).sort()).toEqual(['build-1', bj.id].sort());
    const b1 = rows.find((r: { id: string }) => r.id === 'build-1');
    expect(b1.labels).toEqual({ who: 'ci' });
    expect(Date.parse(b1.expiresAt) - Date.parse(b1.createdAt)).toBe(24 * 3600 * 1000);
    expect(b1.live).toBe(true);
    const text = await runCli(['lease', 'ls'], { root });
    expect(text.stdout).toMatch(/^ID\s+TYPE/);
    expect(text.stdout).toMatch(/build-1\s+user\s+\S+\s+\S+\s+0\s+live/);

    const rm = await runCli(['lease', 'rm', 'build-1', bj.id], { root });
    expect(rm.code).toBe(0);
    expect(rm.stdout).toBe(`removed build-1\nremoved ${bj.id}\n`);
    expect(JSON.parse((await runCli(['lease', 'ls', '--json'], { root })).stdout)).toEqual([]);
  });

  it('errors: duplicate id, bad duration, unknown lease (nothing removed)', async () => {
    await runCli(['lease', 'create', '--id', 'x'], { root });
    const dup = await runCli(['lease', 'create', '--id', 'x'], { root });
    expect(dup.code).not.toBe(0);
    expect(dup.stderr).toBe('imgtool: error: lease "x" already exists\n');
    const bad = await runCli(['lease', 'create', '--expire', '10 minutes'], { root });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/^imgtool: error: invalid duration "10 minutes"/);
    const rm = await runCli(['lease', 'rm', 'x', 'nope'], { root });
    expect(rm.code).not.toBe(0);
    expect(rm.stderr).toBe('imgtool: error: lease "nope" not found; nothing removed\n');
    expect(JSON.parse((await runCli(['lease', 'ls', '--json'], { root })).stdout).map((r: { id: string }) => r.id)).toEqual(['x']);
  });

  it('an expired lease shows as expired and prune clears it', async () => {
    await runCli(['lease', 'create', '--id', 'short', '--expire', '1ms'], { root });
    await new Promise((r) => setTimeout(r, 20));
    const ls = await runCli(['lease', 'ls'], { root });
    expect(ls.stdout).toMatch(/short\s+user.*expired/);
    const p = JSON.parse((await runCli(['prune', '--json'], { root })).stdout);
    expect(p.leases).toEqual(['short']);
  });
});
