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

/**
 * Remove `base/rel` (or `base` itself) and everything under it, iteratively (a layer may
 * nest thousands of directories: recursive removal overflows the stack), through `fsPath`
 * (so long paths work), never following symlinks. Absent: nothing to do.
 */
export function removeTree(base: string, rel = ''): void {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(fsPath(base, rel));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  if (!st.isDirectory()) {
    fs.unlinkSync(fsPath(base, rel));
    return;
  }
  const stack: Array<{ rel: string; names?: string[] }> = [{ rel }];
  while (stack.length) {
    const top = stack[stack.length - 1];
    top.names ??= fs.readdirSync(fsPath(base, top.rel), { encoding: 'buffer' }).map((b) => b.toString('latin1'));
    const name = top.names.pop();
    if (name === undefined) {
      stack.pop();
      fs.rmdirSync(fsPath(base, top.rel));
      continue;
    }
    const r = top.rel ? `${top.rel}/${name}` : name;
    const p = fsPath(base, r);
    if (fs.lstatSync(p).isDirectory()) stack.push({ rel: r });
    else fs.unlinkSync(p);
  }
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
