/**
 * HTTP(S) proxies from the environment, as Go's `httpproxy` (docker, containerd, skopeo) and
 * curl read them:
 *
 *  - `HTTPS_PROXY` (else `https_proxy`) for https URLs, `HTTP_PROXY` (else `http_proxy`) for
 *    http URLs; no fallback from one to the other. A value without a scheme is `http://`;
 *    `https://` proxies are spoken to over TLS; socks is refused with a clear error.
 *  - `NO_PROXY` (else `no_proxy`): comma/space separated; `*` bypasses every host; an IP or a
 *    CIDR (`10.0.0.0/8`, `::1/128`) matches the IP host; `host` matches it and its subdomains,
 *    `.domain` (or `*.domain`) only the subdomains; `host:port` / `.domain:port` only that port.
 *    Case-insensitive. Unlike Go (which never proxies loopback), a loopback registry IS proxied
 *    unless NO_PROXY lists it, as curl does: list `localhost,127.0.0.1` to keep it direct.
 *  - https goes through a `CONNECT host:port` tunnel and TLS with the registry inside it; plain
 *    http as absolute-URI requests to the proxy. Credentials in the proxy URL
 *    (`http://user:pw@proxy:3128`) are sent as `Proxy-Authorization: Basic` to the proxy only —
 *    in the CONNECT request, never inside the tunnel; the registry's `Authorization` travels
 *    inside the TLS tunnel only. Proxy URLs appear in errors as their origin, never with
 *    credentials.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { Duplex } from 'node:stream';
import { InvalidArgumentError, RegistryError } from '../errors';

export interface ProxyConfig {
  https?: URL;
  http?: URL;
  noProxy: string;
}

function envAny(env: NodeJS.ProcessEnv, ...names: string[]): string {
  for (const n of names) {
    const v = env[n];
    if (v) return v.trim();
  }
  return '';
}

function parseProxyUrl(v: string, from: string): URL | undefined {
  if (!v) return undefined;
  let u: URL;
  try {
    u = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(v) ? v : `http://${v}`);
  } catch {
    throw new InvalidArgumentError(`${from}: not a valid proxy URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new InvalidArgumentError(`${from}: ${u.protocol.replace(':', '')} proxies are not supported (http:// or https:// only)`);
  return u;
}

/** The proxy settings of an environment (Go's precedence: upper case first). */
export function proxyConfig(env: NodeJS.ProcessEnv = process.env): ProxyConfig {
  const hs = envAny(env, 'HTTPS_PROXY', 'https_proxy');
  const h = envAny(env, 'HTTP_PROXY', 'http_proxy');
  return {
    https: parseProxyUrl(hs, env.HTTPS_PROXY ? 'HTTPS_PROXY' : 'https_proxy'),
    http: parseProxyUrl(h, env.HTTP_PROXY ? 'HTTP_PROXY' : 'http_proxy'),
    noProxy: envAny(env, 'NO_PROXY', 'no_proxy'),
  };
}

function defaultPort(u: URL): string {
  return u.port || (u.protocol === 'https:' ? '443' : '80');
}

/** Split `host`, `host:port`, `[v6]:port`, `v6` into lower-case host and port. */
function splitHostPort(s: string): { host: string; port?: string } {
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
  if (v6) return { host: v6[1].toLowerCase(), port: v6[2] };
  if (net.isIPv6(s)) return { host: s.toLowerCase() };
  const m = /^(.*):(\d+)$/.exec(s);
  return m ? { host: m[1].toLowerCase(), port: m[2] } : { host: s.toLowerCase() };
}

/** Does NO_PROXY exempt this URL? */
export function bypassProxy(url: URL, noProxy: string): boolean {
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase().replace(/\.$/, '');
  const port = defaultPort(url);
  const ipFamily = net.isIP(host);
  for (const raw of noProxy.split(/[,\s]+/)) {
    const entry = raw.trim().toLowerCase();
    if (!entry) continue;
    if (entry === '*') return true;
    const cidr = /^(.+)\/(\d{1,3})$/.exec(entry);
    if (cidr && net.isIP(cidr[1])) {
      if (!ipFamily) continue;
      const fam = net.isIP(cidr[1]) === 6 ? 'ipv6' : 'ipv4';
      const list = new net.BlockList();
      try {
        list.addSubnet(cidr[1], Number(cidr[2]), fam);
      } catch {
        continue;
      }
      if (list.check(host, ipFamily === 6 ? 'ipv6' : 'ipv4')) return true;
      continue;
    }
    const { host: h0, port: p } = splitHostPort(entry);
    if (p && p !== port) continue;
    if (net.isIP(h0)) {
      if (ipFamily && normalizeIp(h0) === normalizeIp(host)) return true;
      continue;
    }
    const h = h0.replace(/^\*\./, '.').replace(/\.$/, '');
    if (!h) continue;
    if (h.startsWith('.')) {
      if (host.endsWith(h)) return true;
    } else if (host === h || host.endsWith(`.${h}`)) return true;
  }
  return false;
}

function normalizeIp(ip: string): string {
  if (net.isIPv4(ip)) return ip;
  const b = new net.SocketAddress({ address: ip, family: 'ipv6' });
  return b.address;
}

/** The proxy for this URL, or undefined for a direct connection. */
export function proxyFor(url: URL, cfg: ProxyConfig): URL | undefined {
  const p = url.protocol === 'https:' ? cfg.https : cfg.http;
  if (!p) return undefined;
  return bypassProxy(url, cfg.noProxy) ? undefined : p;
}

/** `Proxy-Authorization` for a proxy URL with credentials. */
export function proxyAuthorization(proxy: URL): string | undefined {
  if (!proxy.username && !proxy.password) return undefined;
  const user = decodeURIComponent(proxy.username);
  const pw = decodeURIComponent(proxy.password);
  return `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}`;
}

/** The proxy as shown in errors: its origin, never its credentials. */
export function proxyLabel(proxy: URL): string {
  return `${proxy.protocol}//${proxy.host}`;
}

/** A proxy answered CONNECT with something else than 2xx (not retried: it is an answer). */
export class ProxyRefusedError extends RegistryError {
  constructor(message: string, status: number) {
    super(message, { status: status === 407 ? 401 : undefined });
    this.name = 'ProxyRefusedError';
  }
}

/**
 * An https agent whose connections are TLS inside a CONNECT tunnel through `proxy`. Sockets
 * are pooled per registry host as with a direct agent (keep-alive through the tunnel).
 */
export class TunnelAgent extends https.Agent {
  constructor(private readonly proxy: URL, opts: https.AgentOptions, private readonly proxyTls: tls.ConnectionOptions) {
    super(opts);
  }

  // Node's Agent accepts an asynchronous createConnection (callback form).
  override createConnection(options: tls.ConnectionOptions & { host?: string; port?: number; servername?: string }, cb: (err: Error | null, s?: Duplex) => void): undefined {
    const host = options.host ?? 'localhost';
    const port = options.port ?? 443;
    const target = `${net.isIPv6(host) ? `[${host}]` : host}:${port}`;
    const headers: Record<string, string> = { Host: target, 'User-Agent': 'imgtool/0.1' };
    const auth = proxyAuthorization(this.proxy);
    if (auth) headers['Proxy-Authorization'] = auth;
    const mod = this.proxy.protocol === 'https:' ? https : http;
    const req = mod.request({
      host: this.proxy.hostname.replace(/^\[|\]$/g, ''), port: Number(defaultPort(this.proxy)), method: 'CONNECT', path: target, headers, agent: false,
      ...(this.proxy.protocol === 'https:' ? this.proxyTls : {}),
    });
    let done = false;
    const finish = (err: Error | null, s?: Duplex) => {
      if (done) return;
      done = true;
      cb(err, s);
    };
    req.once('connect', (res: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
      const status = res.statusCode ?? 0;
      if (status < 200 || status >= 300) {
        socket.destroy();
        const why = status === 407 ? '; the proxy wants credentials (user:password@ in the proxy URL)' : '';
        return finish(new ProxyRefusedError(`proxy ${proxyLabel(this.proxy)} refused CONNECT to ${target} (${status}${res.statusMessage ? ` ${res.statusMessage}` : ''})${why}`, status));
      }
      if (head.length) socket.unshift(head);
      const { host: _h, port: _p, ...rest } = options;
      void _h;
      void _p;
      const t = tls.connect({ ...rest, socket, host, servername: options.servername || (net.isIP(host) ? undefined : host) });
      finish(null, t);
    });
    req.once('error', (e: NodeJS.ErrnoException) => {
      const err = new Error(`proxy ${proxyLabel(this.proxy)}: ${e.code ? `${e.code}: ` : ''}${e.message.replace(/\/\/[^@/\s]*@/g, '//')}`) as NodeJS.ErrnoException;
      err.code = e.code;
      finish(err);
    });
    req.end();
    return undefined;
  }
}
