/** Decompression bombs for the limits tests, compressed while streaming (never held in memory). */
import * as fs from 'node:fs';
import { Readable, Writable } from 'node:stream';
import { createHash } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { CompressStream } from 'zstd-napi';
import { encodeHeader, END_OF_ARCHIVE } from '../../../src/tar';

/** A tar with one `junk` entry of `size` zero bytes, zstd-compressed while streaming, into `file`. */
export async function zstdZeroArchive(file: string, size: number): Promise<void> {
  const zero = Buffer.alloc(1 << 20);
  function* tarBytes() {
    yield encodeHeader({ name: 'junk', type: 'file', size, mode: 0o644, uid: 0, gid: 0, mtime: 0 });
    for (let left = size; left > 0; left -= zero.length) yield left >= zero.length ? zero : zero.subarray(0, left);
    yield Buffer.alloc((512 - (size % 512)) % 512);
    yield END_OF_ARCHIVE;
  }
  await pipeline(Readable.from(tarBytes()), new CompressStream({ compressionLevel: 3 }), fs.createWriteStream(file));
}


/**
 * A zstd layer blob: a tar holding one `zeros` file of `size` zero bytes (a few KB for
 * hundreds of MiB), compressed while streaming; `diffId` hashed while streaming too.
 */
export async function zstdZeroLayer(size: number): Promise<{ blob: Buffer; diffId: string }> {
  const zero = Buffer.alloc(1 << 20);
  function* tarBytes() {
    yield encodeHeader({ name: 'zeros', type: 'file', size, mode: 0o644, uid: 0, gid: 0, mtime: 0 });
    for (let left = size; left > 0; left -= zero.length) yield left >= zero.length ? zero : zero.subarray(0, left);
    yield Buffer.alloc((512 - (size % 512)) % 512);
    yield END_OF_ARCHIVE;
  }
  const h = createHash('sha256');
  for (const b of tarBytes()) h.update(b);
  const out: Buffer[] = [];
  await pipeline(Readable.from(tarBytes()), new CompressStream({ compressionLevel: 3 }), new Writable({ write(c, _e, cb) { out.push(c); cb(); } }));
  return { blob: Buffer.concat(out), diffId: 'sha256:' + h.digest('hex') };
}
