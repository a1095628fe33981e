/**
 * Loading from an archive FILE reads into a small ring of reused buffers: blobs much larger
 * than the ring must land on disk byte for byte, kept JSON must not be overwritten by later
 * reads, and hostile files fail as cleanly as hostile streams.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Store } from '../../../src/store';
import { importArchive } from '../../../src/archive/import';
import { scanArchive, BlobSink } from '../../../src/archive/reader';
import { sha256 } from '../../../src/digest';
import { tmpDir, rmrf } from '../../helpers/cli';
import { makeImage, makeLayer, ociImageArchive, blobEntry, tar, OCI_LAYOUT, Layer } from './import-fixtures';
import { MediaType } from '../../../src/images/mediatypes';

let dir: string;
let store: Store;
beforeEach(() => {
  dir = tmpDir('imgtool-import-file-');
  store = Store.open(path.join(dir, 'root'));
});
afterEach(() => {
  store.close();
  rmrf(dir);
});

function file(buf: Buffer): string {
  const p = path.join(dir, `in-${Math.random().toString(36).slice(2)}.tar`);
  fs.writeFileSync(p, buf);
  return p;
}

/** An uncompressed layer of `mib` MiB of random bytes, as one tar blob (bigger than the read ring). */
function bigLayer(mib: number): Layer {
  const data = crypto.randomBytes(mib * 1024 * 1024 + 333);
  const t = tar([{ name: 'big.bin', data }]);
  const digest = sha256(t);
  return { tar: t, blob: t, digest, diffId: digest, compression: 'none', desc: { mediaType: MediaType.OCI_LAYER, digest, size: t.length } };
}

function onDisk(digest: string): string {
  return sha256(fs.readFileSync(store.content.blobPath(digest)));
}

describe('importArchive from a file', () => {
  it('stores blobs far larger than the read buffers byte for byte, and keeps JSON intact', async () => {
    const img = makeImage({ layers: [bigLayer(19), makeLayer({ small: 'x' }, 'gzip'), bigLayer(13)] });
    const r = await importArchive(store, file(ociImageArchive(img, 'x.io/big:1')));
    expect(r.images.map((i) => i.names)).toEqual([['x.io/big:1']]);
    for (const d of [img.manifest.digest, img.config.digest, ...img.layers.map((l) => l.digest)]) expect(onDisk(d)).toBe(d);
    expect(await store.content.readJSON(img.manifest.digest)).toEqual(JSON.parse(img.manifest.bytes.toString()));
    // A slow sink that keeps every chunk until it calls `done` much later: the reader must
    // not read into a buffer while any target still holds part of it.
    const changed: string[] = [];
    const slowSink: BlobSink = {
      begin({ path: p }) {
        const h = crypto.createHash('sha256');
        let n = 0;
        const held: Array<{ chunk: Buffer; copy: Buffer }> = [];
        const later = (f: () => void, ms = 30) => setTimeout(f, ms);
        return {
          write(chunk, done) {
            h.update(chunk);
            n += chunk.length;
            const e = { chunk, copy: Buffer.from(chunk) };
            held.push(e);
            later(() => {
              if (!e.chunk.equals(e.copy)) changed.push(p);
              held.splice(held.indexOf(e), 1);
              done?.();
            });
            return true;
          },
          drained: async () => {},
          // Recorded (JSON kept) well after the buffers were read into again.
          finish: () => new Promise((resolve) => later(() => resolve({ digest: 'sha256:' + h.digest('hex'), size: n }), 300)),
          abort: async () => {},
        };
      },
    };
    const scan = await scanArchive(file(ociImageArchive(img, 'x.io/big:1')), { sink: slowSink });
    expect(changed).toEqual([]);
    expect([...scan.blobs.keys()].sort()).toEqual([img.manifest.digest, img.config.digest, ...img.layers.map((l) => l.digest)].sort());
    // JSON kept in memory from the reused buffers is the real bytes, not what was read later.
    expect(scan.json.get(img.manifest.digest)?.equals(img.manifest.bytes)).toBe(true);
    expect(scan.json.get(img.config.digest)?.equals(img.config.bytes)).toBe(true);
    expect(scan.docs.get('index.json') && sha256(scan.docs.get('index.json')!)).toBeTruthy();
  });

  async function refused(buf: Buffer, re: RegExp): Promise<void> {
    await expect(importArchive(store, file(buf))).rejects.toThrow(re);
    expect(store.images.list()).toEqual([]);
    const ingest = path.join(store.root, 'content', 'ingest');
    expect(fs.existsSync(ingest) ? fs.readdirSync(ingest) : []).toEqual([]);
  }

  it('hostile files: truncated deep inside a big blob, corrupt header after it, wrong digest', async () => {
    const layer = bigLayer(12);
    const img = makeImage({ layers: [layer] });
    const good = ociImageArchive(img, 'x.io/a:1');
    const at = good.indexOf(Buffer.from(`blobs/sha256/${layer.digest.slice(7)}`));
    await refused(good.subarray(0, at + 512 + 10 * 1024 * 1024 + 7), new RegExp(`is truncated: entry "blobs/sha256/${layer.digest.slice(7)}" declares ${layer.blob.length} bytes but the input ends after ${10 * 1024 * 1024 + 7}`));
    const corrupt = Buffer.from(good);
    const next = at + 512 + Math.ceil(layer.blob.length / 512) * 512;
    corrupt[next + 3] ^= 0xff;
    await refused(corrupt, new RegExp(`is corrupt: invalid tar header at offset ${next} after entry "blobs/sha256/${layer.digest.slice(7)}"`));
    const wrong = sha256('something else');
    await refused(tar([OCI_LAYOUT, blobEntry(layer.blob, wrong)]), new RegExp(`digest mismatch: expected ${wrong}, got ${layer.digest}`));
    expect(store.content.has(wrong)).toBe(false);
  });
});
