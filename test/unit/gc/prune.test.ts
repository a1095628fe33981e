import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, spawnSync, ChildProcess } from 'node:child_process';
import { Store, sha256, MediaType } from '../../../src';
import { processStartId, selfIdentity, tempOwnerTag } from '../../../src/leases/process';
import { prune } from '../../../src/gc';
import { tmpDir, rmrf, REPO } from '../../helpers/cli';
import { layer, makeImage, addSnapshots, addVariant, snapshotIds, variantIds, blobIds, fileExists } from './fixture';

function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(r.stdout.toString());
}

describe('prune', () => {
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

  it('keeps everything an image needs and removes unreferenced blobs; dry-run changes nothing', async () => {
    const img = await makeImage(store, 'docker.io/library/a:1', [layer('a1'), layer('a2')]);
    const junk = await store.content.ingestBuffer(Buffer.from('unreferenced'));
    const junk2 = layer('junk');
    await store.content.ingestBuffer(junk2.gz);
    store.variants.recordProof({ digest: junk2.digest, diffId: junk2.diffId, compression: 'gzip', size: junk2.gz.length });

    const before = { blobs: blobIds(store), variants: variantIds(store) };
    const dry = prune(store, { dryRun: true });
    expect(dry.dryRun).toBe(true);
    expect(dry.blobs.map((b) => b.digest).sort()).toEqual([junk.digest, junk2.digest].sort());
    expect(dry.variants).toEqual([junk2.digest]);
    expect(dry.bytesFreed).toBe(junk.size + junk2.gz.length);
    expect(blobIds(store)).toEqual(before.blobs);
    expect(variantIds(store)).toEqual(before.variants);
    expect(fileExists(store, junk.digest)).toBe(true);

    const res = prune(store);
    expect(res.blobs.map((b) => b.digest).sort()).toEqual([junk.digest, junk2.digest].sort());
    expect(res.bytesFreed).toBe(dry.bytesFreed);
    expect(fileExists(store, junk.digest)).toBe(false);
    expect(store.content.has(junk.digest)).toBe(false);
    for (const d of [img.manifest, img.config, ...img.layers.map((l) => l.digest)]) {
      expect(store.content.has(d)).toBe(true);
      expect(fileExists(store, d)).toBe(true);
    }
    expect(variantIds(store).sort()).toEqual(img.layers.map((l) => l.digest).sort());
    // Idempotent.
    const again = prune(store);
    expect(again.blobs).toEqual([]);
    expect(again.bytesFreed).toBe(0);
  });

  it('walks indexes: every platform manifest, config and layer is kept', async () => {
    const a = await makeImage(store, 'tmp/a:1', [layer('p1')]);
    const b = await makeImage(store, 'tmp/b:1', [layer('p2')]);
    const idx = Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: MediaType.OCI_INDEX,
      manifests: [
        { mediaType: MediaType.OCI_MANIFEST, digest: a.manifest, size: store.content.info(a.manifest)!.size, platform: { os: 'linux', architecture: 'amd64' } },
        { mediaType: MediaType.OCI_MANIFEST, digest: b.manifest, size: store.content.info(b.manifest)!.size, platform: { os: 'linux', architecture: 'arm64' } },
        { mediaType: MediaType.OCI_MANIFEST, digest: sha256('absent platform'), size: 10, platform: { os: 'linux', architecture: 's390x' } },
      ],
    }));
    const ix = await store.content.ingestBuffer(idx);
    store.images.put('docker.io/library/multi:1', { mediaType: MediaType.OCI_INDEX, digest: ix.digest, size: idx.length });
    store.images.delete('tmp/a:1');
    store.images.delete('tmp/b:1');
    const res = prune(store);
    expect(res.blobs).toEqual([]);
    expect(blobIds(store)).toHaveLength(7);
  });

  it('removes other variants of an image\'s layers (a cache) unless a lease holds them', async () => {
    const l1 = layer('v1');
    const l2 = layer('v2');
    const img = await makeImage(store, 'x/y:1', [l1, l2]);
    const z1 = await addVariant(store, l1);
    const lease = store.leases.create({ id: 'keep-zstd' });
    const z2 = await addVariant(store, l2, 'zstd', lease);
    const res = prune(store);
    expect(res.blobs.map((b) => b.digest)).toEqual([z1]);
    expect(res.variants).toEqual([z1]); // no snapshot can rebuild it: the row goes too
    expect(store.content.has(z2)).toBe(true);
    expect(store.variants.get(z2)).toBeDefined();
    expect(store.content.has(img.layers[0].digest)).toBe(true);
  });

  it('keeps the variant row of a cache variant while a retained snapshot can rebuild it', async () => {
    const l1 = layer('r1');
    await makeImage(store, 'x/r:1', [l1]);
    addSnapshots(store, [l1]);
    const z1 = await addVariant(store, l1);
    const res = prune(store);
    expect(res.blobs.map((b) => b.digest)).toEqual([z1]);
    expect(res.variants).toEqual([]);
    expect(store.variants.get(z1)).toBeDefined();
    expect(store.content.has(z1)).toBe(false);
  });

  it('keeps a discarded layer\'s variant row and its snapshot chain while the image is retained', async () => {
    const ls = [layer('d1'), layer('d2'), layer('d3')];
    const img = await makeImage(store, 'x/d:1', ls);
    const chains = addSnapshots(store, ls);
    // --discard-layers: layer 2's blob is gone, rebuildable from its snapshot.
    store.meta.write(() => store.content.deleteLocked(ls[1].digest));
    const res = prune(store);
    expect(res.snapshots).toEqual([]);
    expect(res.variants).toEqual([]);
    expect(snapshotIds(store).sort()).toEqual([...chains].sort());
    expect(store.variants.get(img.layers[1].digest)).toBeDefined();
  });

  it('leased top snapshot whose image was removed: keeps every parent snapshot and their blobs, also a variant recorded later', async () => {
    const ls = [layer('s1'), layer('s2'), layer('s3')];
    const img = await makeImage(store, 'x/leased:1', ls);
    const chains = addSnapshots(store, ls);
    const other = [layer('o1')];
    await makeImage(store, 'x/other:1', other);
    const otherChains = addSnapshots(store, other);
    const lease = store.leases.create({ id: 'top' });
    lease.attach('snapshot', chains[2]);
    // A variant computed after the lease was created, for a middle layer.
    const late = await addVariant(store, ls[1]);
    store.images.delete('x/leased:1');
    store.images.delete('x/other:1');

    const res = prune(store);
    expect(snapshotIds(store).sort()).toEqual([...chains].sort());
    expect(res.snapshots.map((s) => s.chainId)).toEqual(otherChains);
    for (const l of ls) expect(store.content.has(l.digest)).toBe(true);
    expect(store.content.has(late)).toBe(true);
    expect(store.variants.get(late)).toBeDefined();
    // Manifest and config are not part of the snapshot chain: they go.
    expect(store.content.has(img.manifest)).toBe(false);
    expect(store.content.has(img.config)).toBe(false);
    expect(store.content.has(other[0].digest)).toBe(false);
    expect(fs.existsSync(path.join(dir, 'snapshots', otherChains[0].slice(7)))).toBe(false);
    for (const c of chains) expect(fs.existsSync(path.join(dir, 'snapshots', c.slice(7)))).toBe(true);

    // After the lease goes, so does everything.
    store.leases.remove('top');
    const res2 = prune(store);
    expect(res2.snapshots).toHaveLength(3);
    expect(snapshotIds(store)).toEqual([]);
    expect(blobIds(store)).toEqual([]);
    expect(variantIds(store)).toEqual([]);
    expect(fs.readdirSync(path.join(dir, 'content', 'blobs', 'sha256'))).toEqual([]);
  });

  it('--all drops snapshots only images hold, except the only remaining source of a retained layer (with its parents)', async () => {
    const ls = [layer('all1'), layer('all2'), layer('all3')];
    await makeImage(store, 'x/all:1', ls);
    const chains = addSnapshots(store, ls);
    const keep = [layer('k1')];
    await makeImage(store, 'x/kept:1', keep);
    const keepChains = addSnapshots(store, keep);
    const leased = store.leases.create({ id: 'snap' });
    leased.attach('snapshot', keepChains[0]);

    // Plain prune keeps image snapshots.
    expect(prune(store, { all: false }).snapshots).toEqual([]);

    // Layer 2 discarded: its snapshot (and its parent) is the only source.
    store.meta.write(() => store.content.deleteLocked(ls[1].digest));
    // Layer 3 discarded but another variant survives (held by the image? no: by a lease).
    const z3 = await addVariant(store, ls[2], 'zstd', leased);
    store.meta.write(() => store.content.deleteLocked(ls[2].digest));

    const dry = prune(store, { all: true, dryRun: true });
    expect(dry.snapshots.map((s) => s.chainId)).toEqual([chains[2]]);
    const res = prune(store, { all: true });
    expect(res.snapshots.map((s) => s.chainId)).toEqual([chains[2]]);
    expect(snapshotIds(store).sort()).toEqual([chains[0], chains[1], keepChains[0]].sort());
    expect(store.content.has(z3)).toBe(true);

    // Once layer 2's blob is back, its snapshot is no longer needed.
    await store.content.ingestBuffer(ls[1].gz);
    const res2 = prune(store, { all: true });
    expect(res2.snapshots.map((s) => s.chainId).sort()).toEqual([chains[0], chains[1]].sort());
    expect(snapshotIds(store)).toEqual(keepChains);
  });

  it('keeps one rebuildable snapshot (and its parents) for a retained layer whose blobs are all absent, even in another image\'s chain', async () => {
    const p = layer('rb-p');
    const s = layer('rb-s');
    // X = [P, S] was unpacked; its name is gone. Y = [S] keeps only a content-only
    // reference to S, whose blob (and every variant) is absent.
    await makeImage(store, 'x/x:1', [p, s]);
    const xChains = addSnapshots(store, [p, s]);
    const y = await makeImage(store, 'x/y:1', [s]);
    store.images.delete('x/x:1');
    store.meta.write(() => store.content.deleteLocked(s.digest));
    const z = await addVariant(store, s, 'zstd'); // a cache variant nothing retains: it goes
    expect(y.chains[0]).not.toBe(xChains[1]);

    for (const all of [false, true]) {
      const res = prune(store, { all });
      expect(res.snapshots).toEqual([]);
      expect(snapshotIds(store).sort()).toEqual([...xChains].sort());
      expect(store.content.has(z)).toBe(false);
      expect(store.variants.get(s.digest)).toBeDefined();
    }
    // A non-reproducible snapshot cannot rebuild: it does not count.
    store.meta.db.prepare('UPDATE snapshots SET reproducible = 0 WHERE chain_id = ?').run(xChains[1]);
    expect(prune(store).snapshots.map((x) => x.chainId).sort()).toEqual([...xChains].sort());
  });

  it('--all keeps the image\'s own chain when it is a rebuildable source, and no second copy from another chain', async () => {
    const p = layer('own-p');
    const q = layer('own-q');
    const s = layer('own-s');
    await makeImage(store, 'x/one:1', [p, s]);
    const oneChains = addSnapshots(store, [p, s]);
    await makeImage(store, 'x/two:1', [q, s]);
    const twoChains = addSnapshots(store, [q, s]);
    store.meta.write(() => store.content.deleteLocked(s.digest));
    store.images.delete('x/one:1');
    const res = prune(store, { all: true });
    expect(res.snapshots.map((x) => x.chainId).sort()).toEqual([...oneChains].sort());
    expect(snapshotIds(store).sort()).toEqual([...twoChains].sort());
  });

  it('a lease on an image name retains its closure; a leased manifest retains its children', async () => {
    const img = await makeImage(store, 'x/named:1', [layer('n1')]);
    const img2 = await makeImage(store, 'x/man:1', [layer('m1')]);
    store.leases.create({ id: 'by-name' }).attach('image', 'x/named:1');
    store.leases.create({ id: 'by-manifest' }).attach('content', img2.manifest);
    store.images.delete('x/man:1');
    expect(prune(store).blobs).toEqual([]);
    expect(store.content.has(img2.layers[0].digest)).toBe(true);
    expect(store.content.has(img2.config)).toBe(true);
    // A lease holding a name that no longer exists holds nothing.
    store.images.delete('x/named:1');
    store.leases.remove('by-manifest');
    const res = prune(store);
    expect(res.blobs.map((b) => b.digest).sort()).toEqual([img.manifest, img.config, img.layers[0].digest, img2.manifest, img2.config, img2.layers[0].digest].sort());
  });

  it('clears expired user leases and leases of dead processes (also a reused PID), and what only they held', async () => {
    const a = await store.content.ingestBuffer(Buffer.from('held by expired'));
    const b = await store.content.ingestBuffer(Buffer.from('held by dead process'));
    const c = await store.content.ingestBuffer(Buffer.from('held by reused pid'));
    const d = await store.content.ingestBuffer(Buffer.from('held by live user lease'));
    // it took its resource while live, then expired (an attach after expiry is refused)
    store.leases.create({ id: 'expired', expiresInMs: 60_000 }).attach('content', a.digest);
    store.meta.db.prepare("UPDATE leases SET expires_at = ? WHERE id = 'expired'").run(Date.now() - 1);
    const ins = store.meta.db.prepare('INSERT INTO leases (id, labels, created_at, expires_at, pid, pid_start) VALUES (?, NULL, ?, NULL, ?, ?)');
    const [boot, ticks, ns] = processStartId(process.pid)!.split(':');
    ins.run('dead-proc', Date.now(), deadPid(), `${boot}:${ticks}:${ns}`);
    store.leases.create({ id: 'tmp' });
    store.meta.db.prepare("INSERT INTO lease_resources VALUES ('dead-proc', 'content', ?)").run(b.digest);
    ins.run('reused-pid', Date.now(), process.pid, `${boot}:${Number(ticks) - 1}:${ns}`);
    store.meta.db.prepare("INSERT INTO lease_resources VALUES ('reused-pid', 'content', ?)").run(c.digest);
    store.leases.create({ id: 'live', expiresInMs: 3_600_000 }).attach('content', d.digest);
    await new Promise((r) => setTimeout(r, 5));

    const res = prune(store);
    expect(res.leases.sort()).toEqual(['dead-proc', 'expired', 'reused-pid']);
    expect(res.blobs.map((x) => x.digest).sort()).toEqual([a.digest, b.digest, c.digest].sort());
    expect(store.leases.list().map((l) => l.id).sort()).toEqual(['live', 'tmp']);
    expect(store.content.has(d.digest)).toBe(true);
  });

  it('removes abandoned temp files of dead processes, keeps those of live ones, and files without rows', async () => {
    const ingest = path.join(dir, 'content', 'ingest');
    fs.mkdirSync(ingest, { recursive: true });
    const deadTag = tempOwnerTag({ ...selfIdentity(), pid: deadPid() });
    const dead = path.join(ingest, `${deadTag}-abandoned`);
    const mine = path.join(ingest, `${tempOwnerTag()}-inflight`);
    fs.writeFileSync(dead, Buffer.alloc(100));
    fs.writeFileSync(mine, Buffer.alloc(50));
    const snapTmp = path.join(dir, 'snapshots', 'tmp', `${deadTag}-extract`);
    fs.mkdirSync(snapTmp, { recursive: true });
    fs.writeFileSync(path.join(snapTmp, 'f'), Buffer.alloc(30));
    // A blob file at its final path with no row (a crash between rename and commit).
    const stray = Buffer.from('stray');
    fs.mkdirSync(path.join(dir, 'content', 'blobs', 'sha256'), { recursive: true });
    fs.writeFileSync(store.content.blobPath(sha256(stray)), stray);

    // A snapshot directory without a row (a crash between rename and commit); other entries are not ours.
    const strayDir = path.join(dir, 'snapshots', 'e'.repeat(64));
    fs.mkdirSync(path.join(strayDir, 'fs'), { recursive: true });
    fs.writeFileSync(path.join(strayDir, 'fs', 'x'), Buffer.alloc(7));
    fs.writeFileSync(path.join(dir, 'snapshots', 'NOTES'), 'not a snapshot');

    const res = prune(store);
    expect(res.tempFiles.map((t) => t.path).sort()).toEqual([dead, snapTmp, strayDir].sort());
    expect(res.blobs).toEqual([{ digest: sha256(stray), size: 5 }]);
    expect(res.bytesFreed).toBe(142);
    expect(fs.existsSync(strayDir)).toBe(false);
    expect(fs.existsSync(path.join(dir, 'snapshots', 'NOTES'))).toBe(true);
    expect(fs.readdirSync(path.join(dir, 'snapshots', 'tmp'))).toEqual([]);
    expect(fs.existsSync(dead)).toBe(false);
    expect(fs.existsSync(snapTmp)).toBe(false);
    expect(fs.existsSync(mine)).toBe(true);
    expect(fileExists(store, sha256(stray))).toBe(false);
  });

  it('refuses to sweep when a retained document is corrupt, and removes nothing', async () => {
    const img = await makeImage(store, 'x/bad:1', [layer('b1')]);
    const junk = await store.content.ingestBuffer(Buffer.from('junk'));
    fs.chmodSync(store.content.blobPath(img.manifest), 0o644);
    fs.writeFileSync(store.content.blobPath(img.manifest), '{"not":"it"}');
    expect(() => prune(store)).toThrow(/image x\/bad:1: stored sha256:[a-f0-9]{64} is corrupt.*fsck/);
    expect(store.content.has(junk.digest)).toBe(true);
    expect(store.content.has(img.layers[0].digest)).toBe(true);
  });

  describe('with another process holding a process lease', () => {
    let child: ChildProcess | undefined;
    afterEach(() => {
      if (child && child.exitCode === null) child.kill('SIGKILL');
    });

    function startChild(): Promise<{ digest: string; tmp: string }> {
      const script = `
        const { Store } = require(${JSON.stringify(path.join(REPO, 'dist', 'src'))});
        const { acquireProcessLease, tempOwnerTag } = require(${JSON.stringify(path.join(REPO, 'dist', 'src', 'leases'))});
        const fs = require('fs');
        (async () => {
          const s = Store.open(${JSON.stringify(dir)});
          const lease = acquireProcessLease(s);
          const info = await s.content.ingestBuffer(Buffer.from('in flight ' + process.pid), { lease });
          const w = s.content.writer({ lease });
          await new Promise((r) => w.write(Buffer.from('half of a blob'), r));
          const tmp = fs.readdirSync(s.content.ingestDir).find((n) => n.startsWith(tempOwnerTag() + '-'));
          process.stdout.write(JSON.stringify({ digest: info.digest, tmp }) + '\\n');
          setInterval(() => {}, 1000);
        })().catch((e) => { console.error(e); process.exit(2); });
      `;
      child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      return new Promise((resolve, reject) => {
        let buf = '';
        child!.stdout!.on('data', (d) => {
          buf += d;
          if (buf.includes('\n')) resolve(JSON.parse(buf));
        });
        child!.on('exit', (code) => reject(new Error(`child exited ${code}`)));
      });
    }

    it('protects its committed and in-flight blobs until it dies, then prune clears its lease', async () => {
      const { digest, tmp } = await startChild();
      const tmpPath = path.join(store.content.ingestDir, tmp);
      expect(store.leases.list().filter((l) => l.type === 'process')).toHaveLength(1);
      const res = prune(store);
      expect(res.blobs).toEqual([]);
      expect(res.leases).toEqual([]);
      expect(res.tempFiles).toEqual([]);
      expect(store.content.has(digest)).toBe(true);
      expect(fs.existsSync(tmpPath)).toBe(true);

      const exited = new Promise((r) => child!.once('exit', r));
      child!.kill('SIGKILL');
      await exited;
      const res2 = prune(store);
      expect(res2.leases).toHaveLength(1);
      expect(res2.blobs.map((b) => b.digest)).toEqual([digest]);
      // Its in-flight temp file and the heartbeat file of its lease.
      expect(res2.tempFiles.map((t) => t.path)).toEqual([tmpPath, path.join(dir, 'leases', res2.leases[0])]);
      expect(fs.readdirSync(path.join(dir, 'leases'))).toEqual([]);
      expect(store.leases.list()).toEqual([]);
    });
  });
});
