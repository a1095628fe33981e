/**
 * `imgtool pull`: OCI distribution pull into the store.
 *
 * 1. Resolve REF with one `HEAD` of the manifest (`Accept`: OCI index/manifest, Docker list/
 *    schema2). When it answers a sha256 `Docker-Content-Digest` the store already has, the
 *    documents are read from the store; anything absent is fetched. So an image that is
 *    already complete costs exactly that one request. No digest (or another algorithm): GET.
 * 2. Every manifest/index fetched is capped at 4 MiB, hashed and checked: against the digest
 *    of REF (or of its index entry, with its size), and against `Docker-Content-Digest` only
 *    when that uses sha256 too. It is validated (docs.ts) before anything reads it.
 * 3. Platforms: an index gives the host's manifest by default (as docker and ctr), each
 *    `--platform` (each must exist), or every entry with `--all-platforms`; attestations of the
 *    selected manifests come along.
 * 4. Every blob (config, layers) is streamed into `store.content.writer({digest, size, lease})`,
 *    verified while streaming; a blob is skipped only when that very blob is in the store — a
 *    snapshot with the same chainID is NOT a reason to skip (containerd's missing-blobs bug),
 *    so a later save or push of the image works. At most `jobs` transfers at once; a transfer
 *    cut by the network resumes with `Range` into the same writer (bounded; restarted in a
 *    fresh temp file when the registry does not do ranges).
 * 5. All-or-nothing: once all content is in, the platforms are unpacked and only then the
 *    names of every REF are registered, in one transaction, with the blob sources (for
 *    mounts) — `unpackThenRegister` (src/images/register.ts), shared with load. Everything
 *    runs under the command's lease: a pull that fails or is killed (SIGKILL) leaves only
 *    unreferenced content and snapshots for prune, never a name.
 */
import { finished } from 'node:stream/promises';
import { once } from 'node:events';
import type { Store } from '../store';
import { ContentWriter, ResourceHolder, MAX_JSON_SIZE } from '../content';
import { sha256, shortDigest } from '../digest';
import { DigestMismatchError, InvalidArgumentError, InvalidArchiveError, NotFoundError, RegistryError, SizeMismatchError } from '../errors';
import { Annotation, Descriptor, Index } from '../images/types';
import { isIndexType, isManifestType } from '../images/mediatypes';
import { isAttestation, stripDesc } from '../images/walk';
import { Platform, formatPlatform, hostPlatform, normalizePlatform, parsePlatform } from '../platform';
import { Progress, silentProgress } from '../progress';
import { Reference, parseReference, repositoryName } from '../reference';
import { namesForImage } from '../archive/naming';
import { unpackThenRegister } from '../images/register';
import { withCommandLease } from '../leases';
import type { UnpackResult } from '../snapshots';
import type { Limits } from '../limits';
import { RegistryClient, ClientOptions } from './client';
import { MANIFEST_ACCEPT, MAX_MANIFEST_SIZE, RegistryDoc, parseRegistryDoc } from './docs';
import { ResponseBody, discard, isCutConnection, readBody } from './http';
import { WireBody, WireError } from './wire';
import { recordSources } from './sources';
import { runPool } from './pool';
import type { ImageOutline } from '../images/types';

export interface PullOptions extends ClientOptions {
  platforms?: string[];
  allPlatforms?: boolean;
  /** Unpack the pulled platforms (default true). */
  unpack?: boolean;
  /** Also register `NAME@DIGEST`. */
  digests?: boolean;
  /** Parallel blob transfers (default 4). */
  jobs?: number;
  /** Hostile-input limits for unpacking the pulled layers (src/limits; defaults as load). */
  limits?: Partial<Limits>;
  lease?: ResourceHolder;
  progress?: Progress;
}

/** `partial`/`absent`: index entries not pulled (other platforms), as after `load`. */
export interface PulledImage extends ImageOutline {
  ref: string;
  blobs: { fetched: number; present: number; bytes: number };
  /** HTTP requests made to the registry for this image (1 when it was already complete). */
  requests: number;
}

export interface PullResult {
  images: PulledImage[];
  unpacked: UnpackResult[];
  warnings: string[];
}

/** What one REF resolved to, before registration. */
interface Fetched {
  image: PulledImage;
  target: Descriptor;
  needed: Descriptor[];
  repo: string;
  domain: string;
}

const BLOB_ATTEMPTS = 3;

function checkPlatforms(opts: PullOptions): Platform[] | undefined {
  if (opts.allPlatforms && opts.platforms?.length) throw new InvalidArgumentError('--platform and --all-platforms are mutually exclusive');
  return opts.platforms?.length ? opts.platforms.map((p) => normalizePlatform(parsePlatform(p))) : undefined;
}

export async function pullImages(store: Store, refs: string[], opts: PullOptions = {}): Promise<PullResult> {
  // The content must be held until the names are registered (after unpacking).
  if (!opts.lease) return withCommandLease(store, undefined, (lease) => pullImages(store, refs, { ...opts, lease }));
  if (!refs.length) throw new InvalidArgumentError('no image to pull');
  const wanted = checkPlatforms(opts);
  const jobs = opts.jobs ?? 4;
  if (!Number.isInteger(jobs) || jobs < 1) throw new InvalidArgumentError(`--jobs must be a positive integer, got ${opts.jobs}`);
  const parsed = refs.map((r) => ({ input: r, ref: parseReference(r) }));
  const progress = opts.progress ?? silentProgress;
  const warnings: string[] = [];
  const clients = new Map<string, RegistryClient>();
  const clientFor = (domain: string) => {
    let c = clients.get(domain);
    if (!c) clients.set(domain, (c = new RegistryClient(domain, opts)));
    return c;
  };
  try {
    const fetched: Fetched[] = [];
    for (const { input, ref } of parsed) {
      fetched.push(await pullOne(store, clientFor(ref.domain), input, ref, { ...opts, jobs, wanted, progress }));
    }
    // All REFs are in: register every name at once, with where the blobs came from.
    const registrations: Array<{ name: string; target: Descriptor }> = [];
    for (const f of fetched) {
      const { names, warnings: w } = namesForImage(
        { digest: f.target.digest, annotations: { [Annotation.CONTAINERD_NAME]: f.image.names[0] } },
        { digests: opts.digests },
      );
      warnings.push(...w);
      f.image.names = names;
      for (const n of names) registrations.push({ name: n, target: f.target });
    }
    const { unpacked } = await unpackThenRegister(store, {
      images: fetched.map((f) => f.image),
      registrations,
      needed: fetched.flatMap((f) => [f.target, ...f.needed]),
      also: () => {
        for (const f of fetched) recordSources(store, f.domain, f.repo, [f.target, ...f.needed].map((d) => d.digest));
      },
    }, { unpack: opts.unpack, platforms: opts.platforms, lease: opts.lease!, progress, verb: 'pull', warnings, limits: opts.limits });
    return { images: fetched.map((f) => f.image), unpacked, warnings };
  } finally {
    for (const c of clients.values()) c.close();
  }
}

interface OneOptions extends PullOptions {
  jobs: number;
  wanted?: Platform[];
  progress: Progress;
}

async function pullOne(store: Store, client: RegistryClient, input: string, ref: Reference, opts: OneOptions): Promise<Fetched> {
  const repo = ref.path;
  const name = ref.digest ? `${repositoryName(ref)}@${ref.digest}` : `${repositoryName(ref)}:${ref.tag}`;
  const label = name;
  let requests = 0;
  const scopes: Array<[string, string]> = [[repo, 'pull']];
  const request = async (r: Parameters<RegistryClient['request']>[0]) => {
    requests++;
    return client.request(r);
  };
  const reference = ref.digest ?? ref.tag!;

  // 1. HEAD: the digest REF resolves to, and whether the store already has it.
  let root: Descriptor | undefined;
  let rootDoc: RegistryDoc | undefined;
  const head = await request({ method: 'HEAD', path: `/v2/${repo}/manifests/${reference}`, scopes, headers: { Accept: MANIFEST_ACCEPT }, what: `manifest ${label}` });
  discard(head.body);
  if (head.status === 404) throw new RegistryError(`pull ${label}: repository or tag not found on ${client.domain} (404)`, { status: 404 });
  if (head.status === 403) throw new RegistryError(`pull ${label}: permission denied on ${client.domain} (403)`, { status: 403 });
  const headDigest = String(head.headers['docker-content-digest'] ?? '');
  if (head.status === 200 && headDigest.startsWith('sha256:')) {
    if (ref.digest && headDigest !== ref.digest) {
      throw new DigestMismatchError(ref.digest, headDigest, `manifest ${label} (Docker-Content-Digest)`);
    }
    const info = store.content.info(headDigest);
    if (info && store.content.attachIfPresent(headDigest, opts.lease)) {
      const bytes = await store.content.readBuffer(headDigest, MAX_MANIFEST_SIZE);
      rootDoc = parseRegistryDoc(bytes, String(head.headers['content-type'] ?? ''), `manifest ${label}`);
      root = { mediaType: rootDoc.mediaType, digest: headDigest, size: bytes.length };
    }
  }
  // 2. GET it unless the store had it.
  if (!root) {
    const got = await fetchDoc(store, client, request, repo, reference, undefined, `manifest ${label}`, opts.lease, ref.digest);
    root = got.desc;
    rootDoc = got.doc;
  }

  // 3. Walk: select platforms, fetch manifests (from the store when present).
  const needed: Descriptor[] = [];
  const blobs = new Map<string, Descriptor>();
  const absent: Array<{ digest: string; platform?: string }> = [];
  const platforms: string[] = [];
  const host = normalizePlatform(hostPlatform());
  const wantedSet = opts.wanted ? new Set(opts.wanted.map(formatPlatform)) : undefined;
  const foundWanted = new Set<string>();

  const visitManifest = (desc: Descriptor, doc: RegistryDoc & { kind: 'manifest' }) => {
    needed.push(stripDesc(desc));
    const m = doc.doc;
    if (m.config.size > MAX_JSON_SIZE) throw new InvalidArchiveError(`image ${label}: config ${m.config.digest} is ${m.config.size} bytes, over the ${MAX_JSON_SIZE}-byte limit`);
    for (const d of [m.config, ...m.layers]) if (!blobs.has(d.digest)) blobs.set(d.digest, stripDesc(d));
  };
  const getChild = (d: Descriptor) => loadDoc(store, client, request, repo, d, `${label}: ${isIndexType(d.mediaType) ? 'index' : 'manifest'} ${shortDigest(d.digest)}`, opts.lease);

  const visitIndex = async (desc: Descriptor, idx: Index, depth: number) => {
    if (depth > 8) throw new InvalidArchiveError(`image ${label}: index nesting deeper than 8 at ${desc.digest}`);
    needed.push(stripDesc(desc));
    const selected = new Set<string>();
    const matches = (p: Platform | undefined): boolean => {
      if (opts.allPlatforms) return true;
      if (!p) return false;
      const f = formatPlatform(normalizePlatform(p));
      if (wantedSet) return wantedSet.has(f);
      return f === formatPlatform(host);
    };
    const later: Descriptor[] = [];
    for (const e of idx.manifests) {
      if (isIndexType(e.mediaType)) {
        const child = await getChild(e);
        if (child.kind !== 'index') throw new InvalidArchiveError(`image ${label}: entry ${e.digest} is listed as an index but is a manifest`);
        await visitIndex(e, child.doc, depth + 1);
        continue;
      }
      if (!isManifestType(e.mediaType)) continue; // artifacts: not part of the image's closure
      if (isAttestation(e)) {
        later.push(e);
        continue;
      }
      if (!matches(e.platform)) {
        absent.push({ digest: e.digest, platform: e.platform ? formatPlatform(normalizePlatform(e.platform)) : undefined });
        continue;
      }
      const child = await getChild(e);
      if (child.kind !== 'manifest') throw new InvalidArchiveError(`image ${label}: entry ${e.digest} is listed as a manifest but is an index`);
      visitManifest(e, child);
      selected.add(e.digest);
      if (e.platform) {
        const f = formatPlatform(normalizePlatform(e.platform));
        foundWanted.add(f);
        if (!platforms.includes(f)) platforms.push(f);
      }
    }
    for (const a of later) {
      const target = a.annotations?.[Annotation.DOCKER_REFERENCE_DIGEST];
      if (!opts.allPlatforms && !(target && selected.has(target))) {
        absent.push({ digest: a.digest, platform: 'unknown/unknown' });
        continue;
      }
      const child = await getChild(a);
      if (child.kind === 'manifest') visitManifest(a, child);
    }
  };

  if (rootDoc!.kind === 'index') {
    await visitIndex(root, rootDoc!.doc, 0);
    if (wantedSet) {
      const miss = [...wantedSet].filter((p) => !foundWanted.has(p));
      if (miss.length) throw new NotFoundError(`pull ${label}: no manifest for platform ${miss.join(', ')} (the index has ${describePlatforms(rootDoc!.doc)})`);
    } else if (!opts.allPlatforms && !platforms.length) {
      throw new NotFoundError(`pull ${label}: no manifest for platform ${formatPlatform(host)} (the index has ${describePlatforms(rootDoc!.doc)}); use --platform or --all-platforms`);
    }
  } else {
    visitManifest(root, rootDoc as RegistryDoc & { kind: 'manifest' });
  }

  // 4. Blobs: every one of the selected closure, skipped only when that blob is present.
  const stats = { fetched: 0, present: 0, bytes: 0 };
  const list = [...blobs.values()];
  await runPool(list, opts.jobs, async (d) => {
    const r = await fetchBlob(store, client, request, repo, d, `${label}: blob ${d.digest}`, opts);
    if (r === 'present') stats.present++;
    else {
      stats.fetched++;
      stats.bytes += d.size;
    }
  });
  needed.push(...list);

  return {
    image: {
      ref: input, names: [name], digest: root.digest, mediaType: root.mediaType, size: root.size, platforms,
      partial: absent.some((a) => a.platform !== 'unknown/unknown'), absent, blobs: stats, requests,
    },
    target: stripDesc(root),
    needed,
    repo,
    domain: client.domain,
  };
}

function describePlatforms(idx: Index): string {
  const ps = idx.manifests.filter((m) => m.platform && !isAttestation(m)).map((m) => formatPlatform(normalizePlatform(m.platform!)));
  return ps.length ? [...new Set(ps)].join(', ') : 'no platforms';
}

type Requester = (r: Parameters<RegistryClient['request']>[0]) => ReturnType<RegistryClient['request']>;

/** A child document: from the store when present (verified read), else fetched by digest. */
async function loadDoc(store: Store, client: RegistryClient, request: Requester, repo: string, d: Descriptor, what: string, lease?: ResourceHolder): Promise<RegistryDoc> {
  if (d.size > MAX_MANIFEST_SIZE) throw new InvalidArchiveError(`${what}: ${d.size} bytes, over the ${MAX_MANIFEST_SIZE}-byte limit for manifests`);
  if (store.content.info(d.digest)?.size === d.size && store.content.attachIfPresent(d.digest, lease)) {
    return parseRegistryDoc(await store.content.readBuffer(d.digest, MAX_MANIFEST_SIZE), d.mediaType, what);
  }
  return (await fetchDoc(store, client, request, repo, d.digest, d, what, lease, d.digest)).doc;
}

/** GET a manifest/index, cap it, check its digest(s), validate it, store it. */
async function fetchDoc(
  store: Store, client: RegistryClient, request: Requester, repo: string, reference: string, desc: Descriptor | undefined,
  what: string, lease: ResourceHolder | undefined, expected: string | undefined,
): Promise<{ desc: Descriptor; doc: RegistryDoc }> {
  const res = await request({
    method: 'GET', path: `/v2/${repo}/manifests/${reference}`, scopes: [[repo, 'pull']],
    headers: { Accept: desc ? `${desc.mediaType}, ${MANIFEST_ACCEPT}` : MANIFEST_ACCEPT }, what,
  });
  if (res.status !== 200) await client.fail(res, `pull ${what} from ${client.domain}`);
  const bytes = await readBody(res.body, MAX_MANIFEST_SIZE, what);
  const digest = sha256(bytes);
  if (expected && digest !== expected) throw new DigestMismatchError(expected, digest, what);
  const dcd = String(res.headers['docker-content-digest'] ?? '');
  if (dcd.startsWith('sha256:') && dcd !== digest) throw new DigestMismatchError(dcd, digest, `${what} (Docker-Content-Digest)`);
  if (desc && bytes.length !== desc.size) throw new SizeMismatchError(what, desc.size, bytes.length);
  const doc = parseRegistryDoc(bytes, String(res.headers['content-type'] ?? desc?.mediaType ?? ''), what);
  if (desc && desc.mediaType !== doc.mediaType) throw new InvalidArchiveError(`${what}: listed as ${desc.mediaType} but is ${doc.mediaType}`);
  await store.content.ingestBuffer(bytes, { digest, size: bytes.length, lease, what });
  return { desc: { mediaType: doc.mediaType, digest, size: bytes.length }, doc };
}

/**
 * Copy a response body into the writer without ending it (a cut leaves the writer usable). The
 * lean client's body is drained straight into the writer (it copies into recycled slabs).
 */
async function copyInto(body: ResponseBody, w: ContentWriter): Promise<void> {
  const onError = new Promise<never>((_, reject) => w.once('error', reject));
  onError.catch(() => undefined);
  if (body instanceof WireBody) return Promise.race([body.drainInto(w), onError]);
  for await (const chunk of body as AsyncIterable<Buffer>) {
    if (!w.write(chunk)) await Promise.race([once(w, 'drain'), onError]);
  }
}

/**
 * Stream one blob into the content store, verified while streaming (one writer, one hash).
 * A cut connection resumes with `Range: bytes=N-` into the same writer when the registry
 * answers 206 from N; a registry without ranges (200) restarts in a fresh temp file. Bounded:
 * BLOB_ATTEMPTS requests in all.
 */
async function fetchBlob(store: Store, client: RegistryClient, request: Requester, repo: string, d: Descriptor, what: string, opts: OneOptions): Promise<'present' | 'fetched'> {
  if (store.content.info(d.digest)?.size === d.size && store.content.attachIfPresent(d.digest, opts.lease)) return 'present';
  const task = d.size >= 1024 * 1024 ? opts.progress.task(`blob ${shortDigest(d.digest).slice(7)}`, d.size) : undefined;
  const newWriter = () => store.content.writer({ digest: d.digest, size: d.size, lease: opts.lease, what, onProgress: (n) => task?.update(n) });
  let w = newWriter();
  try {
    for (let attempt = 1; ; attempt++) {
      const offset = w.written;
      const res = await request({
        method: 'GET', path: `/v2/${repo}/blobs/${d.digest}`, scopes: [[repo, 'pull']], what, bulk: true,
        headers: offset > 0 && offset < d.size ? { Range: `bytes=${offset}-` } : undefined,
      });
      if (offset > 0 && res.status === 206) {
        const cr = String(res.headers['content-range'] ?? '');
        if (!cr.startsWith(`bytes ${offset}-`)) {
          discard(res.body);
          throw new RegistryError(`${what}: the registry answered the resume from byte ${offset} with range ${JSON.stringify(cr)}`);
        }
      } else if (res.status === 200) {
        if (offset > 0) {
          // No range support: start again from the first byte.
          await w.abort();
          w = newWriter();
        }
      } else {
        await client.fail(res, `pull ${what} from ${client.domain}`);
      }
      try {
        await copyInto(res.body, w);
        break;
      } catch (e) {
        res.body.destroy();
        // A body the framing parser refused (src/registry/wire.ts) is one line naming the blob.
        if (!isCutConnection(e)) throw e instanceof WireError ? new RegistryError(`${what}: ${e.message}`) : e;
        if (attempt >= BLOB_ATTEMPTS) throw new RegistryError(`${what}: the connection was cut ${attempt} times; giving up`);
      }
    }
    w.end();
    await finished(w);
    await w.commit();
    return 'fetched';
  } catch (e) {
    // Nothing may be listening yet (the request itself failed): the error is ours to throw.
    w.on('error', () => undefined);
    if (!w.destroyed) w.destroy(e as Error);
    await w.abort();
    throw e;
  } finally {
    task?.finish();
  }
}
