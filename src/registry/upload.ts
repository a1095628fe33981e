/**
 * One blob upload over the OCI distribution API, in an upload session (POST
 * `/v2/REPO/blobs/uploads/`, or the 202 session a refused mount returned):
 *
 *  - A blob up to `chunkSize` goes up in one monolithic `PUT ?digest=` (one request fewer; the
 *    body digest-verified while read from the store). Cut: uploaded again in a new session.
 *  - A larger blob goes up in `PATCH` chunks (`Content-Range: START-END`, exact Content-Length)
 *    then `PUT ?digest=` with an empty body. A chunk cut by the network (or answered 5xx) is not
 *    replayed blindly: the session is asked for its status (`GET` the upload URL -> 204 with
 *    `Range: 0-N`) and the upload continues from N+1 in that session, the body reopened from the
 *    store at that offset (a stream cannot be replayed). When the registry lost the session
 *    (404/416 — distribution drops it when a cut left it more bytes than its signed upload state
 *    says), the upload restarts in a new session; when the blob turns out to be in the registry
 *    already (a PUT whose answer was lost), it is done.
 *  - The bytes are hashed as they are read, across chunks (the hash state is kept at every chunk
 *    start, so a resume rewinds it); a store blob that does not hash to its digest fails before
 *    the upload is finalised.
 *  - Bounded: UPLOAD_CUTS cut requests and UPLOAD_RESTARTS new sessions per blob, then one clear
 *    error naming the blob.
 */
import { createHash, Hash } from 'node:crypto';
import type { Store } from '../store';
import { DigestMismatchError, RegistryError } from '../errors';
import type { ProgressTask } from '../progress';
import { RegistryClient } from './client';
import { discard, isCutConnection } from './http';
import { FileBody } from './filebody';

/** Chunk size (and the largest blob sent monolithically): see scripts/bench/registry.js. */
export const UPLOAD_CHUNK_SIZE = 64 * 1024 * 1024;
const UPLOAD_CUTS = 5;
const UPLOAD_RESTARTS = 3;

export interface UploadBlob {
  digest: string;
  size: number;
}

export interface UploadContext {
  store: Store;
  client: RegistryClient;
  repo: string;
  what: string;
  chunkSize: number;
  task?: ProgressTask;
  /** Backoff before a resume, in ms (doubles per cut). */
  backoffMs: number;
}

interface Session {
  location: string;
  /** Bytes the registry holds in this session. */
  offset: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** `Range: 0-N` of an upload status: the next offset (N+1; `0-0` is read as nothing yet). */
function nextOffset(range: string | string[] | undefined): number | undefined {
  const m = /^(?:bytes=)?0-(\d+)$/.exec(String(range ?? '').trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  return n === 0 ? 0 : n + 1;
}

/** A path for client.request: absolute Locations stay absolute. */
function target(location: string, client: RegistryClient, params: Record<string, string> = {}): string {
  const url = new URL(location, `http://${client.host}`);
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return /^https?:\/\//.test(location) ? url.toString() : url.pathname + url.search;
}

export async function uploadBlob(ctx: UploadContext, b: UploadBlob, location: string | undefined): Promise<void> {
  const { client, repo, what } = ctx;
  const scopes: Array<[string, string]> = [[repo, 'pull,push']];
  let session: Session | undefined = location ? { location, offset: 0 } : undefined;
  let cuts = 0;
  let restarts = 0;
  const hasher = new RangeHasher(ctx.store, b, what);

  const start = async (): Promise<Session> => {
    const res = await client.request({ method: 'POST', path: `/v2/${repo}/blobs/uploads/`, scopes, headers: { 'Content-Length': '0' }, what, noRedirect: true });
    discard(res.body);
    if (res.status !== 202 || !res.headers.location) await client.fail(res, `${what}: starting the upload`);
    return { location: res.headers.location!, offset: 0 };
  };
  const restart = () => {
    if (++restarts > UPLOAD_RESTARTS) throw new RegistryError(`${what}: the registry lost the upload session ${restarts} times; giving up`);
    session = undefined;
  };
  const counted = (n: number) => {
    client.bytesSent += n;
  };

  for (;;) {
    session ??= await start();
    const s = session;
    try {
      if (b.size <= ctx.chunkSize) {
        await finish(ctx, b, s, scopes, b.size, () => {
          // Hashed as it is sent: a stored blob that fails its digest destroys the request
          // before its last byte, so the registry never gets a complete body of other bytes.
          let n = 0;
          const h = createHash('sha256');
          return new FileBody(ctx.store.content.blobPath(b.digest), 0, b.size, {
            what,
            onChunk: (c) => {
              h.update(c);
              n += c.length;
              counted(c.length);
              ctx.task?.update(n);
            },
            beforeEnd: () => {
              const got = `sha256:${h.digest('hex')}`;
              if (got !== b.digest) throw new DigestMismatchError(b.digest, got, `${what} (read from the store)`);
            },
          });
        });
        return;
      }
      while (s.offset < b.size) {
        const from = s.offset;
        const end = Math.min(b.size, from + ctx.chunkSize);
        const res = await client.request({
          method: 'PATCH', path: target(s.location, client), scopes, what, noRedirect: true, retries: 0,
          headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${from}-${end - 1}`, 'Content-Length': String(end - from) },
          body: () => hasher.read(from, end, (n) => {
            counted(n);
            ctx.task?.update(from + n);
          }),
        });
        if (res.status >= 500) {
          discard(res.body);
          throw Object.assign(new Error(`HTTP ${res.status}`), { code: 'ECONNRESET' });
        }
        if (res.status === 404 || res.status === 416) {
          discard(res.body);
          restart();
          break;
        }
        if (res.status !== 202) await client.fail(res, `${what}: uploading bytes ${from}-${end - 1}`);
        discard(res.body);
        if (res.headers.location) s.location = res.headers.location;
        // The registry says what it holds; a registry that keeps less than it was sent is
        // followed (from there), one that makes no progress at all is an error, not a loop.
        const got = nextOffset(res.headers.range);
        if (got !== undefined && got > 0 && got <= from) throw new RegistryError(`${what}: the registry accepted bytes ${from}-${end - 1} but holds only ${got}`);
        s.offset = got !== undefined && got > from && got < end ? got : end;
      }
      if (!session) continue; // restarted
      if (s.offset === b.size) {
        await hasher.check();
        await finish(ctx, b, s, scopes, 0, undefined);
        return;
      }
    } catch (e) {
      if (!isCutConnection(e)) throw e;
      if (++cuts >= UPLOAD_CUTS) throw new RegistryError(`${what}: the upload was cut ${cuts} times; giving up`);
      await sleep(ctx.backoffMs * 2 ** (cuts - 1));
      if (b.size <= ctx.chunkSize) {
        restart();
        continue;
      }
      // Ask the session what it holds and continue from there.
      const st = await client.request({ method: 'GET', path: target(s.location, client), scopes, what: `${what}: upload status`, noRedirect: true });
      discard(st.body);
      const got = st.status === 204 ? nextOffset(st.headers.range) : undefined;
      if (got !== undefined && got <= b.size) {
        if (st.headers.location) s.location = st.headers.location;
        s.offset = got;
        continue;
      }
      // The session is gone. A finalising PUT whose answer was lost may have made it.
      if (s.offset === b.size) {
        const head = await client.request({ method: 'HEAD', path: `/v2/${repo}/blobs/${b.digest}`, scopes, what });
        discard(head.body);
        if (head.status === 200) return;
      }
      restart();
    }
  }
}

/** `PUT LOCATION?digest=` with the rest of the blob (monolithic) or nothing (after PATCHes). */
async function finish(ctx: UploadContext, b: UploadBlob, s: Session, scopes: Array<[string, string]>, length: number, body: (() => FileBody) | undefined): Promise<void> {
  const { client, what } = ctx;
  const put = await client.request({
    method: 'PUT', path: target(s.location, client, { digest: b.digest }), scopes, what, retries: 0,
    headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(length) },
    body: body ?? Buffer.alloc(0),
  });
  if (put.status >= 500) {
    discard(put.body);
    throw Object.assign(new Error(`HTTP ${put.status}`), { code: 'ECONNRESET' });
  }
  if (put.status !== 201) await client.fail(put, what);
  discard(put.body);
  const got = String(put.headers['docker-content-digest'] ?? '');
  if (got.startsWith('sha256:') && got !== b.digest) throw new RegistryError(`${what}: the registry stored it as ${got}`);
}

/**
 * Reads ranges of a stored blob for PATCH bodies and hashes them in order. The hash state at
 * each range start is kept, so a resume at a chunk start rewinds it; a resume elsewhere re-hashes
 * the prefix from the store (a local read).
 */
class RangeHasher {
  private hash: Hash = createHash('sha256');
  private hashedTo = 0;
  private readonly marks = new Map<number, Hash>();

  constructor(private readonly store: Store, private readonly b: UploadBlob, private readonly what: string) {}

  read(from: number, end: number, onBytes: (n: number) => void): FileBody {
    if (from !== this.hashedTo) {
      const mark = this.marks.get(from);
      if (mark) {
        this.hash = mark.copy();
        this.hashedTo = from;
      }
    }
    if (from === this.hashedTo) this.marks.set(from, this.hash.copy());
    let n = 0;
    const hashing = from === this.hashedTo;
    return new FileBody(this.store.content.blobPath(this.b.digest), from, end, {
      what: this.what,
      onChunk: (chunk) => {
        n += chunk.length;
        if (hashing && this.hashedTo === from + n - chunk.length) {
          this.hash.update(chunk);
          this.hashedTo += chunk.length;
        }
        onBytes(n);
      },
    });
  }

  /** Every byte was hashed in order: it must be the digest. Else hash the store's copy whole. */
  async check(): Promise<void> {
    if (this.hashedTo !== this.b.size) {
      // A resume at an offset that was not a chunk start: hash the stored blob itself.
      this.hash = createHash('sha256');
      for await (const c of this.store.content.openRead(this.b.digest, { what: this.what })) this.hash.update(c as Buffer);
      this.hashedTo = this.b.size;
    }
    const got = `sha256:${this.hash.copy().digest('hex')}`;
    if (got !== this.b.digest) throw new DigestMismatchError(this.b.digest, got, `${this.what} (read from the store)`);
  }
}
