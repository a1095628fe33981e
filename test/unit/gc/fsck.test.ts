import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Store, sha256 } from '../../../src';
import { selfIdentity, tempOwnerTag } from '../../../src/leases/process';
import { fsck } from '../../../src/gc';
import { tmpDir, rmrf } from '../../helpers/cli';
import { layer, makeImage, addSnapshots, addVariant, snapshotIds, fileExists } from './fixture';

function overwrite(p: string, data: string | Buffer): void {
  fs.chmodSync(p, 0o644);
  fs.writeFileSync(p, data);
}

describe('fsck', () => {
  let dir: string;
  let store: Store;
  beforeEach(() => {
    dir = tmpDir();
    store = Store.open(dir);
  });
  afterEach(() => {
    store.close();
    rmrf(dir);
  });

  it('reports a healthy store as ok, including an image whose discarded layer a snapshot can rebuild', async () => {
    const ls = [layer('h1'), layer('h2')];
    await makeImage(store, 'x/h:1', ls);
    addSnapshots(store, ls);
    store.meta.write(() => store.content.deleteLocked(ls[0].digest));
    const r = await fsck(store);
    expect(r.problems).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.blobs).toBe(3);
    expect(r.images).toBe(1);
    expect(r.snapshots).toBe(2);
  });

  it('finds a corrupt blob and a blob whose file is missing; repair drops them and reports the image as unrecoverable', async () => {
    const ls = [layer('c1'), layer('c2')];
    const img = await makeImage(store, 'x/c:1', ls);
    overwrite(store.content.blobPath(ls[0].digest), 'garbage');
    fs.rmSync(store.content.blobPath(ls[1].digest));
    const r = await fsck(store);
    expect(r.ok).toBe(false);
    const kinds = r.problems.map((p) => `${p.kind} ${p.subject}`).sort();
    expect(kinds).toEqual([`blob-corrupt ${ls[0].digest}`, `blob-missing ${ls[1].digest}`].sort());
    expect(r.problems.find((p) => p.kind === 'blob-corrupt')!.message).toMatch(/size mismatch/);

    const rr = await fsck(store, { repair: true });
    expect(rr.ok).toBe(false);
    expect(rr.problems.filter((p) => p.kind.startsWith('blob-')).every((p) => p.repaired && p.unrecoverable)).toBe(true);
    const inc = rr.problems.find((p) => p.kind === 'image-incomplete')!;
    expect(inc.subject).toBe('x/c:1');
    expect(inc.message).toContain(ls[0].digest);
    expect(inc.message).toContain(ls[1].digest);
    expect(store.content.has(ls[0].digest)).toBe(false);
    expect(store.content.has(img.manifest)).toBe(true);
    // Only the image damage remains.
    const r3 = await fsck(store);
    expect(r3.problems.map((p) => p.kind)).toEqual(['image-incomplete']);
  });

  it('repair quarantines a same-size corrupt blob: file kept aside, its blob/label/variant rows forgotten; an ingest restores it', async () => {
    const ls = [layer('q1')];
    await makeImage(store, 'x/q:1', ls);
    const zst = await addVariant(store, ls[0]);
    store.variants.recordProof({ digest: ls[0].digest, diffId: ls[0].diffId, compression: 'gzip', size: ls[0].gz.length });
    const p = store.content.blobPath(ls[0].digest);
    const bad = Buffer.from(ls[0].gz);
    bad[bad.length >> 1] ^= 0x01;
    overwrite(p, bad);
    const rr = await fsck(store, { repair: true });
    const pr = rr.problems.find((x) => x.kind === 'blob-corrupt')!;
    expect(pr.subject).toBe(ls[0].digest);
    expect(pr.message).toMatch(/digest mismatch/);
    expect(pr.repaired).toMatch(/quarantined to .*quarantine/);
    expect(fs.existsSync(p)).toBe(false);
    const q = path.join(dir, 'content', 'quarantine');
    const kept = fs.readdirSync(q);
    expect(kept).toHaveLength(1);
    expect(fs.readFileSync(path.join(q, kept[0])).equals(bad)).toBe(true);
    expect(store.content.has(ls[0].digest)).toBe(false);
    expect(store.content.labels(ls[0].digest)).toEqual({});
    expect(store.variants.get(ls[0].digest)).toBeUndefined();
    expect(store.variants.get(zst)).toBeDefined(); // another variant of the layer is untouched
    // The zstd variant still rebuilds the layer: no image damage.
    expect(rr.problems.map((x) => x.kind)).toEqual(['blob-corrupt']);
    expect((await fsck(store)).problems).toEqual([]);
    await store.content.ingestBuffer(ls[0].gz, { digest: ls[0].digest, size: ls[0].gz.length });
    expect(fs.readFileSync(p).equals(ls[0].gz)).toBe(true);
    expect((await fsck(store)).problems).toEqual([]);
  });

  it('detects a digest mismatch with the right size', async () => {
    const data = Buffer.from('right size');
    const info = await store.content.ingestBuffer(data);
    overwrite(store.content.blobPath(info.digest), 'wrong size');
    const r = await fsck(store);
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0].message).toMatch(/digest mismatch: file hashes to sha256:/);
  });

  it('a layer absent with another variant present is rebuildable; absent with nothing is not', async () => {
    const ls = [layer('v1'), layer('v2')];
    await makeImage(store, 'x/v:1', ls);
    await addVariant(store, ls[0]);
    store.meta.write(() => {
      store.content.deleteLocked(ls[0].digest);
      store.content.deleteLocked(ls[1].digest);
    });
    const r = await fsck(store);
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0].kind).toBe('image-incomplete');
    expect(r.problems[0].message).toContain(ls[1].digest);
    expect(r.problems[0].message).not.toContain(ls[0].digest);
  });

  it('orphans: blob files without rows (removed, or registered when referenced), abandoned temp files; repair cleans them', async () => {
    const img = await makeImage(store, 'x/o:1', [layer('o1')]);
    // A referenced blob whose row is lost: registered by repair.
    store.meta.db.prepare('DELETE FROM blobs WHERE digest = ?').run(img.config);
    const stray = Buffer.from('stray');
    fs.writeFileSync(store.content.blobPath(sha256(stray)), stray);
    const deadPid = Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString());
    const tmp = path.join(store.content.ingestDir, `${tempOwnerTag({ ...selfIdentity(), pid: deadPid })}-x`);
    fs.writeFileSync(tmp, 'partial');
    const r = await fsck(store);
    expect(r.ok).toBe(false); // the image's config row is missing: closure incomplete
    expect(r.problems.filter((p) => p.severity === 'orphan').map((p) => p.kind).sort()).toEqual(['blob-unindexed', 'blob-unindexed', 'temp']);

    const rr = await fsck(store, { repair: true });
    expect(rr.problems.find((p) => p.subject === img.config)!.repaired).toMatch(/registered/);
    expect(rr.problems.find((p) => p.subject === sha256(stray))!.repaired).toBe('removed');
    expect(rr.ok).toBe(true);
    expect(store.content.has(img.config)).toBe(true);
    expect(fileExists(store, sha256(stray))).toBe(false);
    expect(fs.existsSync(tmp)).toBe(false);
    expect((await fsck(store)).problems).toEqual([]);
  });

  it('snapshots: missing directory, broken parent chain (with descendants), directories without rows', async () => {
    const ls = [layer('s1'), layer('s2'), layer('s3')];
    await makeImage(store, 'x/s:1', ls);
    const chains = addSnapshots(store, ls);
    fs.rmSync(path.join(dir, 'snapshots', chains[0].slice(7)), { recursive: true });
    fs.mkdirSync(path.join(dir, 'snapshots', 'f'.repeat(64)));
    const r = await fsck(store);
    const got = r.problems.map((p) => `${p.severity} ${p.kind} ${p.subject.slice(-8)}`).sort();
    expect(got).toEqual([
      `error snapshot-broken-chain ${chains[1].slice(-8)}`,
      `error snapshot-broken-chain ${chains[2].slice(-8)}`,
      `error snapshot-missing ${chains[0].slice(-8)}`,
      `orphan snapshot-unindexed ${'f'.repeat(8)}`,
    ].sort());
    const rr = await fsck(store, { repair: true });
    expect(rr.problems.filter((p) => p.kind.startsWith('snapshot')).every((p) => p.repaired)).toBe(true);
    expect(snapshotIds(store)).toEqual([]);
    expect(fs.readdirSync(path.join(dir, 'snapshots')).filter((n) => n !== 'tmp')).toEqual([]);
    expect((await fsck(store)).problems).toEqual([]);
  });

  it('a snapshot directory missing its index or tar-split record is incomplete', async () => {
    const ls = [layer('i1')];
    const chains = addSnapshots(store, ls);
    fs.rmSync(path.join(dir, 'snapshots', chains[0].slice(7), 'tarsplit.gz'));
    const r = await fsck(store);
    expect(r.problems.map((p) => p.kind)).toEqual(['snapshot-incomplete']);
    expect(r.problems[0].message).toMatch(/missing tarsplit\.gz/);
  });

  it('a chainID that does not match parent + diffID is an error', async () => {
    const ls = [layer('w1'), layer('w2')];
    addSnapshots(store, ls);
    store.meta.db.prepare('UPDATE snapshots SET diff_id = ? WHERE parent IS NOT NULL').run(sha256('other'));
    const r = await fsck(store);
    expect(r.problems.map((p) => p.kind)).toEqual(['snapshot-broken-chain']);
    expect(r.problems[0].message).toMatch(/chainID does not match/);
  });
});
