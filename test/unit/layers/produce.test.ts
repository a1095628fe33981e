import * as fs from 'node:fs';
import { Readable } from 'node:stream';
import { ensureLayer } from '../../../src/layers';
import { codecVersion, compressBufferSync } from '../../../src/compression/codecs';
import { MissingContentError } from '../../../src/errors';
import { WORKER_MIN_BYTES } from '../../../src/compression/transcode';
import { Label } from '../../../src/images/types';
import { Progress } from '../../../src/progress';
import { Env, env, entries } from '../compression/fixture';

interface Rec { warnings: string[]; tasks: string[] }
function recorder(): Progress & Rec {
  const r: Rec = { warnings: [], tasks: [] };
  return { ...r, warn: (m) => r.warnings.push(m), task: (l) => { r.tasks.push(l); return { update() {}, finish() {} }; }, get warnings() { return r.warnings; }, get tasks() { return r.tasks; } } as Progress & Rec;
}

function holder() {
  const attached: string[] = [];
  return { attached, attach: (_k: string, ref: string) => { attached.push(ref); } };
}

/** A layer's uncompressed tar (built by the builder), and helpers to put variants of it in a store. */
async function tarOf(e: Env, seed: number, size?: number): Promise<{ tar: Buffer; diffId: string }> {
  const l = await e.b.layer(entries(seed, size), { compression: 'none' });
  return { tar: fs.readFileSync(e.b.blobs.path(l.digest)), diffId: l.diffId };
}

async function putVariant(e: Env, diffId: string, bytes: Buffer, compression: 'gzip' | 'zstd' | 'none', extra: { level?: number; codecVersion?: string; mediaType?: string; record?: boolean } = {}) {
  const info = await e.store.content.ingestBuffer(bytes);
  if (extra.record !== false) e.store.variants.recordProof({ digest: info.digest, diffId, compression, size: info.size, level: extra.level, codecVersion: extra.codecVersion, mediaType: extra.mediaType });
  return info.digest;
}

describe('ensureLayer', () => {
  let e: Env;
  beforeEach(() => { e = env(); });
  afterEach(() => e.cleanup());

  it('reuses a present variant of the wanted compression', async () => {
    const { tar, diffId } = await tarOf(e, 1);
    const gz = await putVariant(e, diffId, compressBufferSync('gzip', tar), 'gzip');
    const before = e.store.content.list().length;
    const r = await ensureLayer(e.store, diffId, { compression: 'gzip' });
    expect(r).toMatchObject({ digest: gz, source: 'existing', compression: 'gzip', diffId });
    expect(e.store.content.list().length).toBe(before);
  });

  it('converts gzip -> zstd -> none -> gzip keeping the diffID, records variants, and is deterministic', async () => {
    const { tar, diffId } = await tarOf(e, 2, 256 * 1024);
    const gz = await putVariant(e, diffId, compressBufferSync('gzip', tar, 1), 'gzip'); // level 1: made by "another tool"
    const z = await ensureLayer(e.store, diffId, { compression: 'zstd', mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd' });
    expect(z).toMatchObject({ source: 'converted', from: gz, compression: 'zstd', level: 3, codecVersion: codecVersion('zstd') });
    expect(z.digest).toBe('sha256:' + require('crypto').createHash('sha256').update(compressBufferSync('zstd', tar)).digest('hex'));
    const row = e.store.variants.get(z.digest)!;
    expect(row).toMatchObject({ diffId, compression: 'zstd', level: 3, codecVersion: codecVersion('zstd'), mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd' });
    expect(e.store.content.labels(z.digest)[Label.UNCOMPRESSED]).toBe(diffId);

    // zstd is now the preferred source (cheaper to decode than gzip)
    const n = await ensureLayer(e.store, diffId, { compression: 'none' });
    expect(n).toMatchObject({ digest: diffId, source: 'converted', from: z.digest, compression: 'none' });
    expect(e.store.variants.get(diffId)!.compression).toBe('none');

    // uncompressed is now the preferred source; a gzip at level 6 is new (the level-1 blob is reused only without a level)
    expect((await ensureLayer(e.store, diffId, { compression: 'gzip' })).digest).toBe(gz);
    const g6 = await ensureLayer(e.store, diffId, { compression: 'gzip', level: 6 });
    expect(g6).toMatchObject({ source: 'converted', from: diffId, level: 6 });
    expect(g6.digest).not.toBe(gz);

    // the same in a fresh store, converting from another source, gives the same digests
    const e2 = env();
    try {
      await putVariant(e2, diffId, compressBufferSync('zstd', tar, 9), 'zstd');
      const g = await ensureLayer(e2.store, diffId, { compression: 'gzip', level: 6 });
      expect(g.digest).toBe(g6.digest);
      const z2 = await ensureLayer(e2.store, diffId, { compression: 'zstd', deterministic: true });
      expect(z2.digest).toBe(z.digest);
    } finally {
      e2.cleanup();
    }
  });

  it('with deterministic, reuses only variants whose level and codec version match', async () => {
    const { tar, diffId } = await tarOf(e, 3);
    const foreign = await putVariant(e, diffId, compressBufferSync('gzip', tar, 9), 'gzip'); // unknown level/codec
    const stale = await putVariant(e, diffId, compressBufferSync('gzip', tar, 5), 'gzip', { level: 6, codecVersion: 'zlib-0.0.0+000000000000' });
    expect([foreign, stale]).toContain((await ensureLayer(e.store, diffId, { compression: 'gzip' })).digest);
    const d = await ensureLayer(e.store, diffId, { compression: 'gzip', deterministic: true });
    expect(d.source).toBe('converted');
    expect(d.digest).not.toBe(foreign);
    expect(d.digest).not.toBe(stale);
    expect(d).toMatchObject({ level: 6, codecVersion: codecVersion('gzip') });
    const again = await ensureLayer(e.store, diffId, { compression: 'gzip', deterministic: true });
    expect(again).toMatchObject({ digest: d.digest, source: 'existing' });
  });

  it('skips a variant that does not decode to the diffID, warns, records nothing for it', async () => {
    const a = await tarOf(e, 4);
    const b = await tarOf(e, 5);
    const wrongZ = await putVariant(e, a.diffId, compressBufferSync('zstd', b.tar), 'zstd'); // lies about its diffID
    const good = await putVariant(e, a.diffId, compressBufferSync('gzip', a.tar), 'gzip');
    const p = recorder();
    const r = await ensureLayer(e.store, a.diffId, { compression: 'none', progress: p });
    expect(r).toMatchObject({ digest: a.diffId, from: good, source: 'converted' });
    expect(p.warnings.join('\n')).toContain(wrongZ);
    // only the three blobs: wrong, good, and the uncompressed result
    expect(e.store.content.list().map((x) => x.digest).sort()).toEqual([wrongZ, good, a.diffId].sort());
  });

  it('a zstd blob recorded as gzip (containerd quirk) is warned about, corrected and used as zstd', async () => {
    const { tar, diffId } = await tarOf(e, 6);
    const z = await putVariant(e, diffId, compressBufferSync('zstd', tar), 'gzip', { mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip' });
    const p = recorder();
    const r = await ensureLayer(e.store, diffId, { compression: 'zstd', progress: p });
    expect(r).toMatchObject({ digest: z, source: 'existing', compression: 'zstd' });
    expect(p.warnings.some((w) => w.includes(z) && /recorded as gzip/.test(w) && /bytes are zstd/.test(w))).toBe(true);
    expect(e.store.variants.get(z)!.compression).toBe('zstd');
  });

  it('an unproven claim (a row of a store written before proofs) is used only after a checking pass proves it', async () => {
    const { tar, diffId } = await tarOf(e, 7);
    const gz = await putVariant(e, diffId, compressBufferSync('gzip', tar), 'gzip', { record: false });
    const claim = (digest: string, d: string) => e.store.meta.db
      .prepare("INSERT INTO variant_claims (digest, diff_id, compression, size, created_at) VALUES (?, ?, 'gzip', 1, 0)").run(digest, d);
    claim(gz, diffId);
    const r = await ensureLayer(e.store, diffId, { compression: 'gzip' });
    expect(r).toMatchObject({ digest: gz, source: 'existing' });
    expect(e.store.variants.get(gz)).toMatchObject({ diffId, compression: 'gzip' });
    expect(e.store.variants.claimsFor(diffId)).toEqual([]);
  });

  it('the attacker\'s claim: a blob claimed to be layer Y that decodes to X is never returned for Y, and the claim is dropped', async () => {
    const y = await tarOf(e, 21);
    const x = await tarOf(e, 22);
    const evil = await putVariant(e, y.diffId, compressBufferSync('zstd', x.tar), 'zstd', { record: false });
    e.store.meta.db.prepare("INSERT INTO variant_claims (digest, diff_id, compression, size, created_at) VALUES (?, ?, 'zstd', 1, 0)").run(evil, y.diffId);
    await putVariant(e, y.diffId, compressBufferSync('gzip', y.tar), 'gzip');
    const p = recorder();
    const r = await ensureLayer(e.store, y.diffId, { compression: 'zstd', progress: p });
    expect(r.digest).not.toBe(evil);
    expect(r.source).toBe('converted');
    expect(p.warnings.join('\n')).toMatch(new RegExp(`${evil}.*is not`));
    expect(e.store.variants.get(evil)).toBeUndefined();
    expect(e.store.variants.claimsFor(y.diffId)).toEqual([]);
  });

  it('a blob the caller\'s own manifest names (prefer) is used without a proof, and not recorded as one', async () => {
    const { tar, diffId } = await tarOf(e, 23);
    const gz = await putVariant(e, diffId, compressBufferSync('gzip', tar), 'gzip', { record: false });
    const r = await ensureLayer(e.store, diffId, { compression: 'gzip', prefer: gz });
    expect(r).toMatchObject({ digest: gz, source: 'existing' });
    expect(e.store.variants.get(gz)).toBeUndefined();
    // Another image asking for the layer (no prefer) does not get it on that claim alone:
    // it is not even a candidate (no row, no claim), so the layer is produced otherwise or missing.
    await expect(ensureLayer(e.store, diffId, { compression: 'gzip', rebuild: null })).rejects.toThrow(MissingContentError);
  });

  it('two proofs for one blob with different diffIDs are an error naming both', async () => {
    const a = await tarOf(e, 24);
    const gz = await putVariant(e, a.diffId, compressBufferSync('gzip', a.tar), 'gzip');
    const other = 'sha256:' + 'ab'.repeat(32);
    expect(() => e.store.variants.recordProof({ digest: gz, diffId: other, compression: 'gzip', size: 1 })).toThrow(new RegExp(`${gz}.*${a.diffId}.*${other}`));
  });

  it('rebuilds from the snapshot when no blob is present; a wrong rebuild is an error', async () => {
    const { tar, diffId } = await tarOf(e, 8);
    const r = await ensureLayer(e.store, diffId, { compression: 'zstd', rebuild: (_s, d) => (d === diffId ? Readable.from([tar]) : undefined) });
    expect(r).toMatchObject({ source: 'rebuilt', compression: 'zstd' });
    expect(e.store.content.has(r.digest)).toBe(true);

    const other = await tarOf(e, 9);
    const bad = ensureLayer(e.store, other.diffId, { compression: 'gzip', rebuild: () => Readable.from([tar]), what: 'image x:1 (linux/amd64) layer 3' });
    await expect(bad).rejects.toThrow(MissingContentError);
    await expect(ensureLayer(e.store, other.diffId, { compression: 'gzip', rebuild: () => Readable.from([tar]) })).rejects.toThrow(/digest mismatch|cannot be produced/);
    expect(e.store.variants.forDiffId(other.diffId)).toEqual([]);
  });

  it('fails naming image, layer and diffID when nothing can produce the layer', async () => {
    const { tar, diffId } = await tarOf(e, 10);
    const gz = compressBufferSync('gzip', tar);
    e.store.variants.recordProof({ digest: 'sha256:' + require('crypto').createHash('sha256').update(gz).digest('hex'), diffId, compression: 'gzip', size: gz.length });
    const err = await ensureLayer(e.store, diffId, { compression: 'zstd', rebuild: null, what: 'image docker.io/library/x:1 (linux/amd64) layer 2' }).catch((x) => x);
    expect(err).toBeInstanceOf(MissingContentError);
    expect(err.message).toContain('image docker.io/library/x:1 (linux/amd64) layer 2');
    expect(err.message).toContain(diffId);
    expect(err.details.join('\n')).toMatch(/gzip\): absent/);
  });

  it('attaches the result and the blobs read to the lease', async () => {
    const { tar, diffId } = await tarOf(e, 11);
    const gz = await putVariant(e, diffId, compressBufferSync('gzip', tar), 'gzip');
    const h = holder();
    const r = await ensureLayer(e.store, diffId, { compression: 'zstd', lease: h });
    expect(h.attached).toEqual(expect.arrayContaining([gz, r.digest]));
    const h2 = holder();
    await ensureLayer(e.store, diffId, { compression: 'zstd', lease: h2 });
    expect(h2.attached).toEqual([r.digest]);
  });

  it('concurrent requests for one layer share one conversion', async () => {
    const { tar, diffId } = await tarOf(e, 12, 512 * 1024);
    await putVariant(e, diffId, compressBufferSync('gzip', tar), 'gzip');
    const p = recorder();
    const rs = await Promise.all([1, 2, 3].map(() => ensureLayer(e.store, diffId, { compression: 'zstd', progress: p })));
    expect(new Set(rs.map((r) => r.digest)).size).toBe(1);
    expect(p.tasks.length).toBe(1);
  });

  it('big layers are transcoded in a worker thread, byte-identical to the in-process codecs', async () => {
    const { tar, diffId } = await tarOf(e, 13, 4 * 1024 * 1024);
    const sha = (b: Buffer) => 'sha256:' + require('crypto').createHash('sha256').update(b).digest('hex');
    const gz = await putVariant(e, diffId, compressBufferSync('gzip', tar, 1), 'gzip');
    expect(e.store.content.info(gz)!.size).toBeGreaterThan(WORKER_MIN_BYTES); // the worker path
    const p = recorder();
    const z = await ensureLayer(e.store, diffId, { compression: 'zstd', level: 7, progress: p });
    expect(z).toMatchObject({ source: 'converted', from: gz, digest: sha(compressBufferSync('zstd', tar, 7)) });
    const g = await ensureLayer(e.store, diffId, { compression: 'gzip', level: 9 });
    expect(g).toMatchObject({ source: 'converted', from: z.digest, digest: sha(compressBufferSync('gzip', tar, 9)) });
    const n = await ensureLayer(e.store, diffId, { compression: 'none' });
    expect(n).toMatchObject({ source: 'converted', digest: diffId });
    expect(fs.readFileSync(e.store.content.blobPath(diffId)).equals(tar)).toBe(true);
    // nothing left behind in the ingest directory
    expect(fs.readdirSync(e.store.content.ingestDir)).toEqual([]);
  });

  it('a big variant that is corrupt or belongs to another layer is skipped (worker path)', async () => {
    const { tar, diffId } = await tarOf(e, 14, 4 * 1024 * 1024);
    const other = await tarOf(e, 15, 4 * 1024 * 1024);
    const zfull = compressBufferSync('zstd', tar);
    const truncated = await putVariant(e, diffId, zfull.subarray(0, zfull.length - 1000), 'zstd');
    const foreign = await putVariant(e, diffId, compressBufferSync('none', other.tar), 'none');
    const good = await putVariant(e, diffId, compressBufferSync('gzip', tar), 'gzip');
    for (const d of [truncated, foreign, good]) expect(e.store.content.info(d)!.size).toBeGreaterThan(WORKER_MIN_BYTES);
    const p = recorder();
    const r = await ensureLayer(e.store, diffId, { compression: 'zstd', level: 4, progress: p });
    expect(r).toMatchObject({ source: 'converted', from: good });
    const w = p.warnings.join('\n');
    expect(w).toContain(truncated);
    expect(w).toContain(foreign);
    expect(fs.readdirSync(e.store.content.ingestDir)).toEqual([]);
  });
});
