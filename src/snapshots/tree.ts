/**
 * The in-memory model of a merged filesystem view, and the per-snapshot change index.
 *
 * A snapshot stores only its own changes: regular file data under `fs/` (at the
 * path where the entry was actually stored), and an index (`index.gz`, NDJSON) with
 * every own entry's metadata (type, mode, owner, mtime, xattrs, link targets,
 * devices — symlinks, devices and fifos never materialise on disk), the lower paths
 * it removed (whiteouts, replacements) and its opaque directories. The merged view of
 * a chain is computed on demand by replaying the indexes bottom to top.
 *
 * Paths are relative, `/`-separated, without `.`/`..`/empty components, as latin1
 * binary strings (see tar.ts).
 */
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import * as readline from 'node:readline';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { ImgtoolError } from '../errors';

export type NodeType = 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo';

export interface Meta {
  type: NodeType;
  mode: number;
  uid: number;
  gid: number;
  uname?: string;
  gname?: string;
  mtime: number;
  /** Extended attributes, values base64. */
  xattrs?: Record<string, string>;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** Regular files: size of the data. */
  size?: number;
  /** A directory created because an entry needed it, not by a header of its own. */
  implicit?: boolean;
}

export class Node {
  children: Map<string, Node> | undefined;
  constructor(public name: string, public meta: Meta, public owner: number) {
    if (meta.type === 'dir') this.children = new Map();
  }
  get isDir(): boolean {
    return this.meta.type === 'dir';
  }
}

export function newRoot(): Node {
  return new Node('', { type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 0, implicit: true }, -1);
}

export function implicitDirMeta(): Meta {
  return { type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 0, implicit: true };
}

/**
 * The largest mtime (seconds) put on a filesystem: 2^63-1 ns, the bound containerd's and
 * moby's layer apply use (year 2262). Beyond it utimensat gets an invalid timespec (EINVAL).
 */
export const MAX_MTIME = 9223372036;

/**
 * The mtime an entry gets in a snapshot and an exported root filesystem: tar mtimes
 * may be negative, fractional or huge (PAX, base-256), filesystems take [0, MAX_MTIME]
 * (Node even turns a negative time into "now"). Fractions are kept. The layer's
 * tar-split keeps the original header bytes, so exact rebuilds are unaffected.
 */
export function clampMtime(t: number): number {
  if (!(t >= 0)) return 0; // negative or NaN
  return t > MAX_MTIME ? MAX_MTIME : t;
}

/** Clamps the mtimes of a run of entries (a layer, an export) and reports it as one warning. */
export class MtimeClamp {
  private first: { name: string; mtime: number } | undefined;
  private count = 0;

  /** The clamped mtime of entry `name`. */
  apply(name: string, mtime: number): number {
    const c = clampMtime(mtime);
    if (c !== mtime) {
      this.count++;
      this.first ??= { name, mtime };
    }
    return c;
  }

  /** One line naming the first clamped entry (and how many more), or undefined. */
  warning(what: string): string | undefined {
    if (!this.first) return undefined;
    const { name, mtime } = this.first;
    const more = this.count > 1 ? ` (and ${this.count - 1} more entr${this.count === 2 ? 'y' : 'ies'})` : '';
    return `${what}: entry ${JSON.stringify(name)}: mtime ${mtime} is outside [0, ${MAX_MTIME}], clamped to ${clampMtime(mtime)}${more}`;
  }
}

export function splitPath(p: string): string[] {
  return p.split('/').filter((c) => c !== '' && c !== '.');
}

/** Lexical clean relative to the root: `..` never climbs above it. */
export function cleanComponents(p: string): string[] {
  const out: string[] = [];
  for (const c of p.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') out.pop();
    else out.push(c);
  }
  return out;
}

export function lookup(root: Node, comps: string[]): Node | undefined {
  let n: Node | undefined = root;
  for (const c of comps) {
    if (!n || !n.children) return undefined;
    n = n.children.get(c);
  }
  return n;
}

/** Every node under `n` (not `n` itself), parents before children, children sorted by name. */
export function* walk(n: Node, prefix = ''): Generator<{ path: string; node: Node }> {
  // Iterative: a layer may nest thousands of directories (recursive generators overflow the stack).
  const stack: Array<{ node: Node; prefix: string; names: string[]; i: number }> = [];
  const open = (d: Node, p: string) => {
    if (d.children) stack.push({ node: d, prefix: p, names: [...d.children.keys()].sort(byteCompare), i: 0 });
  };
  open(n, prefix);
  while (stack.length) {
    const top = stack[stack.length - 1];
    if (top.i >= top.names.length) {
      stack.pop();
      continue;
    }
    const name = top.names[top.i++];
    const c = top.node.children!.get(name);
    if (!c) continue;
    const p = top.prefix ? top.prefix + '/' + name : name;
    yield { path: p, node: c };
    if (c.children) open(c, p);
  }
}

export function byteCompare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

// ---------------------------------------------------------------------------
// Snapshot index files

export interface IndexHeader {
  v: 1;
  chainId: string;
  parent?: string;
  diffId: string;
}

export interface SnapshotChanges {
  header: IndexHeader;
  /** Lower paths removed (whiteouts, type replacements). */
  removed: string[];
  /** Directories whose lower children are hidden. */
  opaque: string[];
  /** Own entries, parents before children. */
  entries: Array<{ path: string; meta: Meta }>;
}

/** Write the index (gzip'd NDJSON) to `file`. Streams; `entries` may be a generator. */
export async function writeIndex(
  file: string,
  header: IndexHeader,
  removed: Iterable<string>,
  opaque: Iterable<string>,
  entries: Iterable<{ path: string; meta: Meta }>,
): Promise<number> {
  function* lines(): Generator<string> {
    yield JSON.stringify(header) + '\n';
    for (const r of removed) yield JSON.stringify({ r }) + '\n';
    for (const o of opaque) yield JSON.stringify({ o }) + '\n';
    let buf = '';
    for (const e of entries) {
      buf += JSON.stringify({ p: e.path, ...e.meta }) + '\n';
      if (buf.length > 65536) {
        yield buf;
        buf = '';
      }
    }
    if (buf) yield buf;
  }
  const out = fs.createWriteStream(file, { flags: 'wx' });
  await pipeline(Readable.from(lines(), { objectMode: false }), zlib.createGzip({ level: 6 }), out);
  return fs.statSync(file).size;
}

/** Read an index file, calling back for each record in file order. */
export async function readIndex(
  file: string,
  cb: { header(h: IndexHeader): void; removed(p: string): void; opaque(p: string): void; entry(p: string, m: Meta): void },
): Promise<void> {
  const rs = fs.createReadStream(file).pipe(zlib.createGunzip());
  const rl = readline.createInterface({ input: rs, crlfDelay: Infinity });
  let first = true;
  try {
    for await (const line of rl) {
      if (!line) continue;
      const o = JSON.parse(line);
      if (first) {
        first = false;
        if (o.v !== 1) throw new ImgtoolError('PRECONDITION', `snapshot index ${file}: unsupported version ${o.v}`);
        cb.header(o as IndexHeader);
        continue;
      }
      if (typeof o.r === 'string') cb.removed(o.r);
      else if (typeof o.o === 'string') cb.opaque(o.o);
      else {
        const { p, ...meta } = o;
        cb.entry(p, meta as Meta);
      }
    }
  } catch (e) {
    if (e instanceof ImgtoolError) throw e;
    throw new ImgtoolError('INTERNAL', `snapshot index ${file} is unreadable: ${(e as Error).message} (run imgtool fsck)`);
  } finally {
    rl.close();
    rs.destroy();
  }
  if (first) throw new ImgtoolError('INTERNAL', `snapshot index ${file} is empty (run imgtool fsck)`);
}

/** Remove the node at `comps` (and its subtree) without following symlinks. */
export function removePath(root: Node, comps: string[]): Node | undefined {
  if (comps.length === 0) return undefined;
  const parent = lookup(root, comps.slice(0, -1));
  if (!parent || !parent.children) return undefined;
  const name = comps[comps.length - 1];
  const n = parent.children.get(name);
  if (n) parent.children.delete(name);
  return n;
}

/**
 * Apply one snapshot's changes on top of a merged tree (its parent chain's view):
 * removals and opaque directories hide lower content, then own entries are added
 * (a directory over a directory keeps the lower children).
 */
export async function mergeSnapshot(root: Node, indexFile: string, owner: number): Promise<IndexHeader> {
  let header: IndexHeader | undefined;
  await readIndex(indexFile, {
    header: (h) => (header = h),
    removed: (p) => {
      removePath(root, splitPath(p));
    },
    opaque: (p) => {
      const n = lookup(root, splitPath(p));
      if (n && n.children) n.children.clear();
    },
    entry: (p, meta) => {
      const comps = splitPath(p);
      let parent = root;
      for (let i = 0; i < comps.length - 1; i++) {
        let c = parent.children!.get(comps[i]);
        if (!c || !c.children) {
          c = new Node(comps[i], implicitDirMeta(), owner);
          parent.children!.set(comps[i], c);
        }
        parent = c;
      }
      const name = comps[comps.length - 1];
      const existing = parent.children!.get(name);
      if (existing && existing.isDir && meta.type === 'dir') {
        existing.meta = meta;
        existing.owner = owner;
      } else {
        parent.children!.set(name, new Node(name, meta, owner));
      }
    },
  });
  return header!;
}
