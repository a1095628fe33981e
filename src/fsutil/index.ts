/**
 * fsutil: the durability primitives every writer shares.
 *
 * Invariants:
 *  - `syncDir` fsyncs a directory so renames and unlinks in it survive a crash. Only EINVAL and
 *    ENOTSUP (a filesystem that cannot fsync a directory) are ignored, and ENOENT when asked
 *    (a directory never created holds nothing to make durable); anything else (EIO: the
 *    directory may not be on disk) is thrown, so the caller's commit fails rather than lies.
 *  - `writeFileAtomic` writes a small file as temp (next to it) + fsync + rename + directory
 *    fsync: readers see the old file or the new one, never a part; the temp file never stays.
 *  - `afterShortWrite` is the one way to continue a vectored write that wrote only `n` bytes.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as crypto from 'node:crypto';

/** fsync directory `dir`; see the module rules. Throws the errno error otherwise. */
export function syncDir(dir: string, opts: { missingOk?: boolean } = {}): void {
  let fd: number;
  try {
    fd = fs.openSync(dir, 'r');
  } catch (e) {
    if (opts.missingOk && (e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  try {
    fs.fsyncSync(fd);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'ENOTSUP') throw e;
  } finally {
    fs.closeSync(fd);
  }
}

/** Write `data` to `file` atomically and durably (temp + fsync + rename + dir fsync). */
export function writeFileAtomic(file: string, data: Buffer | string, mode = 0o644): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${crypto.randomBytes(6).toString('hex')}`);
  try {
    const fd = fs.openSync(tmp, 'wx', mode);
    try {
      fs.writeFileSync(fd, data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  syncDir(path.dirname(file));
}

/** The buffers still to write after a vectored write of `chunks` wrote `n` bytes. */
export function afterShortWrite(chunks: Buffer[], n: number): Buffer[] {
  let skip = n;
  const rest: Buffer[] = [];
  for (const c of chunks) {
    if (skip >= c.length) {
      skip -= c.length;
      continue;
    }
    rest.push(skip ? c.subarray(skip) : c);
    skip = 0;
  }
  return rest;
}
