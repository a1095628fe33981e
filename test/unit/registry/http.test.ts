/**
 * The registry transport's own rules (redirects, retries), against local HTTP(S) servers that
 * stand for blob storage / a flaky network — not for a registry (the registry tests use the
 * real docker-registry: test/interop/registry.test.ts).
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { AddressInfo } from 'node:net';
import { Transport, readBody } from '../../../src/registry/http';
import { RegistryError } from '../../../src/errors';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

function serve(h: Handler, tlsOpts?: { key: Buffer; cert: Buffer }): Promise<{ url: string; close: () => Promise<void>; hits: http.IncomingHttpHeaders[] }> {
  const hits: http.IncomingHttpHeaders[] = [];
  const wrap: Handler = (req, res) => {
    hits.push(req.headers);
    h(req, res);
  };
  const srv = tlsOpts ? https.createServer(tlsOpts, wrap) : http.createServer(wrap);
  return new Promise((resolve) => {
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as AddressInfo).port;
      resolve({
        url: `${tlsOpts ? 'https' : 'http'}://127.0.0.1:${port}`, hits,
        close: () => new Promise<void>((r) => { srv.closeAllConnections?.(); srv.close(() => r()); }),
      });
    });
  });
}

describe('registry transport', () => {
  let t: Transport;
  beforeEach(() => {
    t = new Transport({ retries: 2, backoffMs: 1, insecure: true });
  });
  afterEach(() => t.close());

  it('follows a redirect to another origin without the Authorization header; same origin keeps it', async () => {
    const storage = await serve((_q, r) => r.end('blob'));
    const storageUrl = storage.url.replace('127.0.0.1', 'localhost'); // another origin
    const reg = await serve((q, r) => {
      if (q.url === '/same') return r.writeHead(307, { Location: '/final' }).end();
      if (q.url === '/final') return r.end('same');
      r.writeHead(307, { Location: `${storageUrl}/bucket/blob?X-Amz-Signature=secret` }).end();
    });
    try {
      const res = await t.send({ method: 'GET', url: new URL(`${reg.url}/v2/x/blobs/sha256:1`), headers: { Authorization: 'Bearer TOKEN' }, what: 'blob' });
      expect((await readBody(res.body, 100, 'x')).toString()).toBe('blob');
      expect(storage.hits).toHaveLength(1);
      expect(storage.hits[0].authorization).toBeUndefined();
      const same = await t.send({ method: 'GET', url: new URL(`${reg.url}/same`), headers: { Authorization: 'Bearer TOKEN' }, what: 'doc' });
      expect((await readBody(same.body, 100, 'x')).toString()).toBe('same');
      expect(reg.hits[reg.hits.length - 1].authorization).toBe('Bearer TOKEN');
    } finally {
      await storage.close();
      await reg.close();
    }
  });

  it('refuses a redirect from https to http, without printing the redirect URL', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'regtls-'));
    try {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(dir, 'k.pem'), '-out', path.join(dir, 'c.pem'), '-days', '1', '-subj', '/CN=127.0.0.1'], { stdio: 'ignore' });
      const plain = await serve((_q, r) => r.end('leak'));
      const sec = await serve((_q, r) => r.writeHead(302, { Location: `${plain.url}/blob?sig=presigned-secret` }).end(), {
        key: fs.readFileSync(path.join(dir, 'k.pem')), cert: fs.readFileSync(path.join(dir, 'c.pem')),
      });
      try {
        const err = await t.send({ method: 'GET', url: new URL(`${sec.url}/v2/x/blobs/sha256:1`), what: 'blob sha256:1' }).then(() => undefined, (e) => e);
        expect(err).toBeInstanceOf(RegistryError);
        expect(err.message).toMatch(/refusing a redirect .* \(https to http\)/);
        expect(err.message).not.toContain('presigned-secret');
        expect(plain.hits).toHaveLength(0);
      } finally {
        await plain.close();
        await sec.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('retries 5xx and 429 a bounded number of times, honouring Retry-After', async () => {
    const always = await serve((_q, r) => r.writeHead(503).end());
    let n = 0;
    const once = await serve((_q, r) => (n++ === 0 ? r.writeHead(429, { 'Retry-After': '0' }).end() : r.end('ok')));
    try {
      const res = await t.send({ method: 'GET', url: new URL(`${always.url}/v2/`), what: 'ping' });
      expect(res.status).toBe(503);
      expect(always.hits).toHaveLength(3); // 1 + retries
      const ok = await t.send({ method: 'GET', url: new URL(`${once.url}/v2/`), what: 'ping' });
      expect(ok.status).toBe(200);
      expect(once.hits).toHaveLength(2);
    } finally {
      await always.close();
      await once.close();
    }
  });

  it('retries a connection reset, reopening a streamed body for each attempt', async () => {
    let n = 0;
    const bodies: string[] = [];
    const srv = await serve((q, r) => {
      const chunks: Buffer[] = [];
      q.on('data', (c) => chunks.push(c));
      q.on('end', () => {
        bodies.push(Buffer.concat(chunks).toString());
        if (n++ === 0) return q.socket.destroy();
        r.writeHead(201).end();
      });
    });
    let opened = 0;
    try {
      const { Readable } = await import('node:stream');
      const res = await t.send({
        method: 'PUT', url: new URL(`${srv.url}/upload`), headers: { 'Content-Length': '5' }, what: 'upload',
        body: () => {
          opened++;
          return Readable.from([Buffer.from('hello')]);
        },
      });
      expect(res.status).toBe(201);
      expect(opened).toBe(2);
      expect(bodies).toEqual(['hello', 'hello']);
    } finally {
      await srv.close();
    }
  });

  it('caps a document body', async () => {
    const srv = await serve((_q, r) => r.end(Buffer.alloc(5000)));
    try {
      const res = await t.send({ method: 'GET', url: new URL(`${srv.url}/m`), what: 'manifest' });
      await expect(readBody(res.body, 4096, 'manifest x')).rejects.toThrow(/manifest x: 5000 bytes, over the 4096-byte limit/);
    } finally {
      await srv.close();
    }
  });
});
