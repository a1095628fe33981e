/**
 * `imgtool push IMAGE [REF]`: upload an image from the store over the OCI distribution API.
 *
 * 1. Plan with `planSave` (src/archive/export-plan.ts, OCI format, no archive written): the same
 *    platform selection, the same layer module (`layerResolver` -> `ensureLayer`: a layer
 *    absent from the store is converted from another variant or rebuilt from its snapshot),
 *    the same old -> new digests for a partial image pushed as its present platforms under a
 *    new index. Every layer that cannot be produced is named before anything is uploaded;
 *    with `--all-platforms`, or a digest REF the result would not match, it is an error.
 * 2. Every manifest/index is checked against the registry limit (4 MiB) before any upload.
 * 3. Blobs (configs, layers), at most `jobs` at once: HEAD (skip what the registry has), else a
 *    cross-repository mount when `blob_sources` knows another repository of the same registry
 *    holding it (one token for `SRC:pull` + `DST:pull,push`; a 202 answer means "not mounted"
 *    and the upload goes on in the session it returned), else a new session; upload.ts: one
 *    monolithic PUT up to the chunk size, else PATCH chunks that resume after a cut.
 * 4. Manifests after their blobs, nested indexes before their parent, each by digest; the tag
 *    last (skipped when it already points at the digest), so a failed push leaves it untouched.
 */
import type { Store } from '../store';
import { ResourceHolder } from '../content';
import { shortDigest } from '../digest';
import { InvalidArgumentError, MissingContentError, RegistryError } from '../errors';
import { isIndexType, isManifestType } from '../images/mediatypes';
import { Index } from '../images/types';
import { Platform, normalizePlatform, parsePlatform } from '../platform';
import { Progress, silentProgress } from '../progress';
import { parseReference, repositoryName } from '../reference';
import { planSave } from '../archive/export-plan'; // not ../archive/export: push writes no archive
import type { DigestChange, PlannedBlob } from '../archive/export';
import { RegistryClient, ClientOptions } from './client';
import { MAX_MANIFEST_SIZE } from './docs';
import { discard } from './http';
import { runPool } from './pool';
import { recordSources, sourcesOf } from './sources';
import { UPLOAD_CHUNK_SIZE, uploadBlob } from './upload';

export type PushCompression = 'keep' | 'gzip' | 'zstd';
export const PUSH_COMPRESSIONS: readonly PushCompression[] = ['keep', 'gzip', 'zstd'];

export interface PushOptions extends ClientOptions {
  platforms?: Array<string | Platform>;
  allPlatforms?: boolean;
  compression?: PushCompression;
  jobs?: number;
  lease?: ResourceHolder;
  progress?: Progress;
  /**
   * Upload chunk size in bytes: a blob up to this size goes up in one monolithic PUT, a larger
   * one in PATCH chunks of this size that resume after a cut (default UPLOAD_CHUNK_SIZE).
   */
  chunkSize?: number;
}

export interface PushResult {
  image: string;
  /** Normalised destination reference. */
  ref: string;
  digest: string;
  mediaType: string;
  size: number;
  platforms: string[];
  leftOut: string[];
  changes: DigestChange[];
  blobs: { uploaded: number; skipped: number; mounted: number; bytes: number };
  manifests: { uploaded: number; skipped: number };
  /** Bytes sent in request bodies. */
  bytesSent: number;
  warnings: string[];
}

export async function pushImage(store: Store, image: string, dest: string | undefined, opts: PushOptions = {}): Promise<PushResult> {
  const compression = opts.compression ?? 'keep';
  if (!PUSH_COMPRESSIONS.includes(compression)) throw new InvalidArgumentError(`unknown compression ${JSON.stringify(compression)}: expected ${PUSH_COMPRESSIONS.join(', ')}`);
  const jobs = opts.jobs ?? 4;
  if (!Number.isInteger(jobs) || jobs < 1) throw new InvalidArgumentError(`--jobs must be a positive integer, got ${opts.jobs}`);
  const chunkSize = opts.chunkSize ?? UPLOAD_CHUNK_SIZE;
  if (!Number.isSafeInteger(chunkSize) || chunkSize < 1) throw new InvalidArgumentError(`chunk size must be a positive integer, got ${opts.chunkSize}`);
  const progress = opts.progress ?? silentProgress;
  const platforms = opts.platforms?.map((p) => normalizePlatform(typeof p === 'string' ? parsePlatform(p) : p));
  const rec = store.images.resolve(image);
  const ref = parseReference(dest ?? rec.name);
  const target = `${repositoryName(ref)}${ref.tag && !ref.digest ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
  const repo = ref.path;

  // 1. Plan (nothing is uploaded when this fails).
  const plan = await planSave(store, [image], {
    platforms: platforms?.length ? platforms : undefined, allPlatforms: opts.allPlatforms, format: 'oci', compression,
    lease: opts.lease, progress,
  });
  const img = plan.images[0];
  if (ref.digest && ref.digest !== img.digest) {
    throw new InvalidArgumentError(`push ${target}: the image to push is ${img.digest}${img.digest !== img.storeDigest ? ` (rewritten from ${img.storeDigest}: ${plan.changes.map((c) => c.reason).join('; ')})` : ''}, not the digest REF names`);
  }
  if (ref.digest && img.leftOut.length && !platforms?.length) {
    throw new InvalidArgumentError(`push ${target}: the image is partial (${img.leftOut.join(', ')} not in the store); a digest REF needs the whole image (pull --all-platforms)`);
  }
  const docs = plan.blobs.filter((b) => isIndexType(b.mediaType) || isManifestType(b.mediaType));
  const big = docs.filter((b) => b.size > MAX_MANIFEST_SIZE);
  if (big.length) {
    throw new InvalidArgumentError(`push ${target}: ${big[0].mediaType} ${big[0].digest} is ${big[0].size} bytes, over the registry limit of ${MAX_MANIFEST_SIZE} bytes; nothing uploaded`);
  }
  const blobs = plan.blobs.filter((b) => !docs.includes(b));
  // Hold every stored blob for the lease, under GC's lock, before reading any of them.
  store.meta.write(() => {
    const gone = plan.blobs.filter((b) => !b.data && !store.content.has(b.digest));
    if (gone.length) throw new MissingContentError(`push ${target}: ${gone.length} blob(s) disappeared from the store while planning`, gone.map((b) => `${b.mediaType} ${b.digest}`));
    if (opts.lease) for (const b of plan.blobs) if (!b.data) opts.lease.attach('content', b.digest);
  });

  const client = new RegistryClient(ref.domain, opts);
  const stats = { uploaded: 0, skipped: 0, mounted: 0, bytes: 0 };
  const mstats = { uploaded: 0, skipped: 0 };
  try {
    // 3. Blobs.
    await runPool(blobs, jobs, async (b) => {
      const r = await pushBlob(store, client, repo, b, progress, chunkSize);
      stats[r]++;
      if (r === 'uploaded') stats.bytes += b.size;
    });
    // 4. Manifests (children first), the tag last.
    const byDigest = new Map(docs.map((d) => [d.digest, d]));
    const order: PlannedBlob[] = [];
    const seen = new Set<string>();
    const visit = async (digest: string) => {
      if (seen.has(digest)) return;
      seen.add(digest);
      const d = byDigest.get(digest);
      if (!d) return;
      if (isIndexType(d.mediaType)) {
        const idx = JSON.parse((await docBytes(store, d)).toString('utf8')) as Index;
        for (const e of idx.manifests) await visit(e.digest);
      }
      order.push(d);
    };
    await visit(img.digest);
    for (const d of docs) if (!seen.has(d.digest)) order.unshift(d); // not reachable from the root: still before it
    for (const d of order) {
      const isRoot = d.digest === img.digest;
      const reference = isRoot && ref.tag && !ref.digest ? ref.tag : d.digest;
      const r = await pushManifest(store, client, repo, d, reference, `${target}: ${isIndexType(d.mediaType) ? 'index' : 'manifest'} ${shortDigest(d.digest)}`);
      mstats[r]++;
    }
    recordSources(store, client.domain, repo, plan.blobs.map((b) => b.digest));
    return {
      image: rec.name, ref: target, digest: img.digest, mediaType: img.mediaType, size: img.size, platforms: img.platforms, leftOut: img.leftOut,
      changes: plan.changes, blobs: stats, manifests: mstats, bytesSent: client.bytesSent, warnings: plan.warnings,
    };
  } finally {
    client.close();
  }
}

async function docBytes(store: Store, d: PlannedBlob): Promise<Buffer> {
  return d.data ?? store.content.readBuffer(d.digest, MAX_MANIFEST_SIZE);
}

async function pushBlob(store: Store, client: RegistryClient, repo: string, b: PlannedBlob, progress: Progress, chunkSize: number): Promise<'uploaded' | 'skipped' | 'mounted'> {
  const what = `push ${client.domain}/${repo}: blob ${b.digest}`;
  const scopes: Array<[string, string]> = [[repo, 'pull,push']];
  const head = await client.request({ method: 'HEAD', path: `/v2/${repo}/blobs/${b.digest}`, scopes, what });
  discard(head.body);
  if (head.status === 200) return 'skipped';
  if (head.status !== 404) await client.fail(head, what);

  // Cross-repository mount from a repository known to hold it.
  let location: string | undefined;
  for (const from of sourcesOf(store, client.domain, b.digest, repo).slice(0, 3)) {
    const res = await client.request({
      method: 'POST', path: `/v2/${repo}/blobs/uploads/?mount=${encodeURIComponent(b.digest)}&from=${encodeURIComponent(from)}`,
      scopes: [[from, 'pull'], [repo, 'pull,push']], headers: { 'Content-Length': '0' }, what, noRedirect: true,
    });
    discard(res.body);
    if (res.status === 201) return 'mounted';
    if (res.status === 202 && res.headers.location) {
      location = res.headers.location;
      break; // not mounted: the upload continues in this session
    }
    if (res.status !== 404 && res.status !== 403 && res.status !== 401) await client.fail(res, what);
  }
  const task = b.size >= 1024 * 1024 ? progress.task(`upload ${shortDigest(b.digest).slice(7)}`, b.size) : undefined;
  try {
    await uploadBlob({ store, client, repo, what, chunkSize, task, backoffMs: client.backoffMs }, b, location);
  } finally {
    task?.finish();
  }
  return 'uploaded';
}

async function pushManifest(store: Store, client: RegistryClient, repo: string, d: PlannedBlob, reference: string, what: string): Promise<'uploaded' | 'skipped'> {
  const scopes: Array<[string, string]> = [[repo, 'pull,push']];
  const head = await client.request({ method: 'HEAD', path: `/v2/${repo}/manifests/${reference}`, scopes, headers: { Accept: d.mediaType }, what });
  discard(head.body);
  if (head.status === 200 && head.headers['docker-content-digest'] === d.digest) return 'skipped';
  const bytes = await docBytes(store, d);
  const res = await client.request({ method: 'PUT', path: `/v2/${repo}/manifests/${reference}`, scopes, headers: { 'Content-Type': d.mediaType }, body: bytes, what });
  if (res.status !== 201) await client.fail(res, `push ${what}`);
  discard(res.body);
  client.bytesSent += bytes.length;
  const got = String(res.headers['docker-content-digest'] ?? '');
  if (got.startsWith('sha256:') && got !== d.digest) throw new RegistryError(`push ${what}: the registry computed ${got}`);
  return 'uploaded';
}
