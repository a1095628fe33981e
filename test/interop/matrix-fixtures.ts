/**
 * Fixture images for the interop matrix (issue 7), built with src/builder and loaded into an
 * imgtool store through the CLI (`imgtool load`), plus the helpers the matrix test files share:
 * running peers and the built CLI, reading OCI layouts, scanning and comparing file trees.
 *
 * The set (all small, deterministic):
 * - base   Docker schema2, gzip (level 6), host platform, 3 layers with whiteouts, an opaque
 *          dir, a dir replaced by a file, a symlink replaced by a file, a hard link whose source
 *          is rewritten above it, setuid, owner 1000:1000, an empty file. Two names.
 * - multi  OCI index: host + 2 other platforms + one attestation per platform. Its host
 *          manifest reuses base's first layer blob (names sharing layers).
 * - zst    OCI, zstd layers, host platform, whiteout + rewritten file.
 * - plain  OCI, uncompressed layers, opaque dir.
 * - gz1    base's layers re-compressed with gzip level 1 (Docker): same diffIDs and the very same
 *          config blob as base, other layer blobs, other manifest.
 * - bzstd  base's layers as zstd (OCI): same diffIDs and config bytes, other blobs.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as crypto from 'node:crypto';
import * as zlib from 'node:zlib';
import { execFile, execFileSync } from 'node:child_process';
import { BlobDir, Built, BuiltImage, LayerEntry, buildLayer, buildImage, buildIndex, writeOciArchive } from '../../src/builder';
import { Descriptor, ImageConfig, Index, Manifest } from '../../src/images/types';
import { formatPlatform, hostPlatform, Platform } from '../../src/platform';
import { runCli, CliResult } from '../helpers/cli';

export const HOST: Platform = hostPlatform();
export const HOST_STR = formatPlatform(HOST);

/** Two platforms other than the host's (for the multi-platform index). */
export const OTHER_PLATFORMS: string[] = ['linux/amd64', 'linux/arm64/v8', 'linux/s390x']
  .filter((p) => p.split('/')[1] !== HOST.architecture)
  .slice(0, 2);

// ---------------------------------------------------------------------------------------------
// processes

/** Run a program; resolves stdout, rejects with the command line, exit status and stderr. */
export function run(cmd: string, args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { maxBuffer: 64 << 20, cwd: opts.cwd, env: opts.env ? { ...process.env, ...opts.env } : undefined }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.message.split('\n')[0]}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

/** Run the built imgtool CLI against `root`; fails (with its output) unless it exits 0. */
export async function imgtool(root: string, args: string[], env?: Record<string, string>): Promise<CliResult> {
  const r = await runCli(args, { root, env });
  if (r.code !== 0) {
    throw new Error(`imgtool ${args.join(' ')} exited ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
  }
  return r;
}

/** `imgtool … --json` parsed. */
export async function imgtoolJson<T = any>(root: string, args: string[], env?: Record<string, string>): Promise<T> {
  const r = await imgtool(root, [...args, '--json'], env);
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`imgtool ${args.join(' ')} --json printed no JSON:\n${r.stdout}\n--- stderr\n${r.stderr}`);
  }
}

// ---------------------------------------------------------------------------------------------
// fixtures

/** What one manifest of a fixture is (ground truth from the builder). */
export interface FixtureManifest {
  platform: string;
  digest: string;
  configDigest: string;
  diffIds: string[];
  layerDigests: string[];
}

export interface FixtureImage {
  key: string;
  names: string[];
  target: Descriptor;
  /** The image's manifests, non-attestation, in index order (one for single-platform images). */
  manifests: FixtureManifest[];
  /** Number of attestation manifests in the index. */
  attestations: number;
  /** The host platform's manifest. */
  host: FixtureManifest;
  /** Layer compression of the host manifest. */
  compression: 'gzip' | 'zstd' | 'none';
  /** Manifest media types: Docker schema2 or OCI. */
  format: 'docker' | 'oci';
}

export interface MatrixFixtures {
  dir: string;
  blobs: BlobDir;
  /** OCI archive holding every fixture (what `imgtool load` read). */
  archive: string;
  /** The store the archive was loaded into with `imgtool load`. */
  root: string;
  images: Record<'base' | 'multi' | 'zst' | 'plain' | 'gz1' | 'bzstd', FixtureImage>;
  /** Every name, over all images. */
  names: string[];
}

const BASE_L1: LayerEntry[] = [
  { path: 'bin/', type: 'dir' },
  { path: 'bin/tool', content: '#!/bin/sh\necho tool\n', mode: 0o755 },
  { path: 'bin/sh', type: 'symlink', target: 'tool' },
  { path: 'data/', type: 'dir', mode: 0o750 },
  { path: 'data/keep', content: 'keep\n', uid: 1000, gid: 1000 },
  { path: 'data/gone', content: 'gone\n' },
  { path: 'data/sub/', type: 'dir' },
  { path: 'data/sub/x', content: 'x' },
  { path: 'data/sub/y/', type: 'dir' },
  { path: 'data/sub/y/z', content: 'z' },
  { path: 'data/random.bin', content: { size: 48 << 10, seed: 'matrix-base' } },
  { path: 'data/words.txt', content: { size: 48 << 10, seed: 'matrix-base', text: true } },
  { path: 'empty', content: '' },
  { path: 'etc/', type: 'dir' },
  { path: 'etc/os-release', content: 'ID=matrix\nVERSION_ID=1\n' },
  { path: 'etc/hard', type: 'hardlink', target: 'etc/os-release' },
  { path: 'etc/shadow', content: 'root:*:1::::::\n', mode: 0o600 },
  { path: 'opt/', type: 'dir' },
  { path: 'opt/old/', type: 'dir' },
  { path: 'opt/old/a', content: 'a' },
  { path: 'opt/old/b', content: 'b' },
  { path: 'run/', type: 'dir' },
  { path: 'usr/', type: 'dir' },
  { path: 'usr/bin/', type: 'dir' },
  { path: 'usr/bin/su', content: 'setuid\n', mode: 0o4755 },
  { path: 'usr/share/', type: 'dir' },
  { path: 'usr/share/doc/', type: 'dir' },
  { path: 'usr/share/doc/readme', content: 'read me\n' },
  { path: 'var/', type: 'dir' },
  { path: 'var/run', type: 'symlink', target: '/run' },
];
const BASE_L2: LayerEntry[] = [
  { path: 'data/gone', type: 'whiteout' },
  { path: 'data/sub', type: 'whiteout' },
  { path: 'etc/', type: 'dir' },
  // rewritten: etc/hard (a hard link to the old file) must keep the old content
  { path: 'etc/os-release', content: 'ID=matrix\nVERSION_ID=2\n' },
  { path: 'opt/old/', type: 'dir' },
  { path: 'opt/old', type: 'opaque' },
  { path: 'opt/old/c', content: 'c' },
  { path: 'run/app.pid', content: '42' },
];
const BASE_L3: LayerEntry[] = [
  { path: 'bin/', type: 'dir' },
  { path: 'bin/sh', content: 'no longer a link\n', mode: 0o755 },
  { path: 'etc/', type: 'dir', mode: 0o700 },
  { path: 'link-to-keep', type: 'symlink', target: 'data/keep' },
  { path: 'usr/', type: 'dir' },
  { path: 'usr/share/', type: 'dir' },
  { path: 'usr/share/doc', content: 'a file where a directory was\n' },
  { path: 'data/', type: 'dir', mode: 0o750 },
  { path: 'data/new', content: { size: 8 << 10, seed: 'matrix-base-3', text: true } },
];

const ZST_L1: LayerEntry[] = [
  { path: 'app/', type: 'dir' },
  { path: 'app/data.bin', content: { size: 64 << 10, seed: 'matrix-zst' } },
  { path: 'app/conf', content: 'level=1\n' },
  { path: 'app/tmp/', type: 'dir' },
  { path: 'app/tmp/scratch', content: { size: 4 << 10, seed: 'matrix-zst', text: true } },
];
const ZST_L2: LayerEntry[] = [
  { path: 'app/', type: 'dir' },
  { path: 'app/tmp', type: 'whiteout' },
  { path: 'app/conf', content: 'level=2\n', mode: 0o640 },
  { path: 'app/bin', type: 'symlink', target: '../bin' },
];

const PLAIN_L1: LayerEntry[] = [
  { path: 'srv/', type: 'dir' },
  { path: 'srv/index.html', content: '<h1>old</h1>\n' },
  { path: 'srv/assets/', type: 'dir' },
  { path: 'srv/assets/big.txt', content: { size: 40 << 10, seed: 'matrix-plain', text: true } },
];
const PLAIN_L2: LayerEntry[] = [
  { path: 'srv/', type: 'dir', mode: 0o711 },
  { path: 'srv', type: 'opaque' },
  { path: 'srv/index.html', content: '<h1>new</h1>\n' },
];

function info(blobs: BlobDir, img: BuiltImage): FixtureManifest {
  return {
    platform: formatPlatform(img.platform),
    digest: img.descriptor.digest,
    configDigest: img.config.digest,
    diffIds: img.layers.map((l) => l.diffId),
    layerDigests: img.layers.map((l) => l.digest),
  };
}

function fixture(blobs: BlobDir, key: string, names: string[], built: Built, compression: FixtureImage['compression']): FixtureImage {
  const images = built.kind === 'index' ? built.images : [built];
  const manifests = images.map((i) => info(blobs, i));
  const host = manifests.find((m) => m.platform === HOST_STR);
  if (!host) throw new Error(`fixture ${key}: no manifest for the host platform ${HOST_STR}`);
  const d = built.descriptor;
  return {
    key, names,
    target: { mediaType: d.mediaType, digest: d.digest, size: d.size },
    manifests,
    attestations: built.kind === 'index' ? built.attestations.length : 0,
    host, compression,
    format: built.format,
  };
}

/**
 * Build the fixture set under `dir` (blob dir `dir/fx`, archive `dir/fixtures.tar`) and load it
 * into a new store `dir/store` with `imgtool load --no-unpack`.
 */
export async function buildMatrixFixtures(dir: string): Promise<MatrixFixtures> {
  const blobs = new BlobDir(path.join(dir, 'fx'));
  const layers = async (specs: LayerEntry[][], opts: Parameters<typeof buildLayer>[2]) => {
    const out = [];
    for (const s of specs) out.push(await buildLayer(blobs, s, opts));
    return out;
  };
  const baseLayers = await layers([BASE_L1, BASE_L2, BASE_L3], { compression: 'gzip' });
  const base = buildImage(blobs, { layers: baseLayers, platform: HOST, format: 'docker', config: { Cmd: ['/bin/tool'], Env: ['PATH=/usr/bin:/bin'] } });
  const gz1 = buildImage(blobs, { layers: await layers([BASE_L1, BASE_L2, BASE_L3], { compression: 'gzip', level: 1 }), platform: HOST, format: 'docker', config: base.configJson.config });
  const bzstd = buildImage(blobs, { layers: await layers([BASE_L1, BASE_L2, BASE_L3], { compression: 'zstd' }), platform: HOST, format: 'oci', config: base.configJson.config });

  const appLayer = await buildLayer(blobs, [
    { path: 'app/', type: 'dir' },
    { path: 'app/multi.txt', content: { size: 16 << 10, seed: 'matrix-multi', text: true } },
  ]);
  const perPlatform = [buildImage(blobs, { layers: [baseLayers[0], appLayer], platform: HOST, format: 'oci' })];
  for (const p of OTHER_PLATFORMS) {
    const l = await buildLayer(blobs, [{ path: 'arch', content: `${p}\n` }, { path: 'blob', content: { size: 8 << 10, seed: p } }]);
    perPlatform.push(buildImage(blobs, { layers: [l], platform: p, format: 'oci' }));
  }
  const multi = buildIndex(blobs, { images: perPlatform, attestations: true });

  const zst = buildImage(blobs, { layers: await layers([ZST_L1, ZST_L2], { compression: 'zstd' }), platform: HOST, format: 'oci' });
  const plain = buildImage(blobs, { layers: await layers([PLAIN_L1, PLAIN_L2], { compression: 'none' }), platform: HOST, format: 'oci' });

  const images: MatrixFixtures['images'] = {
    base: fixture(blobs, 'base', ['docker.io/library/base:1', 'example.com/team/base:alias'], base, 'gzip'),
    multi: fixture(blobs, 'multi', ['docker.io/library/multi:1'], multi, 'gzip'),
    zst: fixture(blobs, 'zst', ['docker.io/library/zst:1'], zst, 'zstd'),
    plain: fixture(blobs, 'plain', ['docker.io/library/plain:1'], plain, 'none'),
    gz1: fixture(blobs, 'gz1', ['docker.io/library/base:gz1'], gz1, 'gzip'),
    bzstd: fixture(blobs, 'bzstd', ['docker.io/library/base:zstd'], bzstd, 'zstd'),
  };
  // The shared-diffID images really are what they claim to be.
  for (const k of ['gz1', 'bzstd'] as const) {
    const m = images[k].host;
    if (m.configDigest !== images.base.host.configDigest || m.diffIds.join() !== images.base.host.diffIds.join()) throw new Error(`fixture ${k}: config/diffIDs differ from base`);
    if (m.layerDigests.some((d) => images.base.host.layerDigests.includes(d)) || m.digest === images.base.host.digest) throw new Error(`fixture ${k}: shares blobs with base`);
  }

  const archive = path.join(dir, 'fixtures.tar');
  await writeOciArchive(blobs, archive, { images: Object.values(images).map((i) => ({ target: i.target, names: i.names })) });
  const root = path.join(dir, 'store');
  // content only: the matrix unpacks explicitly (`imgtool unpack`) or exports by applying layers
  await imgtool(root, ['load', '--no-unpack', '-i', archive]);
  return { dir, blobs, archive, root, images, names: Object.values(images).flatMap((i) => i.names) };
}

// ---------------------------------------------------------------------------------------------
// OCI layouts (skopeo/umoci side)

export function readLayoutBlob(layout: string, digest: string): Buffer {
  const buf = fs.readFileSync(path.join(layout, 'blobs', 'sha256', digest.replace(/^sha256:/, '')));
  const got = sha256(buf);
  if (got !== digest) throw new Error(`${layout}: blob ${digest} has digest ${got}`);
  return buf;
}

/** The index.json entry of `layout` whose ref.name is `tag`. */
export function layoutEntry(layout: string, tag: string): Descriptor {
  const idx = JSON.parse(fs.readFileSync(path.join(layout, 'index.json'), 'utf8')) as Index;
  const e = idx.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag);
  if (!e) throw new Error(`${layout}: no index.json entry for ${tag}: ${JSON.stringify(idx.manifests)}`);
  return e;
}

/** Config digest and diffIDs of the (host platform's) image `tag` in an OCI layout. */
export function layoutImage(layout: string, tag: string): { manifest: string; configDigest: string; diffIds: string[]; layerMediaTypes: string[] } {
  let d = layoutEntry(layout, tag);
  if (/index|manifest\.list/.test(d.mediaType)) {
    const idx = JSON.parse(readLayoutBlob(layout, d.digest).toString()) as Index;
    const m = idx.manifests.find((x) => x.platform && formatPlatform(x.platform) === HOST_STR);
    if (!m) throw new Error(`${layout}:${tag}: no host manifest`);
    d = m;
  }
  const man = JSON.parse(readLayoutBlob(layout, d.digest).toString()) as Manifest;
  const cfg = JSON.parse(readLayoutBlob(layout, man.config.digest).toString()) as ImageConfig;
  return { manifest: d.digest, configDigest: man.config.digest, diffIds: cfg.rootfs.diff_ids, layerMediaTypes: man.layers.map((l) => l.mediaType) };
}

/** sha256 of `buf` as a digest string. */
export function sha256(buf: Buffer): string {
  return 'sha256:' + crypto.createHash('sha256').update(buf).digest('hex');
}

/** The uncompressed bytes of a layer blob, by its magic (gzip, zstd via the zstd CLI, else raw tar). */
export function uncompressLayer(blob: Buffer): Buffer {
  if (blob[0] === 0x1f && blob[1] === 0x8b) return zlib.gunzipSync(blob);
  if (blob.readUInt32LE(0) === 0xfd2fb528) return execFileSync('zstd', ['-d', '-c', '-q'], { input: blob, maxBuffer: 256 << 20 });
  return blob;
}

/** diffIDs computed from the layer blobs a manifest in `layout` references (not read from its config). */
export function layoutLayerDiffIds(layout: string, manifestDigest: string): string[] {
  const man = JSON.parse(readLayoutBlob(layout, manifestDigest).toString()) as Manifest;
  return man.layers.map((l) => sha256(uncompressLayer(readLayoutBlob(layout, l.digest))));
}

/** chainIDs of a diffID list (as containerd and imgtool key snapshots). */
export function chainIds(diffIds: string[]): string[] {
  const out: string[] = [];
  for (const d of diffIds) out.push(out.length ? sha256(Buffer.from(`${out[out.length - 1]} ${d}`)) : d);
  return out;
}

// ---------------------------------------------------------------------------------------------
// file trees

export interface TreeEntry {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  link?: string;
  sha?: string;
  size?: number;
  ino: number;
}

/** Every path under `root` (relative, sorted), with type, permission bits, owner, target/content. */
export function scanTree(root: string): Map<string, TreeEntry> {
  const out = new Map<string, TreeEntry>();
  const visit = (rel: string) => {
    for (const n of fs.readdirSync(path.join(root, rel)).sort()) {
      const p = rel ? `${rel}/${n}` : n;
      const full = path.join(root, p);
      const st = fs.lstatSync(full);
      const type = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSymbolicLink() ? 'symlink' : st.isFIFO() ? 'fifo' : st.isCharacterDevice() ? 'char' : st.isBlockDevice() ? 'block' : 'other';
      const e: TreeEntry = { type, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, ino: st.ino };
      if (type === 'symlink') e.link = fs.readlinkSync(full);
      if (type === 'file') {
        e.size = st.size;
        e.sha = crypto.createHash('sha256').update(fs.readFileSync(full)).digest('hex');
      }
      out.set(p, e);
      if (type === 'dir') visit(p);
    }
  };
  visit('');
  return out;
}

/** Hard-link groups (paths sharing an inode), sorted. */
export function linkGroups(t: Map<string, TreeEntry>): string[][] {
  const by = new Map<number, string[]>();
  for (const [p, e] of t) if (e.type === 'file') by.set(e.ino, [...(by.get(e.ino) ?? []), p]);
  return [...by.values()].filter((g) => g.length > 1).map((g) => g.sort()).sort();
}

/**
 * Differences between two trees (empty when identical): paths, types, modes, owners (unless
 * `ignoreOwner`), symlink targets, file contents, hard-link groups. Symlink modes are ignored
 * (Linux has none).
 */
export function diffTrees(a: Map<string, TreeEntry>, b: Map<string, TreeEntry>, opts: { ignoreOwner?: boolean } = {}): string[] {
  const out: string[] = [];
  for (const p of a.keys()) if (!b.has(p)) out.push(`only in first: ${p}`);
  for (const p of b.keys()) if (!a.has(p)) out.push(`only in second: ${p}`);
  const view = (e: TreeEntry) => ({
    type: e.type,
    mode: e.type === 'symlink' ? undefined : '0' + e.mode.toString(8),
    owner: opts.ignoreOwner ? undefined : `${e.uid}:${e.gid}`,
    link: e.link,
    sha: e.sha,
  });
  for (const [p, ea] of a) {
    const eb = b.get(p);
    if (!eb) continue;
    const va = JSON.stringify(view(ea));
    const vb = JSON.stringify(view(eb));
    if (va !== vb) out.push(`${p}: ${va} != ${vb}`);
  }
  const la = JSON.stringify(linkGroups(a));
  const lb = JSON.stringify(linkGroups(b));
  if (la !== lb) out.push(`hard links: ${la} != ${lb}`);
  return out;
}

/** The expected merged tree of `base` (paths only), to make sure a comparison is not vacuous. */
export const BASE_EXPECTED_PATHS = [
  'bin', 'bin/sh', 'bin/tool', 'data', 'data/keep', 'data/new', 'data/random.bin', 'data/words.txt', 'empty',
  'etc', 'etc/hard', 'etc/os-release', 'etc/shadow', 'link-to-keep', 'opt', 'opt/old', 'opt/old/c', 'run', 'run/app.pid',
  'usr', 'usr/bin', 'usr/bin/su', 'usr/share', 'usr/share/doc', 'var', 'var/run',
];
