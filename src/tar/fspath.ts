/**
 * Filesystem paths of layer entries: `base` (a store directory, a normal path) joined with
 * `rel` (a latin1 binary string, at most MAX_PATH bytes: src/limits).
 *
 * Node has no dirfd-relative calls (openat, mkdirat…). When `base + rel` would not fit in
 * PATH_MAX (a long `--root` plus a deep layer path), the path goes through an open
 * descriptor of `base` instead: `/proc/self/fd/N/rel`, which the kernel resolves from that
 * directory, so any accepted in-layer path works whatever the length of the store root.
 * Descriptors are cached per directory and checked (same device and inode) on each use.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Longest byte path handed to the kernel directly (PATH_MAX 4096 with its NUL, some slack). */
const DIRECT_MAX = 4000;
const MAX_CACHED = 256;
const fds = new Map<string, { fd: number; dev: number; ino: number }>();
let procOk: boolean | undefined;

function dirFd(base: string): number | undefined {
  procOk ??= fs.existsSync('/proc/self/fd');
  if (!procOk) return undefined;
  let st: fs.Stats;
  try {
    st = fs.statSync(base);
  } catch {
    return undefined;
  }
  const c = fds.get(base);
  if (c && c.dev === st.dev && c.ino === st.ino) return c.fd;
  if (c) {
    fds.delete(base);
    fs.closeSync(c.fd);
  }
  const fd = fs.openSync(base, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  const fst = fs.fstatSync(fd);
  if (fds.size >= MAX_CACHED) {
    const [k, old] = fds.entries().next().value as [string, { fd: number }];
    fds.delete(k);
    fs.closeSync(old.fd);
  }
  fds.set(base, { fd, dev: fst.dev, ino: fst.ino });
  return fd;
}

/** `base` joined with `rel` (latin1 binary string) as a byte path; see the module comment. */
export function fsPath(base: string, rel: string): Buffer {
  if (!rel) return Buffer.from(base);
  const direct = Buffer.concat([Buffer.from(base + path.sep), Buffer.from(rel, 'latin1')]);
  if (direct.length <= DIRECT_MAX) return direct;
  const fd = dirFd(base);
  if (fd === undefined) return direct;
  return Buffer.concat([Buffer.from(`/proc/self/fd/${fd}/`), Buffer.from(rel, 'latin1')]);
}

export interface TreeVisitor {
  /** Every entry that is not a directory (symlinks are not followed). */
  file?(p: Buffer, st: fs.Stats): void;
  /** Every directory, before its children. */
  dir?(p: Buffer, st: fs.Stats): void;
  /** Every directory, after its children (they may have been removed). */
  dirDone?(p: Buffer): void;
}

/**
 * Walk `base/rel` (or `base` itself) and everything under it, iteratively (a tree may nest
 * thousands of directories: recursion overflows the stack), never following symlinks, at any
 * depth: each path handed to a visitor (a Buffer, usable with any fs call) stays under
 * PATH_MAX, because a directory whose path grows near it is opened and its children reached
 * through `/proc/self/fd/N/` (a handful of descriptors however deep the tree). Absent: nothing.
 */
export function walkTree(base: string, rel: string, v: TreeVisitor): void {
  const top = fsPath(base, rel);
  let st: fs.Stats;
  try {
    st = fs.lstatSync(top);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  if (!st.isDirectory()) return v.file?.(top, st);
  const slash = Buffer.from('/');
  type Frame = { self: Buffer; inner: Buffer; fd?: number; names?: Buffer[] };
  const open = (self: Buffer): Frame => {
    if (self.length <= DIRECT_MAX - 257 || !(procOk ??= fs.existsSync('/proc/self/fd'))) return { self, inner: self };
    const fd = fs.openSync(self, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW);
    return { self, inner: Buffer.from(`/proc/self/fd/${fd}`), fd };
  };
  v.dir?.(top, st);
  const stack: Frame[] = [open(top)];
  try {
    while (stack.length) {
      const f = stack[stack.length - 1];
      f.names ??= fs.readdirSync(f.inner, { encoding: 'buffer' });
      const name = f.names.pop();
      if (name === undefined) {
        stack.pop();
        if (f.fd !== undefined) fs.closeSync(f.fd);
        v.dirDone?.(f.self);
        continue;
      }
      const p = Buffer.concat([f.inner, slash, name]);
      const cst = fs.lstatSync(p);
      if (cst.isDirectory()) {
        v.dir?.(p, cst);
        stack.push(open(p));
      } else v.file?.(p, cst);
    }
  } finally {
    for (const f of stack) if (f.fd !== undefined) fs.closeSync(f.fd);
  }
}

/**
 * Remove `base/rel` (or `base` itself) and everything under it, iteratively and at any
 * depth (`walkTree`), never following symlinks. Absent: nothing to do.
 */
export function removeTree(base: string, rel = ''): void {
  walkTree(base, rel, { file: (p) => fs.unlinkSync(p), dirDone: (p) => fs.rmdirSync(p) });
}

/** fsync every file and directory under `dir`, iteratively and through `fsPath`. */
export function syncTreeFiles(dir: string): void {
  const stack: string[] = [''];
  while (stack.length) {
    const rel = stack.pop()!;
    const p = fsPath(dir, rel);
    const st = fs.lstatSync(p);
    if (st.isDirectory()) for (const n of fs.readdirSync(p, { encoding: 'buffer' })) stack.push(rel ? `${rel}/${n.toString('latin1')}` : n.toString('latin1'));
    if (st.isFile() || st.isDirectory()) {
      const fd = fs.openSync(p, 'r');
      try {
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    }
  }
}
