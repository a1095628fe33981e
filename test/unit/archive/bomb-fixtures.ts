/** Decompression bombs for the limits tests, compressed while streaming (never held in memory). */
import * as fs from 'node:fs';
import { Readable } from 'node:stream';
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

