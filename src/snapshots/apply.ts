/**
 * Applying one layer tar on top of a merged view, into a snapshot's own directory.
 *
 * Every entry path is resolved inside the image root against the merged view (lower
 * snapshots + what this layer already did), like containerd's `fs.RootPath`: the name
 * is cleaned lexically (`..` cannot climb above the root, absolute = relative to the
 * root), then symlinks in its parent path are followed as if the root were `/`. The
 * operating system never follows a symlink while writing: symlinks, devices and
 * fifos exist only as metadata, directories are created component by component after
 * `lstat`, files are created with `O_EXCL|O_NOFOLLOW`. Hard links must name an entry
 * that exists in the image.
 *
 * Whiteouts (`.wh.NAME`) and opaque markers (`.wh..wh..opq`) hide lower content only
 * (entries of the same layer stay, whatever their order); they never materialise.
 * An entry of another type replaces the lower path entirely.
 *
 * aufs bookkeeping at the layer root (`.wh..wh.aufs`, `.wh..wh.orph/…`, `.wh..wh.plnk/…`;
 * every root `.wh..wh.*` except the opaque marker) never materialises either, as in
 * moby's and containerd's apply. Regular files under `.wh..wh.plnk/` are kept aside as
 * the targets of hard links into that directory: such a link becomes the file (with the
 * plnk file's metadata), and the payload then lives at the link's path, so tar-split
 * references it there (or inlines it from aside when nothing links to it) and the layer
 * still rebuilds byte for byte.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InvalidArchiveError, UnsafePathError, ImgtoolError } from '../errors';
import { PayloadSink, TarHandler, TarHeader } from '../tar';
import { Meta, MtimeClamp, Node, NodeType, cleanComponents, implicitDirMeta, lookup, walk } from './tree';
import { PayloadLocation, SplitRecorder, fsPath, removeTree } from '../tar';
import { DEFAULT_LIMITS, LIMIT_FLAGS, MAX_PATH, NAME_MAX } from '../limits';
import { LimitExceededError } from '../errors';

export interface ApplierOptions {
  /** Live merged tree of the lower chain; mutated into the merged view including this layer. */
  tree: Node;
  /** Owner index of the layer being applied. */
  layer: number;
  /** Directory holding each layer's file data, by owner index; `fsRoots[layer]` is ours. */
  fsRoots: string[];
  /** Work directory of the snapshot being prepared (holds `aside/` and the temp record). */
  workDir: string;
  /** Record tar-split data (exact rebuild). */
  record: boolean;
  /** For messages: which layer this is. */
  what?: string;
  /** Most entries the layer may hold (`--max-entries`); default DEFAULT_LIMITS.entries. */
  maxEntries?: number;
}

const MAX_LINKS = 255;
/** Root entries with this prefix are aufs metadata (except the opaque marker). */
const AUFS_META = '.wh..wh.';
const AUFS_PLNK = '.wh..wh.plnk';
const OPAQUE = '.wh..wh..opq';

/** An entry name for a one-line message: quoted, NULs visible, long names shortened. */
export function showName(name: string): string {
  const q = JSON.stringify(name.length > 160 ? `${name.slice(0, 80)}…${name.slice(-60)}` : name);
  return name.length > 160 ? `${q} (${name.length} bytes)` : q;
}

function join(comps: string[]): string {
  return comps.join('/');
}

export class LayerApplier implements TarHandler {
  readonly removed = new Set<string>();
  readonly opaque = new Set<string>();
  readonly recorder: SplitRecorder | undefined;
  /** Payload id -> where its bytes are. */
  private readonly payloadLoc: PayloadLocation[] = [];
  /** Own stored path -> payload id. */
  private readonly ownPayload = new Map<string, number>();
  /** Regular files under `.wh..wh.plnk/` (path below it -> payload id and metadata). */
  private readonly plnk = new Map<string, { id: number; meta: Meta }>();
  private readonly madeDirs = new Set<string>();
  private readonly tree: Node;
  private readonly cur: number;
  private readonly own: string;
  private readonly asideDir: string;
  private asideMade = false;
  /** mtimes a filesystem cannot take are clamped in the snapshot (the tar-split keeps them). */
  private readonly mtimes = new MtimeClamp();

  constructor(private readonly o: ApplierOptions) {
    this.tree = o.tree;
    this.cur = o.layer;
    this.own = o.fsRoots[o.layer];
    this.asideDir = path.join(o.workDir, 'aside');
    fs.mkdirSync(this.own, { recursive: true });
    this.recorder = o.record ? new SplitRecorder(path.join(o.workDir, 'tarsplit.tmp')) : undefined;
  }

  raw(buf: Buffer): void {
    this.recorder?.raw(buf);
  }

  /** Where each payload is now (for finalizing the record). */
  locate(id: number): PayloadLocation {
    return this.payloadLoc[id];
  }

  /** Own entries of the merged view, parents first. */
  *ownEntries(): Generator<{ path: string; meta: Meta }> {
    for (const { path: p, node } of walk(this.tree)) if (node.owner === this.cur) yield { path: p, meta: node.meta };
  }

  /** Bytes of file data this snapshot stores. */
  dataSize(): number {
    let n = 0;
    for (const p of this.ownPayload.keys()) n += lookup(this.tree, p.split('/'))?.meta.size ?? 0;
    return n + this.copiedBytes;
  }
  private copiedBytes = 0;

  close(): void {
    this.recorder?.close();
  }

  /** Warnings about the layer (one line each), once it is applied. */
  warnings(): string[] {
    const w = this.mtimes.warning(this.o.what ?? 'layer');
    return w ? [w] : [];
  }

  private err(msg: string, h: TarHeader): UnsafePathError {
    return new UnsafePathError(`${this.o.what ? this.o.what + ': ' : ''}entry ${showName(h.name)}: ${msg}`);
  }

  private inlineSink(): PayloadSink {
    return { write: (c) => this.recorder?.raw(Buffer.from(c)), end: () => {} };
  }

  /** Name of the entry being applied (for messages about failures below the applier). */
  current: string | undefined;
  private entries = 0;

  /** Names a filesystem can take: no NUL, components of at most NAME_MAX bytes, paths of at most MAX_PATH. */
  private checkNames(h: TarHeader, comps: string[]): void {
    if (h.name.includes('\0')) throw this.err('the name has a NUL byte', h);
    for (const c of comps) if (c.length > NAME_MAX) throw this.err(`name component of ${c.length} bytes, over ${NAME_MAX} (NAME_MAX)`, h);
    const len = comps.reduce((n, c) => n + c.length + 1, -1);
    if (len > MAX_PATH) throw this.err(`path of ${len} bytes, over ${MAX_PATH} (the longest path a layer may hold)`, h);
    if (h.type === 'symlink' || h.type === 'link') {
      if (h.linkname.includes('\0')) throw this.err('the link target has a NUL byte', h);
      if (h.linkname.length > MAX_PATH) throw this.err(`link target of ${h.linkname.length} bytes, over ${MAX_PATH}`, h);
    }
  }

  async entry(h: TarHeader): Promise<PayloadSink> {
    this.current = h.name;
    const max = this.o.maxEntries ?? DEFAULT_LIMITS.entries;
    if (++this.entries > max) {
      throw new LimitExceededError(`${this.o.what ? this.o.what + ': ' : ''}more than ${max} entries (limit ${LIMIT_FLAGS.entries}); refusing it at entry ${showName(h.name)}`);
    }
    const comps = cleanComponents(h.name);
    this.checkNames(h, comps);
    if (comps.length === 0) return this.inlineSink(); // the root itself
    if (comps[0].startsWith(AUFS_META) && !(comps.length === 1 && comps[0] === OPAQUE)) return this.aufsEntry(comps, h);
    const base = comps[comps.length - 1];
    const parentIn = comps.slice(0, -1);
    if (base.startsWith('.wh.')) {
      const parent = this.resolve(parentIn, true, h);
      if (base === '.wh..wh..opq') this.applyOpaque(parent);
      else {
        const name = base.slice(4);
        if (!name || name === '.' || name === '..' || name.startsWith('.wh.')) throw new InvalidArchiveError(`${this.o.what ? this.o.what + ': ' : ''}invalid whiteout ${JSON.stringify(h.name)}`);
        this.applyWhiteout(parent, name);
      }
      return this.inlineSink();
    }
    const parentComps = this.resolve(parentIn, true, h);
    const p = [...parentComps, base];
    switch (h.type) {
      case 'dir':
        this.dirEntry(parentComps, base, h);
        return this.inlineSink();
      case 'file':
        return this.fileEntry(parentComps, base, h);
      case 'link':
        this.linkEntry(parentComps, base, h);
        return this.inlineSink();
      case 'symlink':
      case 'char':
      case 'block':
      case 'fifo':
        this.metaEntry(parentComps, base, h, h.type);
        return this.inlineSink();
      default:
        throw new InvalidArchiveError(`unsupported tar entry type for ${join(p)}`);
    }
  }

  // ---- resolution ----------------------------------------------------------

  /** RootPath: follow symlinks (also the last component when `followLast`) inside the root. */
  resolve(input: string[], followLast: boolean, h: TarHeader): string[] {
    const out: string[] = [];
    const nodes: Array<Node | undefined> = [this.tree];
    let queue = input.slice();
    let links = 0;
    while (queue.length) {
      const c = queue.shift()!;
      if (c === '' || c === '.') continue;
      if (c === '..') {
        if (out.length) {
          out.pop();
          nodes.pop();
        }
        continue;
      }
      const cur = nodes[nodes.length - 1];
      const n = cur?.children?.get(c);
      if (n && n.meta.type === 'symlink' && (followLast || queue.some((q) => q !== '' && q !== '.'))) {
        if (++links > MAX_LINKS) throw this.err('too many levels of symbolic links', h);
        const t = n.meta.linkname ?? '';
        if (t.startsWith('/')) {
          out.length = 0;
          nodes.length = 1;
        }
        queue = t.split('/').concat(queue);
        continue;
      }
      out.push(c);
      nodes.push(n);
    }
    return out;
  }

  /** The directory node at `comps`, creating missing ones (implicit, own). Errors on a non-directory. */
  private ensureParent(comps: string[], h: TarHeader): Node {
    let n = this.tree;
    for (let i = 0; i < comps.length; i++) {
      let c = n.children!.get(comps[i]);
      if (!c) {
        c = new Node(comps[i], implicitDirMeta(), this.cur);
        n.children!.set(comps[i], c);
      } else if (!c.children) {
        throw this.err(`parent ${JSON.stringify(join(comps.slice(0, i + 1)))} is not a directory`, h);
      }
      n = c;
    }
    return n;
  }

  // ---- physical writes (own fs only) --------------------------------------

  private mkdirPhysical(comps: string[]): void {
    let p = '';
    for (const c of comps) {
      p = p ? p + '/' + c : c;
      if (this.madeDirs.has(p)) continue;
      const fp = fsPath(this.own, p);
      let st: fs.Stats | undefined;
      try {
        st = fs.lstatSync(fp);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
      if (!st) fs.mkdirSync(fp, 0o755);
      else if (!st.isDirectory()) throw new ImgtoolError('INTERNAL', `snapshot work dir: ${JSON.stringify(p)} is not a directory`);
      this.madeDirs.add(p);
    }
  }

  private rmPhysical(p: string): void {
    const fp = fsPath(this.own, p);
    try {
      fs.lstatSync(fp);
    } catch {
      return;
    }
    removeTree(this.own, p); // unlinks symlinks, never follows them
    this.madeDirs.clear();
  }

  private setAside(p: string): void {
    const id = this.ownPayload.get(p);
    if (id === undefined) return;
    this.ensureAside();
    const dst = path.join(this.asideDir, String(id));
    fs.renameSync(fsPath(this.own, p), dst);
    this.payloadLoc[id] = { aside: dst };
    this.ownPayload.delete(p);
  }

  /** Set aside every own payload under `n` (at `p`) before it disappears. */
  private setAsideTree(n: Node, p: string): void {
    if (n.meta.type === 'file' && n.owner === this.cur) this.setAside(p);
    if (n.children) for (const [name, c] of n.children) this.setAsideTree(c, p + '/' + name);
  }

  /** Remove whatever is at `parent/name` (own and lower), recording it as removed. */
  private replace(parent: Node, parentComps: string[], name: string): void {
    const n = parent.children!.get(name);
    if (!n) return;
    const p = join([...parentComps, name]);
    this.setAsideTree(n, p);
    this.rmPhysical(p);
    parent.children!.delete(name);
    this.removed.add(p);
  }

  /**
   * Hide the lower content of `n` (at `p`), keeping own entries. Returns whether the
   * node stays (it is own, or a lower directory that still holds own entries, which
   * then becomes an own implicit directory).
   */
  private hide(n: Node, p: string): boolean {
    if (n.children) {
      for (const [name, c] of [...n.children]) {
        if (!this.hide(c, p + '/' + name)) {
          n.children.delete(name);
          this.rmPhysical(p + '/' + name);
        }
      }
      if (n.owner === this.cur) return true;
      if (n.children.size > 0) {
        n.meta = { ...n.meta, implicit: true };
        n.owner = this.cur;
        return true;
      }
      return false;
    }
    return n.owner === this.cur;
  }

  private applyWhiteout(parentComps: string[], name: string): void {
    const parent = lookup(this.tree, parentComps);
    if (!parent || !parent.children) return;
    const n = parent.children.get(name);
    if (!n) return;
    const p = join([...parentComps, name]);
    this.removed.add(p);
    if (!this.hide(n, p)) {
      parent.children.delete(name);
      this.rmPhysical(p);
    }
  }

  private applyOpaque(dirComps: string[]): void {
    const d = lookup(this.tree, dirComps);
    if (!d || !d.children) return;
    const p = join(dirComps);
    for (const [name, c] of [...d.children]) {
      const cp = p ? p + '/' + name : name;
      if (!this.hide(c, cp)) {
        d.children.delete(name);
        this.rmPhysical(cp);
      }
    }
    this.opaque.add(p);
  }

  // ---- entries -----------------------------------------------------------

  private meta(h: TarHeader, type: NodeType): Meta {
    const m: Meta = { type, mode: h.mode & 0o7777, uid: h.uid, gid: h.gid, mtime: this.mtimes.apply(h.name, h.mtime) };
    if (h.uname) m.uname = h.uname;
    if (h.gname) m.gname = h.gname;
    const xk = Object.keys(h.xattrs);
    if (xk.length) {
      m.xattrs = {};
      for (const k of xk.sort()) m.xattrs[k] = h.xattrs[k].toString('base64');
    }
    if (type === 'symlink') m.linkname = h.linkname;
    if (type === 'char' || type === 'block') {
      m.devmajor = h.devmajor;
      m.devminor = h.devminor;
    }
    if (type === 'file') m.size = h.size;
    return m;
  }

  private dirEntry(parentComps: string[], name: string, h: TarHeader): void {
    const parent = this.ensureParent(parentComps, h);
    const existing = parent.children!.get(name);
    const meta = this.meta(h, 'dir');
    if (existing && existing.isDir) {
      existing.meta = meta;
      existing.owner = this.cur;
      return;
    }
    if (existing) this.replace(parent, parentComps, name);
    parent.children!.set(name, new Node(name, meta, this.cur));
  }

  private metaEntry(parentComps: string[], name: string, h: TarHeader, type: NodeType): void {
    const parent = this.ensureParent(parentComps, h);
    this.replace(parent, parentComps, name);
    parent.children!.set(name, new Node(name, this.meta(h, type), this.cur));
  }

  private fileEntry(parentComps: string[], name: string, h: TarHeader): PayloadSink {
    const parent = this.ensureParent(parentComps, h);
    this.replace(parent, parentComps, name);
    const p = join([...parentComps, name]);
    parent.children!.set(name, new Node(name, this.meta(h, 'file'), this.cur));
    this.mkdirPhysical(parentComps);
    const id = this.payloadLoc.length;
    this.payloadLoc.push({ stored: p });
    this.ownPayload.set(p, id);
    return this.payloadSink(fsPath(this.own, p), id, h);
  }

  /** aufs metadata at the root: only `.wh..wh.plnk/` files are kept (aside), as link targets. */
  private aufsEntry(comps: string[], h: TarHeader): PayloadSink {
    if (comps[0] !== AUFS_PLNK || comps.length < 2 || h.type !== 'file') return this.inlineSink();
    this.ensureAside();
    const id = this.payloadLoc.length;
    const file = path.join(this.asideDir, String(id));
    this.payloadLoc.push({ aside: file });
    this.plnk.set(join(comps.slice(1)), { id, meta: this.meta(h, 'file') });
    return this.payloadSink(file, id, h);
  }

  /** A new file at `file` receiving payload `id` (recorded as a reference in the tar-split). */
  private payloadSink(file: string | Buffer, id: number, h: TarHeader): PayloadSink {
    const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o644);
    this.recorder?.payload(id, h.size);
    let closed = false;
    return {
      // Synchronous writes: they only copy into the page cache, and per-file thread-pool
      // round trips dominate otherwise (layers with many small files).
      write: (chunk) => writeFullySync(fd, chunk),
      end: () => {
        if (!closed) {
          closed = true;
          fs.closeSync(fd);
        }
      },
    };
  }

  private linkEntry(parentComps: string[], name: string, h: TarHeader): void {
    const tcomps = cleanComponents(h.linkname);
    if (tcomps.length === 0) throw this.err(`hard link to the image root`, h);
    if (tcomps[0] === AUFS_PLNK && tcomps.length >= 2) return this.plnkLinkEntry(parentComps, name, h, join(tcomps.slice(1)));
    const tparent = this.resolve(tcomps.slice(0, -1), true, h);
    const tpath = [...tparent, tcomps[tcomps.length - 1]];
    const target = lookup(this.tree, tpath);
    if (!target) throw this.err(`hard link target ${JSON.stringify(h.linkname)} is not in the image`, h);
    if (target.isDir) throw this.err(`hard link target ${JSON.stringify(h.linkname)} is a directory`, h);
    const p = join([...parentComps, name]);
    const tp = join(tpath);
    if (p === tp) return; // a link to itself changes nothing
    if (tp.startsWith(p + '/')) throw this.err(`hard link target ${JSON.stringify(h.linkname)} is inside the entry it replaces`, h);
    let src: Buffer | undefined;
    if (target.meta.type === 'file') {
      const srcRoot = this.o.fsRoots[target.owner];
      if (srcRoot === undefined) throw new ImgtoolError('INTERNAL', `no data directory for layer ${target.owner}`);
      src = fsPath(srcRoot, tp);
    }
    const copied = this.placeLink(parentComps, name, h, target.meta, src);
    if (copied) this.copiedBytes += target.meta.size ?? 0;
  }

  /**
   * A hard link into `.wh..wh.plnk/` (aufs): the entry becomes that file. The first such
   * link moves the payload from aside into the snapshot at the link's path.
   */
  private plnkLinkEntry(parentComps: string[], name: string, h: TarHeader, key: string): void {
    const t = this.plnk.get(key);
    if (!t) throw this.err(`hard link target ${JSON.stringify(h.linkname)} is not a file of the layer's ${AUFS_PLNK}/ (aufs) seen before it`, h);
    const before = this.payloadLoc[t.id];
    const copied = this.placeLink(parentComps, name, h, t.meta, 'stored' in before ? fsPath(this.own, before.stored) : before.aside);
    const loc = this.payloadLoc[t.id]; // the replacement may have set it aside
    if ('aside' in loc) {
      const p = join([...parentComps, name]);
      fs.rmSync(loc.aside, { force: true });
      this.payloadLoc[t.id] = { stored: p };
      this.ownPayload.set(p, t.id);
    } else if (copied) {
      this.copiedBytes += t.meta.size ?? 0;
    }
  }

  /**
   * Put a hard link to `meta` at `parent/name`, replacing what is there; `src` is the
   * data file of a regular-file target. Returns whether the data had to be copied.
   */
  private placeLink(parentComps: string[], name: string, h: TarHeader, meta: Meta, src: string | Buffer | undefined): boolean {
    const parent = this.ensureParent(parentComps, h);
    const p = join([...parentComps, name]);
    const m = { ...meta };
    delete m.implicit;
    // The replacement below may set the source aside or remove it (it may be the path
    // being replaced): link first into a temp name.
    let tmpLink: string | undefined;
    let copied = false;
    if (src !== undefined) {
      this.ensureAside();
      tmpLink = path.join(this.asideDir, `link-${this.payloadLoc.length}-${Math.random().toString(36).slice(2)}`);
      try {
        fs.linkSync(src, tmpLink);
      } catch {
        fs.copyFileSync(src, tmpLink, fs.constants.COPYFILE_EXCL);
        copied = true;
      }
    }
    this.replace(parent, parentComps, name);
    parent.children!.set(name, new Node(name, m, this.cur));
    if (tmpLink) {
      this.mkdirPhysical(parentComps);
      const dst = fsPath(this.own, p);
      try {
        fs.lstatSync(dst);
        throw new ImgtoolError('INTERNAL', `snapshot work dir: ${JSON.stringify(p)} exists`);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
      fs.renameSync(tmpLink, dst);
    }
    return copied;
  }

  private ensureAside(): void {
    if (!this.asideMade) {
      fs.mkdirSync(this.asideDir, { recursive: true });
      this.asideMade = true;
    }
  }
}

function writeFullySync(fd: number, chunk: Buffer): void {
  let off = 0;
  while (off < chunk.length) off += fs.writeSync(fd, chunk, off, chunk.length - off);
}
