/**
 * HTTP transport for the registry client: node:http/https (not fetch) because uploads stream a
 * blob with an exact Content-Length and downloads must be consumed as node streams; keep-alive
 * agents, one pair per client.
 *
 * Rules enforced here, whatever the caller asks:
 *  - Redirects are followed by imgtool itself (at most 8). A change of origin drops the
 *    `Authorization` header; https -> http is refused. Redirect URLs (presigned URLs are
 *    credentials) never appear in errors: only their origin does.
 *  - Retries with exponential backoff (bounded: `retries`, default 3) on 5xx, 429 (honouring
 *    `Retry-After`, capped) and connection resets/refusals; a request body is a factory so it
 *    can be reopened from the store for each attempt (a streamed body cannot be replayed).
 *  - No header value is ever logged or put in an error.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import * as fs from 'node:fs';
import * as tls from 'node:tls';
import { Readable } from 'node:stream';
import { ImgtoolError, InvalidArgumentError, RegistryError } from '../errors';
import { cancelledError } from '../cancel';
import { IDLE_TIMEOUT_MS, PROTOCOL_ERROR, WireError, WirePool } from './wire';
import { FileBody } from './filebody';
import { ProxyConfig, ProxyRefusedError, TunnelAgent, proxyAuthorization, proxyConfig, proxyFor, proxyLabel } from './proxy';

export interface TransportOptions {
  /** Unverified TLS (and plain HTTP, decided by the client). */
  insecure?: boolean;
  /** Extra CA certificates (PEM file). */
  caFile?: string;
  /** More CA certificates (PEM text), e.g. from /etc/docker/certs.d/HOST/*.crt. */
  ca?: string[];
  /** Client certificate and key (PEM text), e.g. /etc/docker/certs.d/HOST/client.cert + .key. */
  cert?: string;
  key?: string;
  /** Attempts after the first on retryable failures. */
  retries?: number;
  /** Base backoff in ms (doubles each attempt). */
  backoffMs?: number;
  /** A request that hears nothing for this long fails (retried/resumed as a cut connection); default 60 s (10× with a request body). */
  idleTimeoutMs?: number;
  /** Where HTTPS_PROXY / HTTP_PROXY / NO_PROXY are read (default process.env): see proxy.ts. */
  env?: NodeJS.ProcessEnv;
}

export interface HttpRequest {
  method: string;
  url: URL;
  headers?: Record<string, string>;
  /** A body, or a factory reopening it for each attempt (a FileBody: a file range, sent from recycled buffers). */
  body?: Buffer | (() => Readable | FileBody);
  /** What the request is for, in errors: `manifest docker.io/x:1`. */
  what: string;
  /** Do not follow redirects (the caller wants the Location, e.g. upload sessions). */
  noRedirect?: boolean;
  /** Attempts after the first for this request (default: the transport's). 0 for an upload chunk: its caller resumes. */
  retries?: number;
  /**
   * A bulk download (a blob GET): sent over the lean client in ./wire.ts, whose body can be
   * drained into a sink without fresh allocations (not through a proxy: that stays node:http).
   */
  bulk?: boolean;
}

/** A response body: node's IncomingMessage, or the lean client's WireBody (drainable into a sink). */
export type ResponseBody = Readable & { headers: http.IncomingHttpHeaders };

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: ResponseBody;
  /** URL that answered (after redirects). */
  url: URL;
}

const RETRYABLE_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED', 'EAI_AGAIN', 'UND_ERR_SOCKET']);
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 8;
const MAX_RETRY_AFTER_MS = 10_000;

/** Is this a network error worth retrying? */
export function isRetryableNetworkError(e: unknown): boolean {
  const code = e instanceof NetworkError ? e.netCode : (e as NodeJS.ErrnoException)?.code;
  return !!code && RETRYABLE_CODES.has(code);
}

/** Was this failure a cut connection (worth resuming a transfer)? */
export function isCutConnection(e: unknown): boolean {
  return isRetryableNetworkError(e) || /aborted|premature close|socket hang up/i.test((e as Error)?.message ?? '');
}

/** TLS-level failure (plain HTTP server, bad certificate): not retried. */
export function isTlsError(e: unknown): boolean {
  const code = (e instanceof NetworkError ? e.netCode : (e as NodeJS.ErrnoException)?.code) ?? '';
  const msg = e instanceof NetworkError ? e.causeMessage : (e as Error)?.message ?? '';
  return code === 'EPROTO' || code.startsWith('ERR_SSL') || /wrong version number|SSL routines|certificate|self.signed|unable to verify/i.test(msg) ||
    code === 'DEPTH_ZERO_SELF_SIGNED_CERT' || code === 'SELF_SIGNED_CERT_IN_CHAIN' || code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' || code === 'CERT_HAS_EXPIRED' || code === 'ERR_TLS_CERT_ALTNAME_INVALID';
}

/** HTTPS spoken to a plain-HTTP server (OpenSSL "wrong version number"). */
export function isPlainHttpServer(e: unknown): boolean {
  const msg = e instanceof NetworkError ? e.causeMessage : (e as Error)?.message ?? '';
  return /wrong version number|packet length too long|http request/i.test(msg);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Drain and discard a response body. */
export function discard(res: Readable): void {
  res.resume();
  res.on('error', () => undefined);
}

/** Read a (small) response body, refusing more than `cap` bytes. */
export async function readBody(res: ResponseBody, cap: number, what: string): Promise<Buffer> {
  const len = Number(res.headers['content-length']);
  if (Number.isFinite(len) && len > cap) {
    res.destroy();
    throw new RegistryError(`${what}: ${len} bytes, over the ${cap}-byte limit`, { code: 'INVALID_ARGUMENT' });
  }
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res) {
    n += (c as Buffer).length;
    if (n > cap) {
      res.destroy();
      throw new RegistryError(`${what}: more than the ${cap}-byte limit`, { code: 'INVALID_ARGUMENT' });
    }
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

export class Transport {
  private readonly httpAgent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  private readonly httpsAgent: https.Agent;
  private readonly agentOpts: https.AgentOptions;
  private readonly proxies: ProxyConfig;
  /** One tunnelling agent per proxy (sockets pooled per registry host inside it). */
  private readonly tunnels = new Map<string, TunnelAgent>();
  /** Connections for bulk downloads (see ./wire.ts), made on first use. */
  private wire_: WirePool | undefined;
  readonly retries: number;
  readonly backoffMs: number;

  constructor(readonly opts: TransportOptions = {}) {
    const extra = [...(opts.ca ?? [])];
    if (opts.caFile) {
      try {
        extra.push(fs.readFileSync(opts.caFile, 'utf8'));
      } catch (e) {
        throw new InvalidArgumentError(`--ca-file ${opts.caFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
    }
    this.agentOpts = {
      keepAlive: true, maxSockets: 16, rejectUnauthorized: !opts.insecure,
      ...(extra.length ? { ca: [...tls.rootCertificates, ...extra] } : {}),
      ...(opts.cert && opts.key ? { cert: opts.cert, key: opts.key } : {}),
    };
    this.httpsAgent = new https.Agent(this.agentOpts);
    this.proxies = proxyConfig(opts.env ?? process.env);
    this.retries = opts.retries ?? 3;
    this.backoffMs = opts.backoffMs ?? 200;
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
    this.wire_?.close();
    for (const a of this.tunnels.values()) a.destroy();
  }

  private tunnelAgent(proxy: URL): TunnelAgent {
    let a = this.tunnels.get(proxy.href);
    if (!a) {
      const { ca, rejectUnauthorized } = this.agentOpts;
      this.tunnels.set(proxy.href, (a = new TunnelAgent(proxy, this.agentOpts, { ca, rejectUnauthorized })));
    }
    return a;
  }

  /** One request with redirects and retries. The caller consumes (or discards) `body`. */
  async send(req: HttpRequest): Promise<HttpResponse> {
    const retries = req.retries ?? this.retries;
    for (let attempt = 0; ; attempt++) {
      const c = cancelledError(req.what);
      if (c) throw c;
      let res: HttpResponse;
      try {
        res = await this.follow(req);
      } catch (e) {
        if (attempt < retries && isRetryableNetworkError(e)) {
          await sleep(this.backoffMs * 2 ** attempt);
          continue;
        }
        throw e;
      }
      if ((res.status >= 500 || res.status === 429) && attempt < retries) {
        discard(res.body);
        await sleep(retryDelay(res.headers['retry-after'], this.backoffMs * 2 ** attempt));
        continue;
      }
      return res;
    }
  }

  private async follow(req: HttpRequest): Promise<HttpResponse> {
    let url = req.url;
    let method = req.method;
    let body = req.body;
    const headers = { ...(req.headers ?? {}) };
    for (let hop = 0; ; hop++) {
      const res = await this.once(method, url, headers, body, req.what, req.bulk);
      if (req.noRedirect || !REDIRECTS.has(res.status) || !res.headers.location) return { ...res, url };
      discard(res.body);
      if (hop >= MAX_REDIRECTS) throw new RegistryError(`${req.what}: more than ${MAX_REDIRECTS} redirects (last to ${url.origin})`);
      let next: URL;
      try {
        next = new URL(res.headers.location, url);
      } catch {
        throw new RegistryError(`${req.what}: redirect from ${url.origin} to an invalid location`);
      }
      if (url.protocol === 'https:' && next.protocol !== 'https:') {
        throw new RegistryError(`${req.what}: refusing a redirect from ${url.origin} to ${next.protocol}//${next.host} (https to ${next.protocol.replace(':', '')})`);
      }
      if (next.protocol !== 'https:' && next.protocol !== 'http:') throw new RegistryError(`${req.what}: redirect to unsupported scheme ${next.protocol}`);
      if (next.origin !== url.origin) {
        // Credentials are for the registry: never sent to blob storage or a CDN.
        for (const k of Object.keys(headers)) if (k.toLowerCase() === 'authorization') delete headers[k];
      }
      if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === 'POST')) {
        method = method === 'HEAD' ? 'HEAD' : 'GET';
        body = undefined;
        for (const k of Object.keys(headers)) if (/^content-/i.test(k)) delete headers[k];
      }
      url = next;
    }
  }

  private once(method: string, url: URL, headers: Record<string, string>, body: HttpRequest['body'], what: string, bulk?: boolean): Promise<Omit<HttpResponse, 'url'>> {
    if (bulk && method === 'GET' && !body && !proxyFor(url, this.proxies)) {
      const { ca, cert, key, rejectUnauthorized } = this.agentOpts;
      this.wire_ ??= new WirePool({ tls: { ca, cert, key, rejectUnauthorized }, idleTimeoutMs: this.opts.idleTimeoutMs });
      return this.wire_.request(url, { 'User-Agent': 'imgtool/0.1', ...headers }).catch((e: Error) => {
        throw wrapNetworkError(e, url, what);
      });
    }
    return new Promise((resolve, reject) => {
      const h: Record<string, string> = { 'User-Agent': 'imgtool/0.1', ...headers };
      const src = typeof body === 'function' ? body() : body;
      if (Buffer.isBuffer(src) || src instanceof FileBody) h['Content-Length'] = String(src.length);
      const onRes = (res: http.IncomingMessage) => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res });
      const proxy = proxyFor(url, this.proxies);
      let r: http.ClientRequest;
      if (!proxy) {
        r = url.protocol === 'https:' ? https.request(url, { method, headers: h, agent: this.httpsAgent }, onRes) : http.request(url, { method, headers: h, agent: this.httpAgent }, onRes);
      } else if (url.protocol === 'https:') {
        // TLS with the registry inside a CONNECT tunnel: the proxy sees only the target host:port.
        r = https.request(url, { method, headers: h, agent: this.tunnelAgent(proxy) }, onRes);
      } else {
        // Plain http: an absolute-URI request to the proxy.
        const pa = proxyAuthorization(proxy);
        const ph: Record<string, string> = { ...h, Host: url.host, ...(pa ? { 'Proxy-Authorization': pa } : {}) };
        const opts = { host: proxy.hostname.replace(/^\[|\]$/g, ''), port: Number(proxy.port || (proxy.protocol === 'https:' ? 443 : 80)), path: url.href, method, headers: ph };
        const onProxyRes = (res: http.IncomingMessage) => {
          if (res.statusCode !== 407) return onRes(res);
          discard(res);
          reject(new RegistryError(`${what}: proxy ${proxyLabel(proxy)} wants credentials (407); put user:password@ in the proxy URL`, { status: 401 }));
        };
        r = proxy.protocol === 'https:' ? https.request({ ...opts, agent: this.httpsAgent }, onProxyRes) : http.request({ ...opts, agent: this.httpAgent }, onProxyRes);
      }
      // Silence while a response is owed: a cut (retried, or resumed by the caller), never a hang.
      // With a body, the registry may be silent while it commits a large blob (storage backends
      // copy it): ten times as long before that counts as a stall.
      const idle = (this.opts.idleTimeoutMs ?? IDLE_TIMEOUT_MS) * (src ? 10 : 1);
      r.setTimeout(idle, () => r.destroy(Object.assign(new Error(`timed out: nothing from the server for ${Math.round(idle / 1000)} s`), { code: 'ETIMEDOUT' })));
      r.on('error', (e) => {
        if (src && !Buffer.isBuffer(src)) src.destroy();
        reject(e instanceof ProxyRefusedError ? new RegistryError(`${what}: ${e.message}`, { status: e.status }) : wrapNetworkError(e, url, what));
      });
      if (!src) r.end();
      else if (Buffer.isBuffer(src)) r.end(src);
      else if (src instanceof FileBody) src.pipeTo(r);
      else {
        src.on('error', (e) => r.destroy(e));
        src.pipe(r);
      }
    });
  }
}

function retryDelay(header: string | undefined, fallback: number): number {
  if (!header) return fallback;
  const s = Number(header);
  if (Number.isFinite(s)) return Math.min(Math.max(0, s * 1000), MAX_RETRY_AFTER_MS);
  const t = Date.parse(header);
  if (Number.isFinite(t)) return Math.min(Math.max(0, t - Date.now()), MAX_RETRY_AFTER_MS);
  return fallback;
}

/** A connection-level failure: the message names the origin only, never the path or query. */
export class NetworkError extends RegistryError {
  constructor(message: string, readonly netCode: string | undefined, readonly causeMessage: string) {
    super(message);
    this.name = 'NetworkError';
  }
}

function wrapNetworkError(e: Error, url: URL, what: string): Error {
  // imgtool's own errors (a store blob that fails its digest while streamed as a body) stay as they are.
  if (e instanceof ImgtoolError || e.name === 'CancelledError') return e;
  // The wire client's protocol errors say what was wrong; their code adds nothing for a reader.
  const code = e instanceof WireError && e.code === PROTOCOL_ERROR ? undefined : (e as NodeJS.ErrnoException).code;
  return new NetworkError(`${what}: ${url.origin}: ${code ? `${code}: ` : ''}${e.message.replace(/https?:\/\/\S+/g, '<url>')}`, code, e.message);
}
