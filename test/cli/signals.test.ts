/**
 * SIGINT / SIGTERM (issue 10 item 7): the running command is cancelled, its outputs aborted
 * (no `FILE.tmp-*` left), a load's names undone and its process lease released; the exit
 * status is 128 + the signal number (130 / 143).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { ImageBuilder } from '../../src/builder';
import { runCli, tmpDir, rmrf, BIN } from '../helpers/cli';

interface Running {
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
  kill(sig: NodeJS.Signals): void;
}

function start(args: string[], root: string): Running {
  const env = { ...process.env, IMGTOOL_ROOT: root };
  delete env.FORCE_COLOR;
  const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  const se: Buffer[] = [];
  child.stderr!.on('data', (d) => se.push(d));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stderr: Buffer.concat(se).toString() })),
  );
  return { done, kill: (sig) => child.kill(sig) };
}

/** Poll until `pred()` or the process ends; true when `pred()` held while it was running. */
async function waitFor(r: Running, pred: () => boolean, timeoutMs = 60_000): Promise<boolean> {
  let ended = false;
  void r.done.then(() => (ended = true));
  const t0 = Date.now();
  while (!ended && Date.now() - t0 < timeoutMs) {
    if (pred()) return true;
    await new Promise((res) => setTimeout(res, 2));
  }
  return false;
}

const BIG = 256 * 1024 * 1024;

describe('SIGINT / SIGTERM (CLI)', () => {
  let dir: string;
  let root: string;
  let bigArchive: string;
  let smallArchive: string;
  beforeAll(async () => {
    dir = tmpDir('imgtool-signals-');
    root = path.join(dir, 'store');
    const b = new ImageBuilder(path.join(dir, 'build'));
    const big = await b.layer([{ path: 'big.bin', content: { size: BIG, seed: 7 } }], { compression: 'none' });
    const small = await b.layer([{ path: 'small', content: 'small\n' }], { compression: 'none' });
    bigArchive = path.join(dir, 'big.tar');
    smallArchive = path.join(dir, 'small.tar');
    await b.ociArchive(bigArchive, { images: [{ target: b.image({ layers: [big] }).descriptor, names: ['example.com/big:1'] }] });
    await b.ociArchive(smallArchive, { images: [{ target: b.image({ layers: [small] }).descriptor, names: ['example.com/big:1'] }] });
    fs.rmSync(path.join(dir, 'build'), { recursive: true, force: true });
    const l = await runCli(['load', '--no-unpack', '-i', bigArchive], { root });
    expect(l.code).toBe(0);
  }, 300_000);
  afterAll(() => rmrf(dir));

  async function expectCleanStore(r: string): Promise<void> {
    const f = await runCli(['fsck', '--json'], { root: r });
    expect(f.code).toBe(0);
    expect(JSON.parse(f.stdout).problems).toEqual([]);
    const leases = await runCli(['lease', 'ls', '--json'], { root: r });
    expect(JSON.parse(leases.stdout)).toEqual([]);
  }

  it.each([
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const)('save -o OUT interrupted by %s: exit %d, no OUT and no temp file, lease released', async (sig, status) => {
    const sub = fs.mkdtempSync(path.join(dir, `save-${sig}-`));
    const out = path.join(sub, 'out.tar');
    const r = start(['save', '-o', out, 'example.com/big:1'], root);
    const sawTemp = await waitFor(r, () => fs.readdirSync(sub).some((n) => n.startsWith('out.tar.tmp-')));
    expect(sawTemp).toBe(true);
    r.kill(sig);
    const res = await r.done;
    expect({ code: res.code, signal: res.signal }).toEqual({ code: status, signal: null });
    expect(res.stderr).toMatch(new RegExp(`^imgtool: error: .*interrupted by ${sig}`, 'm'));
    expect(fs.readdirSync(sub)).toEqual([]);
    await expectCleanStore(root);
  }, 120_000);

  it('export-rootfs -o OUT interrupted by SIGINT: exit 130, nothing left', async () => {
    const sub = fs.mkdtempSync(path.join(dir, 'rootfs-'));
    const out = path.join(sub, 'rootfs.tar');
    const r = start(['export-rootfs', 'example.com/big:1', '-o', out], root);
    const sawTemp = await waitFor(r, () => fs.readdirSync(sub).length > 0);
    expect(sawTemp).toBe(true);
    r.kill('SIGINT');
    const res = await r.done;
    expect({ code: res.code, signal: res.signal }).toEqual({ code: 130, signal: null });
    expect(fs.readdirSync(sub)).toEqual([]);
    await expectCleanStore(root);
  }, 120_000);

  it('save waiting for a reader of a FIFO stops at once on SIGINT (no thread left blocked in open); the FIFO stays, no lease left', async () => {
    const sub = fs.mkdtempSync(path.join(dir, 'fifo-'));
    const fifo = path.join(sub, 'pipe');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const r = start(['save', '-o', fifo, 'example.com/big:1'], root);
    // Wait until the command holds its process lease (it is then past planning, at the open).
    let held = false;
    for (let i = 0; i < 40 && !held; i++) {
      await new Promise((res) => setTimeout(res, 100));
      held = JSON.parse((await runCli(['lease', 'ls', '--json'], { root })).stdout).length > 0;
    }
    expect(held).toBe(true);
    await new Promise((res) => setTimeout(res, 300));
    const t0 = Date.now();
    r.kill('SIGINT');
    const res = await r.done;
    expect(Date.now() - t0).toBeLessThan(5000); // not the 10 s wind-down (nor a hang)
    expect({ code: res.code, signal: res.signal }).toEqual({ code: 130, signal: null });
    expect(fs.lstatSync(fifo).isFIFO()).toBe(true);
    expect(fs.readdirSync(sub)).toEqual(['pipe']);
    await expectCleanStore(root);
  }, 120_000);

  it('load killed by SIGTERM while unpacking: exit 143, the re-pointed name is back, fsck clean, no lease', async () => {
    const r2 = path.join(dir, 'store2');
    const first = await runCli(['load', '-i', smallArchive, '--json'], { root: r2 });
    expect(first.code).toBe(0);
    const before = JSON.parse((await runCli(['images', '--json'], { root: r2 })).stdout);
    expect(before.map((i: { name: string }) => i.name)).toEqual(['example.com/big:1']);
    const snapsBefore = JSON.parse((await runCli(['snapshots', '--json'], { root: r2 })).stdout);

    const tmp = path.join(r2, 'snapshots', 'tmp');
    const r = start(['load', '-i', bigArchive], r2);
    const unpacking = await waitFor(r, () => {
      try {
        return fs.readdirSync(tmp).some((n) => n.includes('-extract-'));
      } catch {
        return false;
      }
    });
    expect(unpacking).toBe(true);
    r.kill('SIGTERM');
    const res = await r.done;
    expect({ code: res.code, signal: res.signal }).toEqual({ code: 143, signal: null });
    expect(JSON.parse((await runCli(['images', '--json'], { root: r2 })).stdout)).toEqual(before);
    expect(JSON.parse((await runCli(['snapshots', '--json'], { root: r2 })).stdout)).toEqual(snapsBefore);
    await expectCleanStore(r2);
  }, 180_000);
});
