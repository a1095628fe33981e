/**
 * Small real proxies for the registry tests (they stand for the network, never for a registry):
 *
 * - `startForwardProxy`: an HTTP forward proxy as corporate networks have (squid-like): `CONNECT
 *   host:port` opens a TCP tunnel (https), an absolute-URI request is forwarded (plain http).
 *   It records every tunnel target and every forwarded URL with the headers the proxy itself
 *   saw, can demand Proxy-Authorization, and can refuse every CONNECT with a status.
 * - `startCuttingProxy`: a reverse proxy in front of a registry that forwards everything and
 *   cuts the connection of selected requests after a number of body bytes (a reset mid-upload),
 *   recording every request line so a test can see how the client resumed.
 */
import * as http from 'node:http';
import * as net from 'node:net';
import { AddressInfo } from 'node:net';

export interface ProxySeen {
  /** `host:port` of a CONNECT, or the absolute URL of a forwarded request. */
  target: string;
  method: string;
  /** Headers the proxy received (the tunnelled bytes are TLS: never seen). */
  headers: http.IncomingHttpHeaders;
  /** What the proxy answered. */
  status: number;
}

export interface ForwardProxy {
  /** `http://[user:pw@]127.0.0.1:PORT` */
  url: string;
  port: number;
  tunnels: ProxySeen[];
  forwarded: ProxySeen[];
  close(): Promise<void>;
}

export async function startForwardProxy(opts: { auth?: string; refuse?: number } = {}): Promise<ForwardProxy> {
  const tunnels: ProxySeen[] = [];
  const forwarded: ProxySeen[] = [];
  const want = opts.auth ? `Basic ${Buffer.from(opts.auth).toString('base64')}` : undefined;
  const sockets = new Set<net.Socket>();
  const srv = http.createServer((req, res) => {
    const seen: ProxySeen = { target: req.url ?? '', method: req.method ?? '', headers: req.headers, status: 0 };
    forwarded.push(seen);
    if (want && req.headers['proxy-authorization'] !== want) {
      seen.status = 407;
      res.writeHead(407, { 'Proxy-Authenticate': 'Basic realm="test-proxy"' }).end();
      return;
    }
    let u: URL;
    try {
      u = new URL(req.url ?? '');
    } catch {
      seen.status = 400;
      res.writeHead(400).end('absolute URI required');
      return;
    }
    const headers = { ...req.headers };
    delete headers['proxy-authorization'];
    delete headers['proxy-connection'];
    const up = http.request({ host: u.hostname, port: Number(u.port || 80), method: req.method, path: u.pathname + u.search, headers }, (ur) => {
      seen.status = ur.statusCode ?? 502;
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  srv.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    const seen: ProxySeen = { target: req.url ?? '', method: 'CONNECT', headers: req.headers, status: 0 };
    tunnels.push(seen);
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => undefined);
    const answer = (status: number, text: string, extra = '') => {
      seen.status = status;
      client.end(`HTTP/1.1 ${status} ${text}\r\n${extra}Content-Length: 0\r\n\r\n`);
    };
    if (opts.refuse) return answer(opts.refuse, 'Forbidden');
    if (want && req.headers['proxy-authorization'] !== want) return answer(407, 'Proxy Authentication Required', 'Proxy-Authenticate: Basic realm="test-proxy"\r\n');
    const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(req.url ?? '');
    if (!m) return answer(400, 'Bad Request');
    const upstream = net.connect(Number(m[2]), m[1], () => {
      seen.status = 200;
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as AddressInfo).port;
  return {
    url: `http://${opts.auth ? `${opts.auth}@` : ''}127.0.0.1:${port}`,
    port, tunnels, forwarded,
    close: () => new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      srv.closeAllConnections();
      srv.close(() => r());
    }),
  };
}

export interface CutRule {
  /** Which requests are cut (method + URL path/query). */
  match(method: string, url: string): boolean;
  /** Cut after this many request-body bytes reached the registry. */
  afterBytes: number;
  /** How many matching requests are cut (the later ones pass). */
  times: number;
}

export interface CuttingProxy {
  /** `127.0.0.1:PORT`, to use as the registry host. */
  host: string;
  /** `METHOD URL` of every request, in order, with the status answered (0 when cut). */
  log: Array<{ method: string; url: string; status: number; contentRange?: string; range?: string }>;
  cuts(): number;
  close(): Promise<void>;
}

/**
 * Reverse proxy in front of `upstream` (`host:port`, plain HTTP) that resets the client's
 * connection once `afterBytes` of a matching request's body went through, `times` times.
 * Upload Locations are rewritten to point back at the proxy (the registry names its own host).
 */
export async function startCuttingProxy(upstream: string, rule: CutRule): Promise<CuttingProxy> {
  const [uh, up] = upstream.split(':');
  const log: CuttingProxy['log'] = [];
  let cut = 0;
  let self = '';
  const srv = http.createServer((req, res) => {
    const entry = { method: req.method ?? '', url: req.url ?? '', status: 0, contentRange: req.headers['content-range'] as string | undefined, range: undefined as string | undefined };
    log.push(entry);
    const cutThis = cut < rule.times && rule.match(entry.method, entry.url);
    if (cutThis) cut++;
    const upReq = http.request({ host: uh, port: Number(up), method: req.method, path: req.url, headers: req.headers }, (ur) => {
      entry.status = ur.statusCode ?? 502;
      entry.range = ur.headers.range as string | undefined;
      const h = { ...ur.headers };
      if (typeof h.location === 'string') h.location = h.location.replace(`//${upstream}`, `//${self}`);
      res.writeHead(ur.statusCode ?? 502, h);
      ur.pipe(res);
    });
    upReq.on('error', () => res.destroy());
    if (!cutThis) return void req.pipe(upReq);
    let sent = 0;
    req.on('data', (c: Buffer) => {
      if (sent + c.length >= rule.afterBytes) {
        upReq.write(c.subarray(0, Math.max(0, rule.afterBytes - sent)));
        sent = rule.afterBytes;
        req.socket.destroy(); // the client sees a reset
        upReq.destroy(); // and so does the registry: the request body ends early
        return;
      }
      sent += c.length;
      upReq.write(c);
    });
    req.on('end', () => upReq.end());
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  self = `127.0.0.1:${(srv.address() as AddressInfo).port}`;
  return {
    host: self, log, cuts: () => cut,
    close: () => new Promise<void>((r) => {
      srv.closeAllConnections();
      srv.close(() => r());
    }),
  };
}
