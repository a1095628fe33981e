/**
 * Hostile wrapped archives: a zstd/gzip archive that decompresses past the archive limits
 * stops at the bound with one clear line naming the archive and the flag that raises it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import * as zlib from 'node:zlib';
import { scanArchive, hashSink } from '../../../src/archive/reader';
import { encodeHeader, END_OF_ARCHIVE } from '../../../src/tar';
import { tmpDir, rmrf } from '../../helpers/cli';
import { zstdZeroArchive } from './bomb-fixtures';

let dir: string;
beforeEach(() => (dir = tmpDir('imgtool-arch-limits-')));
afterEach(() => rmrf(dir));

describe('wrapped archive limits', () => {
  it('a 320 MiB zstd bomb of a few KB is refused at --max-ratio 2000, read at the default', async () => {
    const f = path.join(dir, 'bomb.tar.zst');
    await zstdZeroArchive(f, 320 * 1024 * 1024);
    const size = fs.statSync(f).size;
    await expect(scanArchive(f, { sink: hashSink, limits: { ratio: 2000 } })).rejects.toThrow(new RegExp(`^archive ${f}: ${size} compressed bytes decompress to more than 2000 times that .*--max-ratio`));
    // the default passes zero-filled zstd (real layers of empty disk images reach zstd's ~32768:1 ceiling)
    const s = await scanArchive(f, { sink: hashSink });
    expect(s.tarBytes).toBeGreaterThan(320 * 1024 * 1024);
  });

  it('--max-archive-size bounds what a gzip archive decompresses to, from stdin too', async () => {
    const t = Buffer.concat([encodeHeader({ name: 'f', type: 'file', size: 3 << 20, mode: 0o644 }), Buffer.alloc(3 << 20, 7), END_OF_ARCHIVE]);
    const gz = zlib.gzipSync(t);
    await expect(scanArchive(Readable.from([gz]), { sink: hashSink, limits: { archiveSize: 2 << 20 } })).rejects.toThrow(/^archive input: decompresses to more than 2 MiB \(limit --max-archive-size\)/);
    const s = await scanArchive(Readable.from([gz]), { sink: hashSink, limits: { archiveSize: 4 << 20 } });
    expect(s.entries).toBe(1);
  });
});
