/**
 * Fixtures and helpers shared by the docker / podman / buildah interop tests (issue 15).
 *
 * Images are built with imgtool's builder and hold the static /bin/busybox, so the engines can
 * run containers from them (`--network none`). Loaded into an imgtool store with `imgtool load`:
 * - one    Docker schema2, gzip: busybox + an app layer + a layer with a whiteout, an opaque
 *          dir and a rewritten file whose hard link keeps the old content.
 * - two    OCI, gzip: busybox (the same layer blob as one) + another app layer.
 * - multi  OCI index: host (busybox + app) and one other platform (not runnable here).
 * - zst    OCI, zstd: one's first two layers as zstd, and one of its own.
 *
 * The save cases (`SAVE_CASES`) are every `save` format × compression over the sets {one image,
 * two images, multi-platform, a `--platform` subset}, trimmed to what tells something new; what
 * each engine makes of each case is in `works-with.json` (`expectedOutcome`), which the tests
 * assert against and `scripts/works-with.js` renders as the README's table.
 *
 * File trees are compared as lines `path|type|mode:uid:gid[:nlink]|target or sha256` under
 * /app (the part the fixtures define; busybox's own files are checked by running it).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as crypto from 'node:crypto';
import { BlobDir, BuiltImage, LayerEntry, buildLayer, buildImage, buildIndex, writeOciArchive } from '../../src/builder';
import { formatPlatform, hostPlatform } from '../../src/platform';
import { Store, saveImages, exportRootfs, SaveFormat, SaveCompression, parsePlatform } from '../../src';
import { imgtool, imgtoolJson, run, scanTree, diffTrees, linkGroups, TreeEntry } from './matrix-fixtures';

export const HOST_STR = formatPlatform(hostPlatform());
export const OTHER_PLATFORM = HOST_STR === 'linux/arm64' ? 'linux/amd64' : 'linux/arm64';
export const BUSYBOX = '/bin/busybox';

export type SetKey = 'one' | 'two' | 'multi' | 'subset';
export type Format = 'oci+docker' | 'oci' | 'docker';
export type Compression = 'keep' | 'gzip' | 'zstd' | 'none';

/** What the fixtures are, from the builder (ground truth). */
export interface DkImage {
  key: 'one' | 'two' | 'multi' | 'zst';
  name: string;
  /** Familiar name as docker prints it. */
  tag: string;
  /** Host manifest's config digest (the image ID engines report) and diffIDs. */
  id: string;
  diffIds: string[];
  /** Expected /app tree lines (see treeLines). */
  app: string[];
}

export interface DkFixtures {
  dir: string;
  root: string;
  /** The store, open in this process (the matrix saves through the library: a CLI start costs ~2 s). */
  store: Store;
  images: Record<DkImage['key'], DkImage>;
}

const BUSYBOX_APPLETS = ['sh', 'cat', 'ls', 'find', 'sort', 'stat', 'readlink', 'sha256sum', 'cut', 'echo', 'touch', 'mkdir', 'rm', 'ln'];

function busyboxLayer(): LayerEntry[] {
  return [
    { path: 'bin/', type: 'dir', mode: 0o755 },
    { path: 'bin/busybox', content: { file: BUSYBOX }, mode: 0o755 },
    ...BUSYBOX_APPLETS.map((a): LayerEntry => ({ path: `bin/${a}`, type: 'symlink', target: 'busybox' })),
    { path: 'etc/', type: 'dir', mode: 0o755 },
    { path: 'tmp/', type: 'dir', mode: 0o1777 },
  ];
}

const APP1: LayerEntry[] = [
  { path: 'app/', type: 'dir', mode: 0o755 },
  { path: 'app/hello', content: 'hello one\n', mode: 0o644 },
  { path: 'app/hard', type: 'hardlink', target: 'app/hello' },
  { path: 'app/gone', content: 'to be removed\n' },
  { path: 'app/dir/', type: 'dir', mode: 0o750 },
  { path: 'app/dir/a', content: 'a\n' },
  { path: 'app/dir/b', content: 'b\n' },
  { path: 'app/secret', content: 'owned\n', mode: 0o600, uid: 1000, gid: 1000 },
  { path: 'app/link', type: 'symlink', target: 'hello' },
  { path: 'app/data.bin', content: { size: 32 << 10, seed: 'dk-one' } },
];
const APP2: LayerEntry[] = [
  { path: 'app/', type: 'dir', mode: 0o755 },
  { path: 'app/gone', type: 'whiteout' },
  { path: 'app/dir/', type: 'dir', mode: 0o750 },
  { path: 'app/dir', type: 'opaque' },
  { path: 'app/dir/c', content: 'c\n' },
  // rewritten: app/hard (a hard link to the old file) keeps the old content
  { path: 'app/hello', content: 'hello two\n' },
];

/**
 * `path|type|mode:uid:gid|…` lines of a scanned tree under `prefix`, as `TREE_SCRIPT` prints them
 * in a container; a file's link count is the number of paths of the tree sharing its inode (the
 * link count an engine reports counts links hidden in lower overlay layers too).
 */
export function treeLines(tree: Map<string, TreeEntry>, prefix = 'app'): string[] {
  const raw: string[] = [];
  for (const [p, e] of tree) {
    if (p !== prefix && !p.startsWith(prefix + '/')) continue;
    const own = `${e.mode.toString(8)}:${e.uid}:${e.gid}`;
    if (e.type === 'symlink') raw.push(`${p}|symlink|${e.link}`);
    else if (e.type === 'dir') raw.push(`${p}|dir|${own}`);
    else raw.push(`${p}|${e.type}|${own}|${e.ino}|${e.sha}`);
  }
  return linkCounts(raw);
}

/** Replace the inode field of file lines by the number of lines sharing it; sorted. */
function linkCounts(raw: string[]): string[] {
  const count = new Map<string, number>();
  const ino = (l: string) => (l.split('|')[1] === 'file' ? l.split('|')[3] : undefined);
  for (const l of raw) if (ino(l)) count.set(ino(l)!, (count.get(ino(l)!) ?? 0) + 1);
  return raw.map((l) => {
    const i = ino(l);
    if (!i) return l;
    const f = l.split('|');
    return `${f[0]}|file|${f[2]}|links=${count.get(i)}|${f[4]}`;
  }).sort();
}

/** A busybox sh script printing the raw lines for /app inside a container (see `lines`). */
export const TREE_SCRIPT = `cd / && find app | while read f; do if [ -L "$f" ]; then echo "$f|symlink|$(readlink "$f")"; elif [ -d "$f" ]; then echo "$f|dir|$(stat -c %a:%u:%g "$f")"; else echo "$f|file|$(stat -c %a:%u:%g "$f")|$(stat -c %i "$f")|$(sha256sum < "$f" | cut -d' ' -f1)"; fi; done`;

/** TREE_SCRIPT's output as treeLines gives it. */
export const lines = (s: string) => linkCounts(s.split('\n').map((l) => l.trim()).filter(Boolean));

/** The /app tree imgtool itself exports for `name` (export-rootfs into a directory). */
async function imgtoolApp(store: Store, dir: string, name: string): Promise<string[]> {
  const d = path.join(dir, 'rootfs-' + crypto.createHash('sha1').update(name).digest('hex').slice(0, 8));
  await exportRootfs(store, name, { dir: d });
  return treeLines(scanTree(d));
}

/** Build the fixture images, load them into a new store `dir/store`. */
export async function buildDockerFixtures(dir: string): Promise<DkFixtures> {
  const blobs = new BlobDir(path.join(dir, 'fx'));
  const bb = await buildLayer(blobs, busyboxLayer(), { createdBy: 'busybox' });
  const app1 = await buildLayer(blobs, APP1);
  const app2 = await buildLayer(blobs, APP2);
  const one = buildImage(blobs, { layers: [bb, app1, app2], platform: HOST_STR, format: 'docker', config: { Cmd: ['/bin/sh'], Env: ['PATH=/bin'] } });
  const two = buildImage(blobs, {
    layers: [bb, await buildLayer(blobs, [{ path: 'app/', type: 'dir', mode: 0o755 }, { path: 'app/two', content: 'two\n' }])],
    platform: HOST_STR, format: 'oci', config: { Cmd: ['/bin/sh'], Env: ['PATH=/bin'], Labels: { fixture: 'two' } },
  });
  const mHost = buildImage(blobs, {
    layers: [bb, await buildLayer(blobs, [{ path: 'app/', type: 'dir', mode: 0o755 }, { path: 'app/arch', content: `${HOST_STR}\n` }])],
    platform: HOST_STR, format: 'oci', config: { Cmd: ['/bin/sh'], Env: ['PATH=/bin'], Labels: { fixture: 'multi' } },
  });
  const mOther = buildImage(blobs, {
    layers: [await buildLayer(blobs, [{ path: 'app/', type: 'dir', mode: 0o755 }, { path: 'app/arch', content: `${OTHER_PLATFORM}\n` }])],
    platform: OTHER_PLATFORM, format: 'oci', config: { Labels: { fixture: 'multi-other' } },
  });
  const multi = buildIndex(blobs, { images: [mHost, mOther] });
  const zst = buildImage(blobs, {
    // a layer of its own too: Docker skips reading a layer it already holds (same chainID), so
    // with only one's layers (as zstd) a load after one's would not read any zstd byte
    layers: [
      await buildLayer(blobs, busyboxLayer(), { compression: 'zstd' }), await buildLayer(blobs, APP1, { compression: 'zstd' }),
      await buildLayer(blobs, [{ path: 'app/', type: 'dir', mode: 0o755 }, { path: 'app/zst', content: 'zstd only\n' }], { compression: 'zstd' }),
    ],
    platform: HOST_STR, format: 'oci', config: { Cmd: ['/bin/sh'], Env: ['PATH=/bin'], Labels: { fixture: 'zst' } },
  });
  const named: Array<[DkImage['key'], string, BuiltImage, { target: typeof one | typeof multi }]> = [
    ['one', 'docker.io/library/dk-one:1', one, { target: one }],
    ['two', 'docker.io/library/dk-two:1', two, { target: two }],
    ['multi', 'docker.io/library/dk-multi:1', mHost, { target: multi }],
    ['zst', 'docker.io/library/dk-zst:1', zst, { target: zst }],
  ];
  const archive = path.join(dir, 'fixtures.tar');
  await writeOciArchive(blobs, archive, { images: named.map(([, name, , t]) => ({ target: t.target, names: [name] })) });
  const root = path.join(dir, 'store');
  await imgtool(root, ['load', '-i', archive]);
  const store = Store.open(root);
  const images = {} as DkFixtures['images'];
  for (const [key, name, img] of named) {
    images[key] = {
      key, name, tag: name.replace(/^docker\.io\/library\//, ''),
      id: img.config.digest, diffIds: img.layers.map((l) => l.diffId),
      app: await imgtoolApp(store, dir, name),
    };
  }
  // not vacuous: the whiteout, the opaque dir and the kept hard link are in one's tree
  const a = images.one.app.join('\n');
  if (/app\/gone|app\/dir\/a/.test(a) || !/app\/dir\/c/.test(a) || !/app\/hard\|file\|644:0:0\|links=1\|/.test(a)) throw new Error(`fixture one: unexpected tree\n${a}`);
  return { dir, root, store, images };
}

// ---------------------------------------------------------------------------------------------
// save cases and the "works with" table

export interface SaveCase {
  id: string;
  format: Format;
  compression: Compression;
  set: SetKey;
  /** Images saved (by fixture key) and extra save arguments. */
  images: Array<DkImage['key']>;
  args: string[];
}

export const SETS: Record<SetKey, { images: Array<DkImage['key']>; args: string[] }> = {
  one: { images: ['one'], args: [] },
  two: { images: ['one', 'two'], args: [] },
  multi: { images: ['multi'], args: [] },
  subset: { images: ['multi'], args: ['--platform', HOST_STR] },
};

/**
 * The matrix, kept affordable (2 cores, CI budget): every format × compression on `one` (docker
 * refuses zstd) and every set for the default compression of each format, plus the zstd image
 * in the default format — except what cannot tell anything new: for Docker 20.10, which reads no
 * OCI-only layout at all, the OCI format on keep only (one and two images), and the Docker format's
 * re-compressions (oci+docker's gzip and none already put re-compressed layers in manifest.json).
 */
export function saveCases(peer: 'docker' | 'podman'): SaveCase[] {
  const out: SaveCase[] = [];
  const add = (format: Format, compression: Compression, set: SetKey, images = SETS[set].images) =>
    out.push({ id: `${format}-${compression}-${set}${images !== SETS[set].images ? '-' + images.join('+') : ''}`, format, compression, set, images, args: SETS[set].args });
  for (const f of ['oci+docker', 'oci', 'docker'] as Format[]) {
    for (const c of ['keep', 'gzip', 'zstd', 'none'] as Compression[]) {
      if (f === 'docker' && c === 'zstd') continue;
      if (f === 'oci' && peer === 'docker' && c !== 'keep') continue;
      // Docker reads only manifest.json: oci+docker's gzip/none already gave it re-compressed layers there
      if (f === 'docker' && peer === 'docker' && c !== 'keep') continue;
      add(f, c, 'one');
    }
    for (const s of ['two', 'multi', 'subset'] as SetKey[]) {
      if (f === 'oci' && peer === 'docker' && s !== 'two') continue;
      add(f, 'keep', s);
    }
  }
  add('oci+docker', 'keep', 'two', ['one', 'zst']);
  return out;
}

export interface WorksWith {
  peers: Record<string, { version: string; command: string }>;
  /** peer -> save case id -> `loads: one+two` (exactly), or `fails: <part of the engine's message>`. */
  table: Record<string, Record<string, string>>;
  /** peer -> why it cannot read what it fails on (the table's notes). */
  notes?: Record<string, string[]>;
}

export const WORKS_WITH_FILE = path.join(__dirname, 'works-with.json');
export function worksWith(): WorksWith {
  return JSON.parse(fs.readFileSync(WORKS_WITH_FILE, 'utf8')) as WorksWith;
}

/** What a peer is expected to do with a save case: load these images, or fail (loud). */
export type Outcome = { loads: Array<DkImage['key']> } | { fails: RegExp };

export { imgtool, imgtoolJson };

// ---------------------------------------------------------------------------------------------
// the save -> engine load matrix, shared by docker-load and podman-load

/** How one engine is driven by the matrix. */
export interface EngineDriver {
  peer: 'docker' | 'podman';
  version(): Promise<string>;
  /** Remove every image (each case starts empty). */
  clean(): Promise<void>;
  /** Load an archive; rejects with the engine's message. */
  load(file: string): Promise<void>;
  /** Names the engine lists, familiar or full, as it prints them. */
  names(): Promise<string[]>;
  /** ID (config digest, `sha256:` form) and diffIDs of the image named `name`. */
  inspect(name: string): Promise<{ id: string; diffIds: string[] }>;
  /** The /app tree lines of image `name`, from a container or a mount. */
  tree(name: string): Promise<string[]>;
}

export interface CaseResult {
  /** `loads: one+two` or `fails: <engine message, first line>`. */
  outcome: string;
  /** Fixture keys the engine loaded (and checked). */
  loaded: string[];
  warnings: string[];
  leftOut: string[];
}

const treesChecked = new Map<string, Set<string>>();
const OBSERVED_DIR = path.resolve(__dirname, '..', '..', '.cache');

/** The short name an engine gives a fixture image (docker: familiar; podman: full). */
export const tagOf = (img: DkImage, peer: string) => (peer === 'docker' ? img.tag : img.name);

/**
 * Run one save case against an engine: save with imgtool (JSON result), load, and for every image
 * the engine lists check ID, diffIDs and /app tree against the fixture. Returns the outcome.
 */
export async function runCase(fx: DkFixtures, eng: EngineDriver, c: SaveCase, outDir: string): Promise<CaseResult> {
  const file = path.join(outDir, `${eng.peer}-${c.id}.tar`);
  const res = await saveImages(fx.store, c.images.map((k) => fx.images[k].name), {
    output: file, format: c.format as SaveFormat, compression: c.compression as SaveCompression,
    platforms: c.args[0] === '--platform' ? [parsePlatform(c.args[1])] : undefined,
  });
  await eng.clean();
  let outcome: string;
  const loaded: string[] = [];
  try {
    await eng.load(file);
    const listed = await eng.names();
    let renamed = false;
    for (const k of c.images) {
      const img = fx.images[k];
      // podman 4.3 names an image from a Docker archive's familiar RepoTag `localhost/NAME`
      const as = [tagOf(img, eng.peer), `localhost/${img.tag}`].find((n) => listed.includes(n));
      if (!as) continue;
      if (as !== tagOf(img, eng.peer)) renamed = true;
      const got = await eng.inspect(as);
      const want = { id: img.id, diffIds: img.diffIds };
      if (got.id !== want.id || got.diffIds.join() !== want.diffIds.join()) {
        throw new Error(`${eng.peer} ${c.id}: ${img.name} is ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
      }
      // The tree once per image and engine: later loads are checked by ID and diffIDs, which
      // the engine verifies against the decompressed layers while loading.
      const seen = treesChecked.get(eng.peer) ?? new Set<string>();
      treesChecked.set(eng.peer, seen);
      const tree = seen.has(k) ? img.app : await eng.tree(as);
      seen.add(k);
      if (tree.join('\n') !== img.app.join('\n')) {
        throw new Error(`${eng.peer} ${c.id}: ${img.name} /app tree differs\n--- ${eng.peer}\n${tree.join('\n')}\n--- imgtool\n${img.app.join('\n')}`);
      }
      loaded.push(k);
    }
    outcome = `loads: ${loaded.join('+') || 'nothing'}${renamed ? ' (named localhost/NAME)' : ''}`;
    if (!loaded.length) outcome += ` (lists: ${listed.join(', ') || 'nothing'})`;
  } catch (e) {
    const msg = (e as Error).message;
    if (/ is \{|tree differs/.test(msg)) throw e;
    const lines = msg.split('\n').map((l) => l.trim()).filter(Boolean);
    const line = lines.find((l) => /more than one image|invalid tar header|no such file/i.test(l))
      ?? lines.slice(1).find((l) => /error|fail|invalid|cannot/i.test(l)) ?? lines[0];
    outcome = `fails: ${line.replace(/\/\S*\/(docker-import|tmp)[^/\s]*\//g, '…/').replace(/^Error( response from daemon)?: /, '')}`;
  }
  return { outcome, loaded, warnings: res.warnings, leftOut: res.images.flatMap((i) => i.leftOut) };
}

/** Check an observed outcome against works-with.json's entry (`loads: …` exactly, `fails: …` a substring). */
export function matchesExpected(observed: string, expected: string | undefined): boolean {
  if (expected === undefined) return false;
  if (expected.startsWith('fails: ')) return observed.startsWith('fails: ') && observed.includes(expected.slice(7));
  return observed === expected;
}

/** With IMGTOOL_WORKS_WITH_RECORD=1, what the engines did is written to .cache/ (to update works-with.json). */
export function recordObserved(peer: string, version: string, results: Record<string, string>): void {
  if (!process.env.IMGTOOL_WORKS_WITH_RECORD) return;
  fs.mkdirSync(OBSERVED_DIR, { recursive: true });
  fs.writeFileSync(path.join(OBSERVED_DIR, `works-with.${peer}.json`), JSON.stringify({ version, results }, null, 2) + '\n');
}

// ---------------------------------------------------------------------------------------------
// engine-built images: export-rootfs vs the engine's own export

/**
 * Paths an engine creates in every container and that are no part of the image, ignored when a
 * container's export is compared with `imgtool export-rootfs`: /.dockerenv (docker's marker),
 * /etc/hostname, /etc/hosts, /etc/resolv.conf (bind-mount targets docker and podman create
 * empty), /etc/mtab (docker's symlink to /proc/mounts), /run/.containerenv (podman's marker)
 * and the mount points /dev, /proc, /sys with anything under them. Directories that hold only
 * these (/etc, /run) are compared when the image has them, and ignored when the engine made them.
 */
export const ENGINE_PATHS = ['.dockerenv', 'etc/hostname', 'etc/hosts', 'etc/resolv.conf', 'etc/mtab', 'run/.containerenv', 'dev', 'proc', 'sys'];

/**
 * `tree` without the engine's own paths (and, when `mine` lacks them, the dirs holding them).
 * Applied to both sides: `buildah run` leaves the mount points it made (/dev, /proc, /sys,
 * /etc/hostname, …) in the layer it commits, so the image itself may hold them.
 */
export function withoutEnginePaths(tree: Map<string, TreeEntry>, mine: Map<string, TreeEntry> = tree): Map<string, TreeEntry> {
  const out = new Map<string, TreeEntry>();
  for (const [p, e] of tree) {
    if (ENGINE_PATHS.some((x) => p === x || p.startsWith(x + '/'))) continue;
    if (!mine.has(p) && ENGINE_PATHS.some((x) => x.startsWith(p + '/'))) continue;
    out.set(p, e);
  }
  return out;
}

/** The single shell step both builders run on top of `one`: a whiteout, an opaque dir, hard and soft links. */
export const BUILD_STEP = 'rm /app/secret && rm -rf /app/dir && mkdir /app/dir && touch /app/dir/new && ln /app/hello /app/hello2 && echo x > /app/x && ln -s /app/x /app/xl && mkdir -p /opt/o && echo o > /opt/o/f';

/**
 * The built image's tree as `imgtool export-rootfs --dir` wrote it (`mine`) against an engine's
 * export of a container from it (`exportTar`, extracted under `dir`): equal but for the engine's
 * own paths, and not vacuously (BUILD_STEP's whiteout, opaque dir and links are there).
 */
export async function expectSameExport(mine: string, exportTar: string, dir: string): Promise<Map<string, TreeEntry>> {
  const theirs = path.join(dir, `${path.basename(exportTar, '.tar')}-tree`);
  fs.mkdirSync(theirs);
  await run('tar', ['-xpf', exportTar, '-C', theirs, '--numeric-owner']);
  const a = withoutEnginePaths(scanTree(mine));
  const b = withoutEnginePaths(scanTree(theirs), a);
  expect(diffTrees(a, b)).toEqual([]);
  expect(a.has('app/secret') || a.has('app/dir/c')).toBe(false);
  expect(a.get('app/dir/new')?.type).toBe('file');
  expect(a.get('app/xl')).toMatchObject({ type: 'symlink', link: '/app/x' });
  expect(linkGroups(a)).toContainEqual(['app/hello', 'app/hello2']);
  return a;
}
