/**
 * The lean blob client (src/registry/wire.ts) against raw servers that write exactly the bytes a
 * test gives them: correct framing of every kind (also split into single bytes), keep-alive
 * reuse, and the attacker's side — every malformed or hostile response is one error, never a
 * hang, never bytes past the framing, never a reused connection that is not clean.
 */
import * as net from 'node:net';
import * as crypto from 'node:crypto';
import { WireBody, WirePool, parseHead, framing, BodySink } from '../../../src/registry/wire';
import { isCutConnection } from '../../../src/registry/http';

interface Raw {
  url: (p?: string) => URL;
  connections: () => number;
  requests: string[];
  close: () => Promise<void>;
}

/** A server that answers each request with `respond(requestIndex, socket)`. */
async function rawServer(respond: (i: number, s: net.Socket, req: string) => void): Promise<Raw> {
  let conns = 0;
  const requests: string[] = [];
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    conns++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    let buf = '';
    s.on('data', (d) => {
      buf += d.toString('latin1');
      let end: number;
      while ((end = buf.indexOf('\r\n\r\n')) >= 0) {
        const req = buf.slice(0, end);
        buf = buf.slice(end + 4);
        requests.push(req);
        respond(requests.length - 1, s, req);
      }
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as net.AddressInfo).port;
  return {
    url: (p = '/v2/x/blobs/sha256:0') => new URL(`http://127.0.0.1:${port}${p}`),
    connections: () => conns,
    requests,
    close: () => new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      srv.close(() => r());
    }),
  };
}

/** Write `bytes` one byte per write (every parser state boundary gets split). */
function dribble(s: net.Socket, bytes: Buffer, then?: () => void): void {
  let i = 0;
  const next = () => {
    if (s.destroyed) return;
    if (i >= bytes.length) return then?.();
    s.write(bytes.subarray(i, ++i), next);
  };
  next();
}

async function readAll(body: WireBody): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of body) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** A sink that copies what it is given; says "wait" every `every` chunks. */
function collectingSink(every = 0): BodySink & { data: () => Buffer; waits: number } {
  const parts: Buffer[] = [];
  let n = 0;
  let waits = 0;
  return {
    absorb(c) {
      parts.push(Buffer.from(c));
      return !(every && ++n % every === 0);
    },
    ready() {
      waits++;
      return new Promise((r) => setTimeout(r, 1));
    },
    data: () => Buffer.concat(parts),
    get waits() {
      return waits;
    },
  };
}

const ok = (body: string | Buffer, extra = '') => {
  const b = Buffer.isBuffer(body) ? body : Buffer.from(body);
  return Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${b.length}\r\n${extra}\r\n`), b]);
};

describe('wire: correct responses', () => {
  let pool: WirePool;
  beforeEach(() => (pool = new WirePool()));
  afterEach(() => pool.close());

  it('Content-Length bodies, streamed and drained, over one kept-alive connection', async () => {
    const big = crypto.randomBytes(3 * 1024 * 1024 + 17);
    const srv = await rawServer((i, s) => s.write(i === 0 ? ok('hello') : ok(big)));
    try {
      const a = await pool.request(srv.url(), {});
      expect(a.status).toBe(200);
      expect(a.headers['content-length']).toBe('5');
      expect((await readAll(a.body)).toString()).toBe('hello');
      const b = await pool.request(srv.url(), { Accept: 'x' });
      const sink = collectingSink(3);
      await b.body.drainInto(sink);
      expect(sink.data().equals(big)).toBe(true);
      expect(sink.waits).toBeGreaterThan(0);
      expect(srv.connections()).toBe(1);
      expect(srv.requests[1]).toMatch(/^GET \/v2\/x\/blobs\/sha256:0 HTTP\/1\.1\r\nHost: 127\.0\.0\.1:\d+\r\nAccept: x\r\n/);
    } finally {
      await srv.close();
    }
  });

  it('chunked bodies with extensions and trailers, and a head and body split into single bytes', async () => {
    const wire = Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\nX-A: 2\r\n\r\n5;ext=1\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nTrailer: t\r\n\r\n');
    const srv = await rawServer((_i, s) => dribble(s, wire));
    try {
      for (const mode of ['stream', 'drain'] as const) {
        const r = await pool.request(srv.url(), {});
        expect(r.headers['x-a']).toBe('1, 2');
        if (mode === 'stream') expect((await readAll(r.body)).toString()).toBe('hello 0123456789');
        else {
          const sink = collectingSink(1);
          await r.body.drainInto(sink);
          expect(sink.data().toString()).toBe('hello 0123456789');
        }
      }
      expect(srv.connections()).toBe(1);
    } finally {
      await srv.close();
    }
  });

  it('a body that runs to the close, a 103 before the answer, a 204 without a body', async () => {
    const srv = await rawServer((i, s) => {
      if (i === 0) s.end('HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it');
      else if (i === 1) s.write('HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n' + ok('after hints').toString());
      else s.write('HTTP/1.1 204 No Content\r\n\r\n');
    });
    try {
      expect((await readAll((await pool.request(srv.url(), {})).body)).toString()).toBe('all of it');
      const r = await pool.request(srv.url(), {});
      expect(r.status).toBe(200);
      expect((await readAll(r.body)).toString()).toBe('after hints');
      const n = await pool.request(srv.url(), {});
      expect(n.status).toBe(204);
      expect((await readAll(n.body)).length).toBe(0);
      expect(srv.connections()).toBe(2); // the close-delimited one was not reused
    } finally {
      await srv.close();
    }
  });

  it('a kept-alive connection the server closed meanwhile is replaced without an error', async () => {
    const srv = await rawServer((i, s) => {
      s.write(ok(`r${i}`));
      if (i === 0) setTimeout(() => s.destroy(), 20);
    });
    try {
      expect((await readAll((await pool.request(srv.url(), {})).body)).toString()).toBe('r0');
      await new Promise((r) => setTimeout(r, 80));
      expect((await readAll((await pool.request(srv.url(), {})).body)).toString()).toBe('r1');
      expect(srv.connections()).toBe(2);
    } finally {
      await srv.close();
    }
  });

  it('parseHead keeps the first of single-valued fields and joins the others, as node does', () => {
    const h = parseHead('HTTP/1.1 307 Temporary Redirect\r\nLocation: /a\r\nLocation: /b\r\nWWW-Authenticate: Bearer realm="x"\r\nwww-authenticate: Basic\r\nContent-Length: 0');
    expect(h.status).toBe(307);
    expect(h.headers.location).toBe('/a');
    expect(h.headers['www-authenticate']).toBe('Bearer realm="x", Basic');
    expect(framing(h)).toEqual({ kind: 'length', n: 0 });
  });
});

describe('wire: the attacker\'s responses', () => {
  let pool: WirePool;
  beforeEach(() => (pool = new WirePool()));
  afterEach(() => pool.close());

  /** Request once against a server answering `bytes` (then optionally closing); the error (or undefined). */
  async function failure(bytes: string | Buffer, opts: { end?: boolean; drain?: boolean } = {}): Promise<Error | undefined> {
    const srv = await rawServer((_i, s) => (opts.end ? s.end(bytes) : s.write(bytes)));
    try {
      const r = await pool.request(srv.url(), {});
      if (opts.drain) await r.body.drainInto(collectingSink());
      else await readAll(r.body);
      return undefined;
    } catch (e) {
      return e as Error;
    } finally {
      await srv.close();
    }
  }

  const malformed: Array<[string, string]> = [
    ['a negative Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n'],
    ['a Content-Length in exponent form', 'HTTP/1.1 200 OK\r\nContent-Length: 1e3\r\n\r\n'],
    ['a Content-Length past 2^53', 'HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999\r\n\r\n'],
    ['disagreeing Content-Length values', 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab'],
    ['a Content-Length list that disagrees', 'HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\nab'],
    ['a transfer coding other than chunked', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx'],
    ['chunked after another coding', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n'],
    ['a chunk size that is not hex', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'],
    ['a chunk size past 2^53', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffff\r\n'],
    ['a negative chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n'],
    ['chunk data longer than its size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nabc\r\n0\r\n\r\n'],
    ['a bare LF in chunked framing', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\na\r\n0\r\n\r\n'],
    ['obsolete line folding', 'HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\nContent-Length: 0\r\n\r\n'],
    ['a bare LF in the head', 'HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n'],
    ['a NUL in the head', 'HTTP/1.1 200 OK\r\nX-A: a\0b\r\nContent-Length: 0\r\n\r\n'],
    ['a header name that is not a token', 'HTTP/1.1 200 OK\r\nBad Name: 1\r\nContent-Length: 0\r\n\r\n'],
    ['a status line that is not HTTP/1.x', 'HTTP/2 200\r\nContent-Length: 0\r\n\r\n'],
    ['a status that is not three digits', 'HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n'],
    ['101 Switching Protocols to a GET', 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n'],
  ];
  it.each(malformed)('%s is one protocol error, no hang', async (_name, bytes) => {
    const e = await failure(bytes);
    expect(e).toBeDefined();
    expect(e!.message).toMatch(/^malformed HTTP response: /);
    expect(e!.message.split('\n')).toHaveLength(1);
  });

  it('a head that never ends is refused after 64 KiB (no unbounded buffering)', async () => {
    const e = await failure('HTTP/1.1 200 OK\r\n' + 'X-Pad: ' + 'a'.repeat(70 * 1024) + '\r\n');
    expect(e?.message).toMatch(/head longer than 65536 bytes/);
  });

  it('an endless chunk-size line and endless trailers are refused (bounded)', async () => {
    expect((await failure('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1' + ';x'.repeat(4000)))?.message).toMatch(/too long/);
    expect((await failure('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n' + 'T: x\r\n'.repeat(4000)))?.message).toMatch(/too long/);
  });

  it.each([['streamed', false], ['drained', true]])('a body cut before its Content-Length is a cut connection (%s), so the caller resumes', async (_m, drain) => {
    const e = await failure('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this', { end: true, drain: drain as boolean });
    expect(e).toBeDefined();
    expect(isCutConnection(e)).toBe(true);
  });

  it('a chunked body cut before its last chunk is a cut connection', async () => {
    const e = await failure('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel', { end: true, drain: true });
    expect(isCutConnection(e)).toBe(true);
  });

  it('a connection closed before any response is a cut connection, not a hang', async () => {
    const srv = await rawServer((_i, s) => s.destroy());
    try {
      const e = await pool.request(srv.url(), {}).then(() => undefined, (x: Error) => x);
      expect(isCutConnection(e)).toBe(true);
    } finally {
      await srv.close();
    }
  });

  it('bytes past the end of a response are never delivered, and that connection is not reused', async () => {
    const srv = await rawServer((i, s) => s.write(i === 0 ? Buffer.concat([ok('abc'), Buffer.from('SMUGGLED')]) : ok('next')));
    try {
      expect((await readAll((await pool.request(srv.url(), {})).body)).toString()).toBe('abc');
      expect((await readAll((await pool.request(srv.url(), {})).body)).toString()).toBe('next');
      expect(srv.connections()).toBe(2);
    } finally {
      await srv.close();
    }
  });

  it('a response pipelined ahead of the next request is not taken as its answer', async () => {
    // The server answers the first request twice: the second answer arrives while idle.
    const srv = await rawServer((i, s) => s.write(i === 0 ? Buffer.concat([ok('one'), ok('unasked')]) : ok('two')));
    try {
      expect((await readAll((await pool.request(srv.url(), {})).body)).toString()).toBe('one');
      await new Promise((r) => setTimeout(r, 20));
      expect((await readAll((await pool.request(srv.url(), {})).body)).toString()).toBe('two');
    } finally {
      await srv.close();
    }
  });

  it('CR or LF in a request header is refused before anything is sent', async () => {
    const srv = await rawServer((_i, s) => s.write(ok('x')));
    try {
      await expect(pool.request(srv.url(), { 'X-A': 'a\r\nInjected: 1' })).rejects.toThrow(/CR or LF/);
      expect(srv.requests).toEqual([]);
    } finally {
      await srv.close();
    }
  });

  it('a server that goes silent before its head, or in the middle of a body, is a cut connection after the idle timeout (no hang)', async () => {
    const quiet = new WirePool({ idleTimeoutMs: 150 });
    const srv = await rawServer((i, s) => {
      if (i === 0) return; // never answers
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhalf'); // then nothing
    });
    try {
      const t0 = Date.now();
      const e1 = await quiet.request(srv.url(), {}).then(() => undefined, (x: Error) => x);
      expect(isCutConnection(e1)).toBe(true);
      expect(e1?.message).toMatch(/timed out: nothing from the server/);
      const r = await quiet.request(srv.url(), {});
      const e2 = await r.body.drainInto(collectingSink()).then(() => undefined, (x: Error) => x);
      expect(isCutConnection(e2)).toBe(true);
      expect(Date.now() - t0).toBeLessThan(5000);
    } finally {
      quiet.close();
      await srv.close();
    }
  });

  it('a sink that waits longer than the idle timeout is not taken for a silent server', async () => {
    const quiet = new WirePool({ idleTimeoutMs: 100 });
    const data = crypto.randomBytes(2 * 1024 * 1024);
    const srv = await rawServer((_i, s) => s.write(ok(data)));
    try {
      const r = await quiet.request(srv.url(), {});
      const parts: Buffer[] = [];
      let waited = false;
      await r.body.drainInto({
        absorb(c) {
          parts.push(Buffer.from(c));
          return waited; // wait once
        },
        ready() {
          waited = true;
          return new Promise((res) => setTimeout(res, 400));
        },
      });
      expect(Buffer.concat(parts).equals(data)).toBe(true);
    } finally {
      quiet.close();
      await srv.close();
    }
  });

  it('a sink that waits pauses the socket: memory held stays bounded while the server pushes 64 MiB', async () => {
    const size = 64 * 1024 * 1024;
    const block = Buffer.alloc(1024 * 1024, 7);
    const srv = await rawServer((_i, s) => {
      s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${size}\r\n\r\n`);
      let sent = 0;
      const more = () => {
        while (sent < size) {
          sent += block.length;
          if (!s.write(block)) return void s.once('drain', more);
        }
      };
      more();
    });
    try {
      const r = await pool.request(srv.url(), {});
      let got = 0;
      let waiting = false;
      let duringWait = 0;
      const sink: BodySink = {
        absorb(c) {
          if (waiting) duringWait += c.length;
          got += c.length;
          return got % (8 * 1024 * 1024) >= 256 * 1024; // wait once every 8 MiB
        },
        ready() {
          waiting = true;
          return new Promise((res) => setTimeout(() => ((waiting = false), res()), 30));
        },
      };
      const rss0 = process.memoryUsage().rss;
      await r.body.drainInto(sink);
      expect(got).toBe(size);
      expect(duringWait).toBe(0); // nothing arrives while the sink waits
      expect(process.memoryUsage().rss - rss0).toBeLessThan(48 * 1024 * 1024);
    } finally {
      await srv.close();
    }
  });
});
