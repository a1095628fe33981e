/**
 * `-o PATH` when PATH already exists and is not a plain file (issue 10 item 6): a FIFO or a
 * device is written directly (streamed, like `-o -`), a symlink is followed (the file it points
 * to is replaced by temp + rename in that file's directory; the symlink stays), a directory is
 * a clear error. For save, export-rootfs and kind preload.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { Store } from '../../src';
import { runCli, tmpDir, rmrf, CliResult } from '../helpers/cli';
import { addImage } from '../unit/archive/export-fixtures';

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** Run the CLI with `cat FIFO > sink` reading the FIFO; returns the CLI result and what cat read. */
async function runWithFifoReader(args: string[], root: string, fifo: string, sink: string): Promise<{ r: CliResult; read: Buffer }> {
  const fd = fs.openSync(sink, 'w');
  const cat = spawn('cat', [fifo], { stdio: ['ignore', fd, 'inherit'] });
  const catDone = new Promise<void>((res) => cat.on('close', () => res()));
  try {
    const r = await runCli(args, { root });
    // A broken save never opens the FIFO: cat would block forever.
    const timer = setTimeout(() => cat.kill('SIGKILL'), 5000);
    await catDone;
    clearTimeout(timer);
    return { r, read: fs.readFileSync(sink) };
  } finally {
    fs.closeSync(fd);
  }
}

function mkfifo(p: string): void {
  expect(spawnSync('mkfifo', [p]).status).toBe(0);
}

describe('-o PATH that is a FIFO, a device, a symlink or a directory (CLI)', () => {
  let dir: string;
  let root: string;
  let reference: Buffer;
  let rootfsReference: Buffer;
  beforeAll(async () => {
    dir = tmpDir('imgtool-output-targets-');
    root = path.join(dir, 'store');
    const store = Store.open(root);
    try {
      const img = await addImage(store, { layers: [{ 'bin/sh': 'shell' }, { 'etc/motd': 'hello' }], label: 'out' });
      store.images.put('docker.io/library/out:1', img.manifest);
    } finally {
      store.close();
    }
    const a = await runCli(['save', '-o', path.join(dir, 'reference.tar'), 'out:1'], { root });
    expect(a.code).toBe(0);
    reference = fs.readFileSync(path.join(dir, 'reference.tar'));
    const b = await runCli(['export-rootfs', 'out:1', '-o', path.join(dir, 'rootfs-reference.tar')], { root });
    expect(b.code).toBe(0);
    rootfsReference = fs.readFileSync(path.join(dir, 'rootfs-reference.tar'));
  });
  afterAll(() => rmrf(dir));

  const leftovers = (d: string) => fs.readdirSync(d).filter((n) => /\.tmp/.test(n));

  describe.each([
    ['save', (o: string) => ['save', '-o', o, 'out:1'], () => reference],
    ['export-rootfs', (o: string) => ['export-rootfs', 'out:1', '-o', o], () => rootfsReference],
  ])('%s', (name, args, expected) => {
    it('-o FIFO streams the whole archive to the reader; the FIFO stays a FIFO', async () => {
      const sub = fs.mkdtempSync(path.join(dir, `${name}-fifo-`));
      const fifo = path.join(sub, 'pipe');
      mkfifo(fifo);
      const { r, read } = await runWithFifoReader(args(fifo), root, fifo, path.join(dir, `${name}-fifo-read`));
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(fs.lstatSync(fifo).isFIFO()).toBe(true);
      expect(read.length).toBe(expected().length);
      expect(read.equals(expected())).toBe(true);
      expect(fs.readdirSync(sub)).toEqual(['pipe']);
    });

    it('-o CHAR-DEVICE (a /dev/null node) writes to the device; it stays a char device', async () => {
      if (!isRoot) {
        process.stderr.write(`SKIPPED (LOUDLY): ${name} -o device needs root to create a device node\n`);
        return;
      }
      const sub = fs.mkdtempSync(path.join(dir, `${name}-dev-`));
      // A clone of /dev/null (c 1 3): a broken build must not replace the machine's /dev/null.
      const dev = path.join(sub, 'null');
      expect(spawnSync('mknod', ['-m', '666', dev, 'c', '1', '3']).status).toBe(0);
      const r = await runCli(args(dev), { root });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const st = fs.lstatSync(dev);
      expect(st.isCharacterDevice()).toBe(true);
      expect(st.rdev).toBe(fs.statSync('/dev/null').rdev);
      expect(fs.readdirSync(sub)).toEqual(['null']);
      // Now the real one (safe: the same code path just left a device node a device node).
      const n = await runCli(args('/dev/null'), { root });
      expect(n.code).toBe(0);
      expect(fs.lstatSync('/dev/null').isCharacterDevice()).toBe(true);
      expect(leftovers('/dev')).toEqual([]);
    });

    it('-o SYMLINK replaces the file it points to (temp + rename there); the symlink stays', async () => {
      const sub = fs.mkdtempSync(path.join(dir, `${name}-link-`));
      const real = fs.mkdtempSync(path.join(dir, `${name}-real-`));
      const target = path.join(real, 'target.tar');
      fs.writeFileSync(target, 'old');
      const link = path.join(sub, 'link.tar');
      fs.symlinkSync(path.relative(sub, target), link);
      const r = await runCli(args(link), { root });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
      expect(fs.readlinkSync(link)).toBe(path.relative(sub, target));
      expect(fs.readFileSync(target).equals(expected())).toBe(true);
      expect(fs.readdirSync(sub)).toEqual(['link.tar']);
      expect(fs.readdirSync(real)).toEqual(['target.tar']);

      // A chain of symlinks, the last one dangling into an existing directory: that file is created.
      const dangling = path.join(sub, 'dangling.tar');
      const hop = path.join(sub, 'hop.tar');
      fs.symlinkSync(path.join(real, 'new.tar'), hop);
      fs.symlinkSync('hop.tar', dangling);
      const d = await runCli(args(dangling), { root });
      expect(d.stderr).toBe('');
      expect(d.code).toBe(0);
      expect(fs.lstatSync(dangling).isSymbolicLink()).toBe(true);
      expect(fs.lstatSync(hop).isSymbolicLink()).toBe(true);
      expect(fs.readFileSync(path.join(real, 'new.tar')).equals(expected())).toBe(true);

      // Dangling into a directory that does not exist: a clear error, nothing created.
      const nowhere = path.join(sub, 'nowhere.tar');
      fs.symlinkSync(path.join(dir, 'no-such-dir', 'x.tar'), nowhere);
      const e = await runCli(args(nowhere), { root });
      expect(e.code).toBe(1);
      expect(e.stderr).toMatch(new RegExp(`^imgtool: error: output ${nowhere.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: directory .*no-such-dir \\(where its symlink points\\) does not exist\\n$`));
      expect(fs.existsSync(path.join(dir, 'no-such-dir'))).toBe(false);
    });

    it('-o DIRECTORY (or a symlink to one) is a clear error and leaves it alone', async () => {
      const sub = fs.mkdtempSync(path.join(dir, `${name}-dir-`));
      const link = path.join(dir, `${name}-dirlink`);
      fs.symlinkSync(sub, link);
      for (const o of [sub, link]) {
        const r = await runCli(args(o), { root });
        expect(r.code).toBe(1);
        expect(r.stderr).toMatch(/^imgtool: error: output .* is a directory\n$/);
        expect(fs.readdirSync(sub)).toEqual([]);
      }
      expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
    });
  });

  describe('kind preload', () => {
    it('-o SYMLINK writes (and verifies) the file it points to; the symlink stays', async () => {
      const sub = fs.mkdtempSync(path.join(dir, 'kind-link-'));
      const target = path.join(sub, 'target.tar');
      fs.writeFileSync(target, 'old');
      const link = path.join(sub, 'link.tar');
      fs.symlinkSync('target.tar', link);
      const r = await runCli(['kind', 'preload', 'out:1', '-o', link], { root });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/verified/);
      expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
      expect(fs.readFileSync(target).subarray(0, 3).toString()).not.toBe('old');
      const v = await runCli(['verify', '--strict', target], { root });
      expect(v.code).toBe(0);
      expect(fs.readdirSync(sub).sort()).toEqual(['link.tar', 'target.tar']);
    });

    it('-o FIFO is refused with a clear message (archives are verified before they are published); the FIFO stays', async () => {
      const sub = fs.mkdtempSync(path.join(dir, 'kind-fifo-'));
      const fifo = path.join(sub, 'pipe');
      mkfifo(fifo);
      // No reader: a build that opened the FIFO would block here (and time out).
      const r = await runCli(['kind', 'preload', 'out:1', '-o', fifo], { root });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^imgtool: error: kind preload: output .*pipe is a FIFO, not a regular file: .*verified/);
      expect(fs.lstatSync(fifo).isFIFO()).toBe(true);
      expect(fs.readdirSync(sub)).toEqual(['pipe']);
    });
  });
});
