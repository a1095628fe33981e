/**
 * export-rootfs: an image's merged root filesystem as a tar (deterministic: entries in
 * byte order of their paths, parents first) or written into a directory. From the
 * image's snapshot chain when unpacked; otherwise the missing layers are applied into
 * temporary work directories (never committed) and removed afterwards.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Readable, Writable } from 'node:stream';
import type { Store } from '../store';
import { ResourceHolder } from '../content';
import { Progress, silentProgress } from '../progress';
import { ImgtoolError, InvalidArgumentError } from '../errors';
import { shortDigest } from '../digest';
import { END_OF_ARCHIVE, EncodeHeader, encodeHeader, padding } from '../tar';
import { walk, newRoot, Meta, MtimeClamp } from './tree';
import { fsPath, removeTree } from '../tar';
import { archiveOutput } from '../archive/output';
import { showName } from './apply';
import { MergedView, applyLayerStream, loadMergedView, resolveImageLayers, openLayerSource } from './ops';

export type ExportTarget = { output: string | Writable } | { dir: string };

export interface ExportRootfsOptions {
  platform?: string;
  lease?: ResourceHolder;
  progress?: Progress;
}

export interface ExportRootfsResult {
  image: string;
  chainId: string | undefined;
  /** True when every layer came from committed snapshots. */
  fromSnapshots: boolean;
  entries: number;
  /** Bytes of file data written. */
  bytes: number;
  /** Things that could not be applied to a directory (devices as non-root, xattrs). */
  warnings: string[];
}

/** Export the merged root filesystem of `ref` (its host or `platform` manifest). */
export async function exportRootfs(store: Store, ref: string, target: ExportTarget, opts: ExportRootfsOptions = {}): Promise<ExportRootfsResult> {
  const progress = opts.progress ?? silentProgress;
  const img = await resolveImageLayers(store, ref, opts.platform);
  const snaps = store.snapshots;
  const works: string[] = [];
  try {
    // Longest committed prefix of the chain, then apply the rest into temp dirs.
    let k = 0;
    while (k < img.layers.length && snaps.has(img.layers[k].chainId) && (!opts.lease || snaps.attach(img.layers[k].chainId, opts.lease))) k++;
    const view: MergedView = k > 0 ? await loadMergedView(snaps, img.layers[k - 1].chainId) : { tree: newRoot(), fsRoots: [] };
    const stats = { entries: 0, bytes: 0, warnings: [] as string[] };
    for (let i = k; i < img.layers.length; i++) {
      const l = img.layers[i];
      const what = `image ${img.name} layer ${i + 1}/${img.layers.length} (${l.desc.digest})`;
      const src = openLayerSource(store, l.desc, l.diffId, what);
      const work = snaps.prepare('export');
      works.push(work);
      const task = progress.task(`apply ${shortDigest(l.desc.digest)} (${i + 1}/${img.layers.length})`, src.size);
      try {
        await applyLayerStream({ view, index: i, source: src.stream, diffId: l.diffId, chainId: l.chainId, parent: l.parent, work, record: false, what, onBytes: (b) => task.update(b), warn: (m) => stats.warnings.push(m) });
      } finally {
        task.finish();
      }
    }
    if ('dir' in target) await writeDir(view, target.dir, stats, img.name);
    else await writeTarTo(view, target.output, stats);
    for (const w of stats.warnings) progress.warn(w);
    return {
      image: img.name,
      chainId: img.layers.length ? img.layers[img.layers.length - 1].chainId : undefined,
      fromSnapshots: k === img.layers.length,
      ...stats,
    };
  } finally {
    for (const w of works) removeTree(w);
  }
}

// ---------------------------------------------------------------------------
// tar

/** `mtime`: the entry's mtime clamped (MtimeClamp), as a directory export would set it. */
function headerFor(p: string, m: Meta, mtime: number): EncodeHeader {
  const h: EncodeHeader = {
    name: m.type === 'dir' ? p + '/' : p,
    type: m.type,
    mode: m.mode,
    uid: m.uid,
    gid: m.gid,
    uname: m.uname,
    gname: m.gname,
    mtime,
  };
  if (m.xattrs) {
    h.xattrs = {};
    for (const [k, v] of Object.entries(m.xattrs)) h.xattrs[k] = Buffer.from(v, 'base64');
  }
  if (m.type === 'symlink') h.linkname = m.linkname ?? '';
  if (m.type === 'char' || m.type === 'block') {
    h.devmajor = m.devmajor;
    h.devminor = m.devminor;
  }
  return h;
}

/**
 * The merged view as a tar stream. mtimes are clamped as for a directory export (snapshots
 * made before clamping existed may hold any); `stats.warnings`, when given, gets one line.
 */
export function rootfsTar(view: MergedView, stats: { entries: number; bytes: number; warnings?: string[] } = { entries: 0, bytes: 0 }): Readable {
  async function* gen(): AsyncGenerator<Buffer> {
    const firstPath = new Map<string, string>();
    const mtimes = new MtimeClamp();
    for (const { path: p, node } of walk(view.tree)) {
      const m = node.meta;
      const mtime = mtimes.apply(p, m.mtime);
      stats.entries++;
      if (m.type !== 'file') {
        yield encodeHeader(headerFor(p, m, mtime));
        continue;
      }
      const fh = await fs.promises.open(fsPath(view.fsRoots[node.owner], p), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
      try {
        const st = await fh.stat();
        const key = `${st.dev}:${st.ino}`;
        const first = firstPath.get(key);
        if (first !== undefined) {
          yield encodeHeader({ ...headerFor(p, m, mtime), type: 'link', linkname: first });
          continue;
        }
        firstPath.set(key, p);
        const size = st.size;
        yield encodeHeader({ ...headerFor(p, m, mtime), size });
        let left = size;
        while (left > 0) {
          const buf = Buffer.allocUnsafe(Math.min(left, 1024 * 1024));
          const { bytesRead } = await fh.read(buf, 0, buf.length, null);
          if (!bytesRead) throw new ImgtoolError('INTERNAL', `snapshot file ${p} ended early`);
          left -= bytesRead;
          stats.bytes += bytesRead;
          yield bytesRead === buf.length ? buf : buf.subarray(0, bytesRead);
        }
        const pad = padding(size);
        if (pad.length) yield pad;
      } finally {
        await fh.close();
      }
    }
    yield END_OF_ARCHIVE;
    const w = mtimes.warning('export-rootfs');
    if (w) stats.warnings?.push(w);
  }
  return Readable.from(gen(), { objectMode: false });
}

/**
 * Write the tar through an archive output (src/archive/output.ts): `-` is stdout, a path gets
 * temp + fsync + rename (a symlink followed; a FIFO or device written in place), a Writable is
 * ended when done. On failure (or interruption) the temp file is removed.
 */
async function writeTarTo(view: MergedView, target: string | Writable, stats: { entries: number; bytes: number }): Promise<void> {
  const out = archiveOutput(target);
  await out.open();
  try {
    for await (const chunk of rootfsTar(view, stats)) await out.write(chunk as Buffer);
    await out.commit();
  } catch (e) {
    await out.abort(e);
    throw e;
  }
}

// ---------------------------------------------------------------------------
// directory

const isRoot = () => typeof process.getuid === 'function' && process.getuid() === 0;

/**
 * Write the merged view into `dir` (empty or absent). On failure, what the export created is
 * removed: the directories it made (up to the first that existed), or the contents it put
 * into the existing empty directory; the error names the entry.
 */
async function writeDir(view: MergedView, dir: string, stats: { entries: number; bytes: number; warnings: string[] }, image: string): Promise<void> {
  const abs = path.resolve(dir);
  let st: fs.Stats | undefined;
  try {
    st = fs.lstatSync(abs);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new InvalidArgumentError(`export-rootfs: ${abs}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (st && (!st.isDirectory() || fs.readdirSync(abs).length > 0)) {
    throw new InvalidArgumentError(`export-rootfs: ${abs} must be an empty directory or not exist`);
  }
  let made: string | undefined;
  try {
    made = st ? undefined : fs.mkdirSync(abs, { recursive: true });
  } catch (e) {
    throw new InvalidArgumentError(`export-rootfs: cannot create ${abs}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const current = { p: undefined as string | undefined };
  try {
    await fillDir(view, abs, stats, current);
  } catch (e) {
    try {
      if (made) removeTree(made);
      else for (const n of fs.readdirSync(abs, { encoding: 'buffer' })) removeTree(abs, n.toString('latin1'));
    } catch {
      /* nothing more to do: the message says where */
    }
    if (e instanceof ImgtoolError && e.message.startsWith('export-rootfs:')) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' && current.p !== undefined ? 'its data is missing from the store (run imgtool fsck)' : code ?? (e as Error).message.split('\n')[0];
    throw new ImgtoolError(e instanceof ImgtoolError ? e.code : 'PRECONDITION', `export-rootfs: image ${image}: entry ${showName(current.p ?? '')}: ${why}; ${made ? `${abs} removed` : `${abs} emptied`}`, [], { cause: e });
  }
}

async function fillDir(view: MergedView, abs: string, stats: { entries: number; bytes: number; warnings: string[] }, current: { p: string | undefined }): Promise<void> {
  const root = isRoot();
  const firstPath = new Map<string, string>();
  const dirs: Array<{ p: Buffer; m: Meta; mtime: number }> = [];
  const mtimes = new MtimeClamp();
  let skippedDev = 0;
  let skippedXattr = 0;
  for (const { path: p, node } of walk(view.tree)) {
    current.p = p;
    const m = node.meta;
    const dst = fsPath(abs, p);
    const mtime = mtimes.apply(p, m.mtime);
    stats.entries++;
    if (m.xattrs) skippedXattr++;
    switch (m.type) {
      case 'dir':
        fs.mkdirSync(dst, 0o700);
        dirs.push({ p: dst, m, mtime });
        continue;
      case 'file': {
        const src = fsPath(view.fsRoots[node.owner], p);
        const sst = fs.lstatSync(src);
        if (!sst.isFile()) throw new ImgtoolError('INTERNAL', `snapshot data for ${p} is not a regular file`);
        const key = `${sst.dev}:${sst.ino}`;
        const first = firstPath.get(key);
        if (first !== undefined) {
          fs.linkSync(fsPath(abs, first), dst);
          continue;
        }
        firstPath.set(key, p);
        fs.copyFileSync(src, dst, fs.constants.COPYFILE_EXCL);
        stats.bytes += sst.size;
        break;
      }
      case 'symlink':
        fs.symlinkSync(Buffer.from(m.linkname ?? '', 'latin1'), dst);
        break;
      case 'fifo':
      case 'char':
      case 'block': {
        const name = dst.toString('utf8');
        if (!Buffer.from(name, 'utf8').equals(dst) || (m.type !== 'fifo' && !root)) {
          skippedDev++;
          continue;
        }
        const r = m.type === 'fifo'
          ? spawnSync('mkfifo', ['-m', '600', '--', name], { stdio: 'ignore' })
          : spawnSync('mknod', ['-m', '600', '--', name, m.type === 'char' ? 'c' : 'b', String(m.devmajor ?? 0), String(m.devminor ?? 0)], { stdio: 'ignore' });
        if (r.status !== 0) {
          skippedDev++;
          continue;
        }
        break;
      }
    }
    applyMeta(dst, m, mtime, root);
  }
  current.p = undefined;
  for (let i = dirs.length - 1; i >= 0; i--) applyMeta(dirs[i].p, dirs[i].m, dirs[i].mtime, root);
  const w = mtimes.warning('export-rootfs');
  if (w) stats.warnings.push(w);
  if (skippedDev) stats.warnings.push(`export-rootfs: ${skippedDev} device node(s)/fifo(s) not created${root ? '' : ' (needs root)'}; a tar export (-o) keeps them`);
  if (skippedXattr) stats.warnings.push(`export-rootfs: extended attributes of ${skippedXattr} entr${skippedXattr === 1 ? 'y' : 'ies'} not applied to the directory; a tar export (-o) keeps them`);
}

/** `mtime`: already clamped (MtimeClamp) to what a filesystem accepts. */
function applyMeta(p: Buffer, m: Meta, mtime: number, root: boolean): void {
  if (root) fs.lchownSync(p, m.uid, m.gid);
  if (m.type !== 'symlink') fs.chmodSync(p, m.mode & 0o7777);
  fs.lutimesSync(p, mtime, mtime);
}

