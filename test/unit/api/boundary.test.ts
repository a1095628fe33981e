/**
 * The library / CLI boundary (issue 12 part 3) and what a command loads at start-up (issue 16).
 * - `imgtool` (src/index.ts) is the library: Store, load/save/convert/unpack/prune/fsck/verify/
 *   kind, their types and the errors; no oclif, no CLI plumbing, no builder.
 * - `imgtool/builder` is the image/fixture builder.
 * - No module under src/ (outside src/cli) imports src/cli, oclif or a command.
 * - Commands import the modules they use, not the barrel, and a command loads only what it uses.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO, BIN, rmrf, tmpDir } from '../../helpers/cli';

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...tsFiles(p));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** Module specifiers of a TS file's imports and re-exports (static and require()). */
function importsOf(file: string): string[] {
  const src = fs.readFileSync(file, 'utf8');
  const specs: string[] = [];
  for (const m of src.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s+'([^']+)'/g)) specs.push(m[1]);
  for (const m of src.matchAll(/\brequire\(\s*'([^']+)'\s*\)/g)) specs.push(m[1]);
  for (const m of src.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g)) specs.push(m[1]);
  return specs;
}

/** Run node in the repo (so `imgtool` self-references the package) and return stdout. */
function node(code: string, env: Record<string, string> = {}): string {
  const r = spawnSync(process.execPath, ['-e', code], { cwd: REPO, encoding: 'utf8', env: { ...process.env, ...env } });
  if (r.status !== 0) throw new Error(`node -e failed: ${r.stderr}`);
  return r.stdout;
}

describe('library / CLI boundary', () => {
  it('no module under src/ outside src/cli imports src/cli, oclif, cli-progress or a command', () => {
    const bad: string[] = [];
    const srcDir = path.join(REPO, 'src');
    for (const f of tsFiles(srcDir)) {
      const rel = path.relative(srcDir, f);
      if (rel.startsWith(`cli${path.sep}`)) continue;
      for (const s of importsOf(f)) {
        const abs = s.startsWith('.') ? path.resolve(path.dirname(f), s) : '';
        const intoCli = abs && (abs === path.join(srcDir, 'cli') || abs.startsWith(path.join(srcDir, 'cli') + path.sep));
        const intoCommands = abs && abs.startsWith(path.join(REPO, 'commands'));
        if (intoCli || intoCommands || s.startsWith('@oclif/') || s === 'cli-progress') bad.push(`src/${rel}: ${s}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('commands import the modules they use, never the library barrel', () => {
    const bad: string[] = [];
    for (const f of tsFiles(path.join(REPO, 'commands'))) {
      for (const s of importsOf(f)) {
        const abs = s.startsWith('.') ? path.resolve(path.dirname(f), s) : '';
        if (abs === path.join(REPO, 'src') || abs === path.join(REPO, 'src', 'index')) bad.push(`${path.relative(REPO, f)}: ${s}`);
        if (s.startsWith('@oclif/')) bad.push(`${path.relative(REPO, f)}: ${s} (use src/cli)`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('the public API holds the library and its errors, not CLI plumbing or the builder', () => {
    const out = node(`
      const api = require('imgtool');
      const loaded = Object.keys(require.cache);
      console.log(JSON.stringify({
        resolved: require.resolve('imgtool'),
        keys: Object.keys(api),
        oclif: loaded.some((f) => f.includes('@oclif')),
        cliProgress: loaded.some((f) => f.includes('cli-progress')),
        cli: loaded.some((f) => f.includes('/dist/src/cli/')),
        builder: loaded.some((f) => f.includes('/dist/src/builder/')),
      }));`);
    const r = JSON.parse(out);
    expect(r.resolved).toBe(path.join(REPO, 'dist', 'src', 'index.js'));
    for (const name of [
      'Store', 'defaultRoot', 'loadArchive', 'saveImages', 'convertImage', 'unpackImage', 'exportRootfs', 'prune', 'fsck',
      'verifyArchive', 'listArchive', 'inspectImage', 'listImages', 'tagImage', 'removeImages', 'listSnapshots',
      'kindLoad', 'kindPreload', 'ImgtoolError', 'NotFoundError', 'MissingContentError', 'isImgtoolError', 'silentProgress',
    ]) expect(r.keys).toContain(name);
    for (const name of ['ImgtoolCommand', 'Flags', 'Args', 'terminalProgress', 'fmtBytes', 'ImageBuilder', 'TarParser', 'scanArchive', 'NodeCtr']) {
      expect(r.keys).not.toContain(name);
    }
    expect(r).toMatchObject({ oclif: false, cliProgress: false, cli: false, builder: false });
  });

  it('the builder is its own entry, imgtool/builder', () => {
    const out = node(`const b = require('imgtool/builder'); console.log(typeof b.ImageBuilder, typeof b.buildLayer, require.resolve('imgtool/builder'))`);
    expect(out.trim()).toBe(`function function ${path.join(REPO, 'dist', 'src', 'builder', 'index.js')}`);
  });
});

describe('start-up: a command loads only what it uses', () => {
  let dir: string;
  beforeAll(() => {
    dir = tmpDir('imgtool-startup-');
  });
  afterAll(() => rmrf(dir));

  /** Modules loaded by `imgtool ARGS` (non-TTY), from a preload that lists require.cache at exit. */
  function loadedBy(args: string[]): string[] {
    const list = path.join(dir, `loaded-${args.join('_')}.json`);
    const hook = path.join(dir, 'hook.js');
    fs.writeFileSync(hook, `process.on('exit', () => require('fs').writeFileSync(${JSON.stringify(list)}, JSON.stringify(Object.keys(require.cache))));\n`);
    const r = spawnSync(process.execPath, ['-r', hook, BIN, ...args], { encoding: 'utf8', env: { ...process.env, IMGTOOL_ROOT: path.join(dir, 'store') } });
    if (r.status !== 0) throw new Error(`imgtool ${args.join(' ')}: ${r.stderr}`);
    return JSON.parse(fs.readFileSync(list, 'utf8')) as string[];
  }
  const has = (mods: string[], part: string) => mods.some((m) => m.includes(part));

  it('--version loads no imgtool module', () => {
    const mods = loadedBy(['--version']);
    expect(mods.filter((m) => m.startsWith(path.join(REPO, "dist") + path.sep))).toEqual([]);
  });

  it('images loads neither tar code, compression codecs, progress bars nor the archive, snapshot, kind or builder modules', () => {
    const mods = loadedBy(['images']);
    expect(has(mods, '/dist/commands/images.js')).toBe(true);
    // The Store facade holds every per-concept store (variants, snapshots): those load; the
    // operations over them (codecs, conversion, layer apply, tar) must not.
    const forbidden = [
      'tar-stream', 'cli-progress', 'zstd-napi', 'semver', '/dist/src/archive/', '/dist/src/kind/', '/dist/src/builder/', '/dist/src/gc/',
      '/dist/src/snapshots/ops', '/dist/src/snapshots/apply', '/dist/src/snapshots/tar', '/dist/src/compression/codecs',
      '/dist/src/compression/convert', '/dist/src/compression/ensure', '/dist/src/index.js',
    ];
    expect(forbidden.filter((part) => has(mods, part))).toEqual([]);
  });
});
