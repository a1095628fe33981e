/**
 * Start-up (issue 16): the CLI loads no framework and, for a command, that command's module only;
 * the helps are rendered from the command table. (What the modules cost is measured by
 * `npm run bench -- --only startup`, not here.)
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { REPO, BIN, rmrf, tmpDir } from '../../helpers/cli';
import { Store } from '../../../src/store';
import { loadArchive } from '../../../src/archive/load';
import { ImageBuilder } from '../../../src/builder';

let dir: string;
beforeAll(() => {
  dir = tmpDir('imgtool-startup-cli-');
});
afterAll(() => rmrf(dir));

/** Modules loaded by `imgtool ARGS`, listed from require.cache at exit. */
function loadedBy(args: string[], root = path.join(dir, 'store')): { mods: string[]; status: number | null; stdout: string; stderr: string } {
  const list = path.join(dir, `loaded-${args.join('_').replace(/[^\w-]/g, '_')}.json`);
  const hook = path.join(dir, 'hook.js');
  fs.writeFileSync(hook, `process.on('exit', () => require('fs').writeFileSync(${JSON.stringify(list)}, JSON.stringify(Object.keys(require.cache))));\n`);
  const r = spawnSync(process.execPath, ['-r', hook, BIN, ...args], { encoding: 'utf8', env: { ...process.env, IMGTOOL_ROOT: root } });
  return { mods: JSON.parse(fs.readFileSync(list, 'utf8')) as string[], status: r.status, stdout: r.stdout, stderr: r.stderr };
}
const commandModules = (mods: string[]) => mods.filter((m) => m.startsWith(path.join(REPO, 'dist', 'commands') + path.sep)).map((m) => path.relative(path.join(REPO, 'dist'), m));
const framework = (mods: string[]) => mods.filter((m) => m.includes(`${path.sep}@oclif${path.sep}`) || m.includes(`${path.sep}node_modules${path.sep}ansis`));

describe('start-up: what the CLI loads', () => {
  it('--version and -v load nothing of imgtool and no framework', () => {
    for (const v of ['--version', '-v']) {
      const r = loadedBy([v]);
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/^imgtool\/\d+\.\d+\.\d+\S* linux-\w+ node-v\d+/);
      expect(r.mods.filter((m) => m.startsWith(path.join(REPO, 'dist') + path.sep))).toEqual([]);
      expect(framework(r.mods)).toEqual([]);
    }
  });

  it('a command loads its own module only, and no framework', () => {
    for (const [args, mod] of [[['images'], 'commands/images.js'], [['lease', 'ls'], 'commands/lease/ls.js'], [['lease', 'list'], 'commands/lease/ls.js']] as const) {
      const r = loadedBy([...args]);
      expect(r.status).toBe(0);
      expect(commandModules(r.mods)).toEqual([mod]);
      expect(framework(r.mods)).toEqual([]);
    }
  });

  it('images loads no tar code (the Store facade needs only the tree helpers) and no codec', () => {
    const r = loadedBy(['images']);
    expect(r.status).toBe(0);
    expect(r.mods.filter((m) => /\/dist\/src\/tar\/(parse|header|tarsplit|index)\.js$|zstd-napi|\/dist\/src\/compression\/codecs/.test(m))).toEqual([]);
  });

  it('the root and topic helps load no command module; a command help loads that command only', () => {
    for (const args of [[], ['--help'], ['help'], ['kind'], ['lease', '--help']]) {
      const r = loadedBy(args);
      expect(r.status).toBe(0);
      expect(commandModules(r.mods)).toEqual([]);
      expect(framework(r.mods)).toEqual([]);
    }
    const c = loadedBy(['convert', '--help']);
    expect(commandModules(c.mods)).toEqual(['commands/convert.js']);
  });

  it('a second convert of the same image (every layer reused) loads neither the snapshot, GC nor worker code, nor the zstd addon', async () => {
    const b = new ImageBuilder(path.join(dir, 'build'));
    const l1 = await b.layer([{ path: 'a.txt', content: { size: 64 << 10, seed: 'conv-a', text: true } }]);
    const l2 = await b.layer([{ path: 'b.bin', content: { size: 64 << 10, seed: 'conv-b' } }]);
    const tar = path.join(dir, 'small.tar');
    await b.ociArchive(tar, { images: [{ target: b.image({ layers: [l1, l2], format: 'oci' }), names: ['example.com/startup/small:1'] }] });
    const root = path.join(dir, 'convert-store');
    const s = Store.open(root);
    try {
      await loadArchive(s, tar, { unpack: false });
    } finally {
      s.close();
    }
    const first = loadedBy(['convert', '-q', '--compression', 'zstd', 'example.com/startup/small:1', 'example.com/startup/small:z1'], root);
    expect([first.status, first.stderr]).toEqual([0, '']);
    const second = loadedBy(['convert', '-q', '--compression', 'zstd', '--json', 'example.com/startup/small:1', 'example.com/startup/small:z2'], root);
    expect([second.status, second.stderr]).toEqual([0, '']);
    expect((JSON.parse(second.stdout) as { layers: Array<{ source: string }> }).layers.map((l) => l.source)).toEqual(['existing', 'existing']);
    const heavy = second.mods.filter((m) => /\/dist\/src\/(snapshots\/(ops|apply|tree)|gc\/|compression\/transcode)|zstd-napi/.test(m) || m === 'node:worker_threads');
    expect(heavy).toEqual([]);
  });

  it('pull --no-unpack, and push of an image whose layers are stored, load no archive, snapshot, codec, layer-producing or GC code', async () => {
    // A loopback port nothing listens on: each command fails at its first request, after
    // everything it does before the network (push: the whole plan).
    const port = await new Promise<number>((resolve) => {
      const srv = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (srv.address() as net.AddressInfo).port;
        srv.close(() => resolve(p));
      });
    });
    const b = new ImageBuilder(path.join(dir, 'build-push'));
    const l1 = await b.layer([{ path: 'a.txt', content: { size: 16 << 10, seed: 'push-a', text: true } }]);
    const tar = path.join(dir, 'push.tar');
    await b.ociArchive(tar, { images: [{ target: b.image({ layers: [l1], format: 'oci' }), names: ['example.com/startup/push:1'] }] });
    const root = path.join(dir, 'push-store');
    const s = Store.open(root);
    try {
      await loadArchive(s, tar, { unpack: false });
    } finally {
      s.close();
    }
    const heavy = (mods: string[]) => mods.filter((m) =>
      /\/dist\/src\/(archive\/(load|import|reader|output|export-write|writer)|snapshots\/(ops|apply|tree|export)|compression\/(codecs|transcode)|layers\/(index|produce|prove)|gc\/|tar\/(index|parse))\.js$|zstd-napi/.test(m));
    const pull = loadedBy(['pull', '-q', '--insecure', '--no-unpack', `127.0.0.1:${port}/startup/x:1`], root);
    expect(pull.status).toBe(1);
    expect(pull.stderr).toMatch(/ECONNREFUSED/);
    expect(pull.mods.some((m) => m.endsWith(`${path.sep}dist${path.sep}src${path.sep}registry${path.sep}pull.js`))).toBe(true);
    expect(heavy(pull.mods)).toEqual([]);
    const push = loadedBy(['push', '-q', '--insecure', 'example.com/startup/push:1', `127.0.0.1:${port}/startup/x:1`], root);
    expect(push.status).toBe(1);
    expect(push.stderr).toMatch(/ECONNREFUSED/);
    expect(push.mods.some((m) => m.endsWith(`${path.sep}dist${path.sep}src${path.sep}archive${path.sep}export-plan.js`))).toBe(true);
    expect(heavy(push.mods)).toEqual([]);
  });
});
