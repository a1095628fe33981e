/**
 * One registry host spoken to over the OCI distribution API: scheme choice, auth, errors.
 *
 * Scheme: HTTPS. Plain HTTP only when `--insecure` is given, or for a loopback host
 * (`localhost`, `127.0.0.0/8`, `::1`) — as docker does — and only after HTTPS failed at the TLS
 * level. Credentials (Basic, or sent to a token realm) never go over plain HTTP unless
 * `--insecure`: a loopback registry over HTTP is anonymous-only without it.
 *
 * Auth: anonymous first; on 401 the `WWW-Authenticate` challenge decides — Basic with the stored
 * credentials, or Bearer: a token from the realm (`service`, one `scope` per repository action
 * set; Basic credentials to the realm when there are some), cached per scope until 10 s before
 * `expires_in` (default 60 s) runs out. One retry per request after a challenge (the body is a
 * factory and reopened); a second 401 is a clear error naming the registry and repository.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { RegistryError } from '../errors';
import { Credentials, apiHost, findCredentials, parseChallenges, AuthEnv } from './auth';
import type { FileBody } from './filebody';
import { HttpResponse, Transport, TransportOptions, discard, isPlainHttpServer, isTlsError, readBody } from './http';

export interface ClientOptions extends TransportOptions, AuthEnv {
  /** Docker's per-registry certificate directories (default `$IMGTOOL_CERTS_D` or /etc/docker/certs.d). */
  certsDir?: string;
  /** Credentials to use instead of the configured ones (login). */
  credentials?: Credentials | null;
}

export interface RegistryRequest {
  method: string;
  /** Path under the registry root, e.g. `/v2/library/x/manifests/1`, or an absolute URL (upload sessions). */
  path: string;
  /** Repository scopes: `[['library/x', 'pull']]`, or `[['a','pull'],['b','pull,push']]` for a mount. */
  scopes: Array<[string, string]>;
  headers?: Record<string, string>;
  body?: Buffer | (() => Readable | FileBody);
  what: string;
  noRedirect?: boolean;
  /** Transport retries for this request (0: the caller resumes, e.g. an upload chunk). */
  retries?: number;
  /** A bulk download (blob GET): see HttpRequest.bulk. */
  bulk?: boolean;
}

/**
 * As docker and containerd read `/etc/docker/certs.d/HOST[:PORT]/`: every `*.crt` is a CA,
 * `NAME.cert` + `NAME.key` a client certificate.
 */
function certsFor(dir: string, host: string): { ca?: string[]; cert?: string; key?: string } {
  const d = path.join(dir, host);
  let names: string[];
  try {
    names = fs.readdirSync(d).sort();
  } catch {
    return {};
  }
  const read = (n: string) => fs.readFileSync(path.join(d, n), 'utf8');
  const ca = names.filter((n) => n.endsWith('.crt')).map(read);
  const cert = names.find((n) => n.endsWith('.cert') && names.includes(n.replace(/\.cert$/, '.key')));
  return { ca: ca.length ? ca : undefined, ...(cert ? { cert: read(cert), key: read(cert.replace(/\.cert$/, '.key')) } : {}) };
}

const LOOPBACK = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])(?::\d+)?$/i;

export function isLoopback(host: string): boolean {
  return LOOPBACK.test(host);
}

interface Token { value: string; expiresAt: number }

export class RegistryClient {
  /** Reference domain (`docker.io`, `127.0.0.1:5000`). */
  readonly domain: string;
  /** Host the API lives on. */
  readonly host: string;
  private scheme: 'https:' | 'http:' | undefined;
  private readonly transport: Transport;
  private creds: Credentials | null | undefined;
  private basic = false;
  private bearer: { realm: string; service?: string } | undefined;
  private readonly tokens = new Map<string, Token>();
  private readonly pendingTokens = new Map<string, Promise<Token>>();
  /** Bytes sent in request bodies (for --json). */
  bytesSent = 0;

  constructor(domain: string, private readonly opts: ClientOptions = {}) {
    this.domain = domain;
    this.host = apiHost(domain);
    this.transport = new Transport({ ...opts, ...certsFor(opts.certsDir ?? (opts.env ?? process.env).IMGTOOL_CERTS_D ?? '/etc/docker/certs.d', this.host) });
    this.creds = opts.credentials;
  }

  close(): void {
    this.transport.close();
  }

  /** Base backoff of the transport (ms), for callers that resume transfers themselves. */
  get backoffMs(): number {
    return this.transport.backoffMs;
  }

  get insecure(): boolean {
    return !!this.opts.insecure;
  }

  private async credentials(): Promise<Credentials | null> {
    if (this.creds === undefined) this.creds = (await findCredentials(this.domain, this.opts)) ?? null;
    return this.creds;
  }

  private httpAllowed(): boolean {
    return this.insecure || isLoopback(this.host);
  }

  /** Root URL (scheme decided on the first request). */
  private base(): URL {
    return new URL(`${this.scheme ?? 'https:'}//${this.host}`);
  }

  private canSendSecrets(url: URL): void {
    if (url.protocol === 'https:' || this.insecure) return;
    throw new RegistryError(`registry ${this.domain} asks for credentials over plain HTTP (${url.origin}); refusing to send them without --insecure`, { code: 'UNAUTHORIZED' });
  }

  private scopeKey(scopes: Array<[string, string]>): string {
    return scopes.map(([r, a]) => `repository:${r}:${a}`).join(' ');
  }

  private async authHeader(scopes: Array<[string, string]>): Promise<string | undefined> {
    if (this.bearer) {
      const key = this.scopeKey(scopes);
      const t = this.tokens.get(key);
      if (t && t.expiresAt - 10_000 >= Date.now()) return `Bearer ${t.value}`;
      // Parallel transfers share one token request per scope.
      let p = this.pendingTokens.get(key);
      if (!p) {
        p = this.fetchToken(scopes).finally(() => this.pendingTokens.delete(key));
        this.pendingTokens.set(key, p);
      }
      return `Bearer ${(await p).value}`;
    }
    if (this.basic) {
      const c = await this.credentials();
      if (c) {
        this.canSendSecrets(this.base());
        return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
      }
    }
    return undefined;
  }

  private async fetchToken(scopes: Array<[string, string]>): Promise<Token> {
    const b = this.bearer!;
    let realm: URL;
    try {
      realm = new URL(b.realm);
    } catch {
      throw new RegistryError(`registry ${this.domain}: invalid token realm in its challenge`);
    }
    if (b.service) realm.searchParams.set('service', b.service);
    for (const s of this.scopeKey(scopes).split(' ')) if (s) realm.searchParams.append('scope', s);
    const headers: Record<string, string> = { Accept: 'application/json' };
    const c = await this.credentials();
    if (c) {
      this.canSendSecrets(realm);
      headers.Authorization = `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
    }
    const res = await this.transport.send({ method: 'GET', url: realm, headers, what: `token for ${this.domain}` });
    if (res.status !== 200) {
      discard(res.body);
      throw new RegistryError(
        res.status === 401 || res.status === 403
          ? `registry ${this.domain}: ${c ? `credentials from ${c.source} were refused` : 'anonymous access refused'} by its token service (${res.status})`
          : `registry ${this.domain}: token service answered ${res.status}`,
        { status: res.status === 403 ? 403 : res.status === 401 ? 401 : undefined },
      );
    }
    const body = await readBody(res.body, 1 << 20, `token for ${this.domain}`);
    let j: { token?: string; access_token?: string; expires_in?: number };
    try {
      j = JSON.parse(body.toString('utf8'));
    } catch {
      throw new RegistryError(`registry ${this.domain}: token service gave invalid JSON`);
    }
    const value = j.token ?? j.access_token;
    if (!value || typeof value !== 'string') throw new RegistryError(`registry ${this.domain}: token service gave no token`);
    const ttl = typeof j.expires_in === 'number' && j.expires_in > 0 ? j.expires_in : 60;
    const t = { value, expiresAt: Date.now() + ttl * 1000 };
    this.tokens.set(this.scopeKey(scopes), t);
    return t;
  }

  /** Take a 401's challenge into account. Returns false when nothing new can be tried. */
  private async onChallenge(res: HttpResponse, scopes: Array<[string, string]>, tried: boolean): Promise<boolean> {
    const chs = parseChallenges(res.headers['www-authenticate']);
    const bearer = chs.find((c) => c.scheme === 'bearer' && c.params.realm);
    if (bearer) {
      const fresh = !this.bearer || this.bearer.realm !== bearer.params.realm;
      this.bearer = { realm: bearer.params.realm, service: bearer.params.service };
      this.tokens.delete(this.scopeKey(scopes));
      return fresh || !tried;
    }
    if (chs.some((c) => c.scheme === 'basic')) {
      const c = await this.credentials();
      if (!c || (this.basic && tried)) return false;
      this.basic = true;
      return true;
    }
    return false;
  }

  /** Send a request with auth; 401 challenges are answered once. The caller handles other statuses. */
  async request(req: RegistryRequest): Promise<HttpResponse> {
    let challenged = false;
    for (let attempt = 0; attempt < 3; attempt++) {
      const url = /^https?:\/\//.test(req.path) ? new URL(req.path) : new URL(req.path, this.base());
      const headers: Record<string, string> = { ...(req.headers ?? {}) };
      // Credentials only for the registry itself (an upload Location may point elsewhere).
      const auth = url.host === this.base().host ? await this.authHeader(req.scopes) : undefined;
      if (auth) {
        this.canSendSecrets(url);
        headers.Authorization = auth;
      }
      let res: HttpResponse;
      try {
        res = await this.transport.send({ method: req.method, url, headers, body: req.body, what: req.what, noRedirect: req.noRedirect, retries: req.retries, bulk: req.bulk });
      } catch (e) {
        // Fall back to HTTP only when the server does not speak TLS at all; a certificate
        // that does not verify is an error, never a reason to drop TLS.
        if (this.scheme !== 'https:' && url.protocol === 'https:' && isPlainHttpServer(e) && this.httpAllowed()) {
          this.scheme = 'http:';
          continue;
        }
        if (isTlsError(e)) {
          const why = (e as { causeMessage?: string }).causeMessage ?? (e as Error).message;
          throw new RegistryError(`${req.what}: TLS with ${this.host} failed: ${tlsReason(why)}${this.insecure ? '' : '; --insecure skips verification, --ca-file adds a CA'}`);
        }
        throw e;
      }
      this.scheme ??= url.protocol as 'https:' | 'http:';
      if (res.status === 401) {
        if (challenged && this.bearer) {
          // A token was sent and lacks the access: a permission problem, not bad credentials.
          const ch = parseChallenges(res.headers['www-authenticate']).find((c) => c.scheme === 'bearer');
          if (ch?.params.error === 'insufficient_scope') {
            discard(res.body);
            const [repo, actions] = req.scopes[req.scopes.length - 1] ?? ['', ''];
            throw new RegistryError(`registry ${this.domain}: no permission to ${actions.includes('push') ? 'push to' : 'pull from'} ${repo} (insufficient_scope)`, { status: 403 });
          }
        }
        const again = await this.onChallenge(res, req.scopes, challenged);
        discard(res.body);
        if (again && !challenged) {
          challenged = true;
          continue;
        }
        const c = await this.credentials();
        const repo = req.scopes.map((s) => s[0]).join(', ');
        throw new RegistryError(
          c ? `registry ${this.domain}: credentials from ${c.source} were refused for ${repo} (401)`
            : `registry ${this.domain}: authentication required for ${repo} (401); run imgtool login ${this.domain}`,
          { status: 401 },
        );
      }
      return res;
    }
    throw new RegistryError(`${req.what}: authentication did not settle`);
  }

  /** Turn an unexpected response into one clear error line (the body's distribution error codes). */
  async fail(res: HttpResponse, what: string): Promise<never> {
    let detail = '';
    try {
      const b = await readBody(res.body, 64 * 1024, what);
      const j = JSON.parse(b.toString('utf8')) as { errors?: Array<{ code?: string; message?: string }> };
      if (Array.isArray(j.errors) && j.errors.length) {
        detail = j.errors.map((e) => [e.code, e.message].filter(Boolean).join(': ')).join('; ');
      }
    } catch {
      /* no JSON body */
    }
    const reason =
      res.status === 404 ? 'not found' : res.status === 403 ? 'permission denied' : res.status === 401 ? 'unauthorized' : `HTTP ${res.status}`;
    throw new RegistryError(`${what}: ${reason}${detail ? ` (${detail.slice(0, 300)})` : ''} (${res.status})`, { status: res.status });
  }
}

/** One short line for a TLS failure (OpenSSL messages are long and multi-line). */
function tlsReason(msg: string): string {
  if (/wrong version number/i.test(msg)) return 'the server does not speak TLS (plain HTTP?)';
  const m = /(self[- ]signed certificate[^\n:]*|unable to verify the first certificate|certificate has expired|Hostname\/IP does not match[^\n]*|unable to get local issuer certificate)/i.exec(msg);
  return m ? m[1] : msg.split('\n')[0].slice(0, 200);
}
