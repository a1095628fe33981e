/**
 * Migration 2 (issue 10 item 1): a store written before variant rows were proofs holds rows
 * that may come from an archive's config. Opening it with this imgtool moves every such row to
 * `variant_claims` (unproven); fsck (or first use) proves the true ones and reports the false.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { MIGRATIONS } from '../../../src/metadata/schema';
import { Store } from '../../../src/store';
import { fsck } from '../../../src/gc';
import { compressBufferSync } from '../../../src/compression/codecs';
import { sha256 } from '../../../src/digest';
import { tmpDir, rmrf } from '../../helpers/cli';

describe('migration 2: variant rows become claims', () => {
  let dir: string;
  beforeEach(() => { dir = tmpDir('imgtool-mig-'); });
  afterEach(() => rmrf(dir));

  it('moves old rows to variant_claims; fsck proves the true claim and reports the false one', async () => {
    // A version-1 store with two blobs: one honest gzip layer, one zstd blob claiming its diffID.
    const good = Buffer.from('good layer bytes '.repeat(200));
    const evil = Buffer.from('attacker bytes '.repeat(200));
    const gz = compressBufferSync('gzip', good);
    const zs = compressBufferSync('zstd', evil);
    const diffId = sha256(good);
    fs.mkdirSync(path.join(dir, 'content', 'blobs', 'sha256'), { recursive: true });
    const db = new Database(path.join(dir, 'metadata.db'));
    db.exec('CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (1);');
    db.exec(MIGRATIONS[0]);
    for (const b of [gz, zs]) {
      const d = sha256(b);
      db.prepare('INSERT INTO blobs (digest, size, created_at) VALUES (?, ?, 0)').run(d, b.length);
      db.prepare("INSERT INTO content_labels (digest, key, value) VALUES (?, 'containerd.io/uncompressed', ?)").run(d, diffId);
    }
    db.prepare("INSERT INTO variants (digest, diff_id, compression, size, created_at) VALUES (?, ?, 'gzip', ?, 0)").run(sha256(gz), diffId, gz.length);
    db.prepare("INSERT INTO variants (digest, diff_id, compression, size, created_at) VALUES (?, ?, 'zstd', ?, 0)").run(sha256(zs), diffId, zs.length);
    db.close();

    const store = Store.open(dir);
    try {
      // Where does this store keep blob files? Put them there.
      for (const b of [gz, zs]) fs.writeFileSync(store.content.blobPath(sha256(b)), b);
      expect(store.meta.schemaVersion).toBe(MIGRATIONS.length);
      expect(store.variants.list()).toEqual([]);
      expect(store.variants.claimsFor(diffId).map((c) => c.digest).sort()).toEqual([sha256(gz), sha256(zs)].sort());
      expect(store.content.labels(sha256(zs))).toEqual({}); // labels were claims too

      const r = await fsck(store);
      const bad = r.problems.filter((p) => p.kind === 'layer-mismatch');
      expect(bad.map((p) => p.subject)).toEqual([sha256(zs)]);
      expect(bad[0].message).toMatch(new RegExp(`decompresses to ${sha256(evil)}, not ${diffId}`));
      // The true claim is now a proof; the false one stays a claim until --repair drops it.
      expect(store.variants.get(sha256(gz))).toMatchObject({ diffId, compression: 'gzip' });
      expect(store.variants.get(sha256(zs))).toBeUndefined();
      const rr = await fsck(store, { repair: true });
      expect(rr.problems.find((p) => p.kind === 'layer-mismatch')?.repaired).toMatch(/false claim removed/);
      expect(store.variants.claimsFor(diffId)).toEqual([]);
      expect((await fsck(store)).ok).toBe(true);
    } finally {
      store.close();
    }
  });
});
