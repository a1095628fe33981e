/**
 * A lean HTTP/1.1 client for the one request that moves bulk bytes into the store: a blob GET.
 *
 * Why not node:http for it: node reads each socket chunk into a fresh allocation and its parser
 * copies every body chunk into another, so every byte lands twice in memory never touched
 * before; measured here that costs ~0.25 s of main-thread time per 128 MiB (page faults in the
 * fresh memory), more than hashing the bytes. Here a connection reads into one reused buffer
 * (net/tls `onread`), and a body drained with `drainInto` hands the sink views of that buffer,
 * which the sink consumes before returning (the content writer hashes them and copies them into
 * its recycled slabs). Read as a plain stream (`for await`, `resume()`), the body yields copies.
 *
 * Scope: GET without a request body; everything else (and every request through a proxy) goes
 * through node:http in ./http.ts, which also owns redirects, retries and error wording.
 *
 * Invariants:
 *  - The response head is at most MAX_HEAD bytes: `HTTP/1.x NNN reason`, then `name: value`
 *    lines ending in CRLF; a bare LF, a NUL, obs-fold or a header name that is not a token is a
 *    protocol error. 1xx heads (not 101) are skipped.
 *  - Body framing as RFC 9112 §6.3 for a response to GET: 204/304 have none; `Transfer-Encoding`
 *    must be exactly `chunked` (any other coding is refused); else one `Content-Length` (repeats
 *    must agree; digits only, at most 2^53-1); else the body runs to the close. Chunk sizes are
 *    hex, at most 2^53-1, extensions ignored, trailers read and dropped (bounded).
 *  - A connection is reused only after a complete body, on HTTP/1.1, without `Connection: close`,
 *    and with nothing more on the wire; an idle connection that hears anything is closed.
 *  - A body cut before its framing says it ends fails with code ECONNRESET ("aborted"), which
 *    the caller treats as a cut connection (resume with Range). Framing errors only fail a
 *    transfer: the bytes are proven by their digest in the content store, never by this parser.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';

/** Largest response head accepted (node's default is 16 KiB; registries send < 2 KiB). */
export const MAX_HEAD = 64 * 1024;
/** Largest chunk-size line and trailer section accepted. */
const MAX_CHUNK_LINE = 4096;
const MAX_TRAILERS = 16 * 1024;
/** Each connection's read buffer (a socket read fills at most this much). */
export const READ_BUFFER = 256 * 1024;

/** Takes body bytes; must be done with `chunk` when it returns (the memory is reused). */
export interface BodySink {
  /** Consume `chunk`; false means "no more for now": wait for `ready()`. */
  absorb(chunk: Buffer): boolean;
  ready(): Promise<void>;
}

export interface WireOptions {
  /** TLS options for https: (ca, cert, key, rejectUnauthorized), as the https agent has them. */
  tls?: tls.ConnectionOptions;
  /** A request that hears nothing for this long fails as a cut connection (default IDLE_TIMEOUT_MS). */
  idleTimeoutMs?: number;
}

/** No byte for this long while a response is awaited or read: the connection is given up. */
export const IDLE_TIMEOUT_MS = 60_000;

export class WireError extends Error {
  constructor(message: string, readonly code: string) {
    super(message);
    this.name = 'WireError';
  }
}

/** The code of a malformed head or framing (not a network failure: never retried or resumed). */
export const PROTOCOL_ERROR = 'EPROTO_HTTP';
const protocolError = (m: string) => new WireError(`malformed HTTP response: ${m}`, PROTOCOL_ERROR);
const aborted = () => new WireError('aborted: the connection closed before the end of the body', 'ECONNRESET');

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Header fields node keeps once (first wins), as IncomingMessage does. */
const SINGLE = new Set(['content-type', 'content-length', 'user-agent', 'referer', 'host', 'authorization', 'proxy-authorization',
  'if-modified-since', 'if-unmodified-since', 'from', 'location', 'max-forwards', 'retry-after', 'etag', 'last-modified', 'server', 'age', 'expires']);

export interface Head {
  status: number;
  minor: number;
  headers: IncomingHttpHeaders;
  /** Every Content-Length value seen (to refuse disagreeing repeats). */
  lengths: string[];
}

/** Parse a response head (without its final CRLFCRLF). Throws a protocol error. */
export function parseHead(text: string): Head {
  if (/[\0]/.test(text)) throw protocolError('NUL in the head');
  const lines = text.split('\r\n');
  for (const l of lines) if (l.includes('\n') || l.includes('\r')) throw protocolError('bare CR or LF in the head');
  const m = /^HTTP\/1\.([01]) (\d{3})(?: [^]*)?$/.exec(lines[0]);
  if (!m) throw protocolError(`status line ${JSON.stringify(lines[0].slice(0, 80))}`);
  const headers: IncomingHttpHeaders = {};
  const lengths: string[] = [];
  for (let i = 1; i < lines.length; i++) {
    const l = lines[i];
    if (l[0] === ' ' || l[0] === '\t') throw protocolError('obsolete line folding');
    const c = l.indexOf(':');
    if (c <= 0 || !TOKEN.test(l.slice(0, c))) throw protocolError(`header line ${JSON.stringify(l.slice(0, 80))}`);
    const name = l.slice(0, c).toLowerCase();
    const value = l.slice(c + 1).replace(/^[ \t]+|[ \t]+$/g, '');
    if (name === 'content-length') lengths.push(value);
    const h = headers as Record<string, string | string[] | undefined>;
    const prev = h[name];
    if (name === 'set-cookie') h[name] = [...((prev as string[] | undefined) ?? []), value];
    else if (prev === undefined) h[name] = value;
    else if (!SINGLE.has(name)) h[name] = `${prev as string}, ${value}`;
  }
  return { status: Number(m[2]), minor: Number(m[1]), headers, lengths };
}

type Framing = { kind: 'none' } | { kind: 'length'; n: number } | { kind: 'chunked' } | { kind: 'close' };

/** How the body of a GET response is delimited (RFC 9112 §6.3). */
export function framing(head: Head): Framing {
  if (head.status === 204 || head.status === 304) return { kind: 'none' };
  const te = head.headers['transfer-encoding'];
  if (te !== undefined) {
    if (String(te).trim().toLowerCase() !== 'chunked') throw protocolError(`unsupported Transfer-Encoding ${JSON.stringify(String(te).slice(0, 40))}`);
    return { kind: 'chunked' };
  }
  if (head.lengths.length) {
    const vals = new Set(head.lengths.flatMap((v) => v.split(',').map((s) => s.trim())));
    if (vals.size !== 1) throw protocolError('disagreeing Content-Length values');
    const v = [...vals][0];
    if (!/^\d{1,16}$/.test(v) || Number(v) > Number.MAX_SAFE_INTEGER) throw protocolError(`Content-Length ${JSON.stringify(v.slice(0, 40))}`);
    return { kind: 'length', n: Number(v) };
  }
  return { kind: 'close' };
}

/** Parses one response's body framing; `feed` returns how many bytes of `b` belonged to the body. */
class BodyDecoder {
  private left: number;
  private state: 'data' | 'size' | 'data-crlf' | 'trailers' | 'done';
  private line = '';
  private trailerBytes = 0;
  constructor(readonly f: Framing, private readonly onData: (b: Buffer) => void) {
    this.left = f.kind === 'length' ? f.n : 0;
    this.state = f.kind === 'none' || (f.kind === 'length' && f.n === 0) ? 'done' : f.kind === 'chunked' ? 'size' : 'data';
  }
  get done(): boolean {
    return this.state === 'done';
  }
  /** Consume bytes; returns the count used (the rest is past the body). */
  feed(b: Buffer): number {
    let i = 0;
    while (i < b.length && this.state !== 'done') {
      if (this.state === 'data') {
        if (this.f.kind === 'close') {
          this.onData(i === 0 ? b : b.subarray(i));
          return b.length;
        }
        const k = Math.min(this.left, b.length - i);
        this.onData(b.subarray(i, i + k));
        i += k;
        this.left -= k;
        if (this.left === 0) this.state = this.f.kind === 'chunked' ? 'data-crlf' : 'done';
        continue;
      }
      // Line-oriented states: size line, the CRLF after chunk data, trailers.
      const nl = b.indexOf(10, i);
      const end = nl < 0 ? b.length : nl + 1;
      this.line += b.toString('latin1', i, end);
      i = end;
      const cap = this.state === 'trailers' ? MAX_TRAILERS : MAX_CHUNK_LINE;
      if (this.line.length > cap) throw protocolError('chunk-size line or trailer too long');
      if (nl < 0) break;
      if (this.state === 'trailers' && (this.trailerBytes += this.line.length) > MAX_TRAILERS) throw protocolError('trailers too long');
      if (!this.line.endsWith('\r\n')) throw protocolError('bare LF in chunked framing');
      const line = this.line.slice(0, -2);
      this.line = '';
      if (this.state === 'data-crlf') {
        if (line !== '') throw protocolError('chunk data longer than its size');
        this.state = 'size';
      } else if (this.state === 'size') {
        const m = /^([0-9a-fA-F]{1,14})[ \t]*(?:;[^]*)?$/.exec(line);
        if (!m) throw protocolError(`chunk size ${JSON.stringify(line.slice(0, 40))}`);
        const n = parseInt(m[1], 16);
        if (n > Number.MAX_SAFE_INTEGER) throw protocolError('chunk size too large');
        if (n === 0) this.state = 'trailers';
        else {
          this.left = n;
          this.state = 'data';
        }
      } else if (line === '') {
        this.state = 'done';
      }
    }
    return i;
  }
  /** The peer closed: fine for a close-delimited body, a cut otherwise. */
  eof(): boolean {
    if (this.f.kind === 'close' && this.state === 'data') {
      this.state = 'done';
      return true;
    }
    return this.state === 'done';
  }
}

/** A response body: a Readable of copies, or drained into a sink with views of the read buffer. */
export class WireBody extends Readable {
  /** The response headers (readBody looks at content-length here, as on an IncomingMessage). */
  readonly headers: IncomingHttpHeaders;
  private sink: BodySink | undefined;
  private drained: { resolve: () => void; reject: (e: Error) => void } | undefined;
  constructor(headers: IncomingHttpHeaders, private readonly conn: Conn) {
    super({ highWaterMark: 1024 * 1024 });
    this.headers = headers;
  }

  get sinkMode(): boolean {
    return !!this.sink;
  }

  /** Hand every body byte to `sink` (views of a reused buffer); resolves at the end of the body. */
  drainInto(sink: BodySink): Promise<void> {
    if (this.sink || this.readableFlowing !== null || this.destroyed) throw new Error('WireBody: already being read');
    this.sink = sink;
    return new Promise<void>((resolve, reject) => {
      this.drained = { resolve, reject };
      this.conn.pump();
    });
  }

  /** @internal From the connection: body bytes (valid only during the call). Returns false to pause. */
  deliver(b: Buffer): boolean {
    if (this.sink) return this.sink.absorb(b);
    return this.push(Buffer.from(b));
  }

  /** @internal The sink said "no more for now": resume reading once it is ready. */
  waitSink(resume: () => void): void {
    void this.sink!.ready().then(resume, (e: Error) => this.fail(e));
  }

  /** @internal End of the body. */
  finish(): void {
    if (this.drained) this.drained.resolve();
    else this.push(null);
  }

  /** @internal The transfer failed. */
  fail(e: Error): void {
    if (this.drained) {
      const d = this.drained;
      this.drained = undefined;
      this.conn.destroy();
      d.reject(e);
    } else this.destroy(e);
  }

  override _read(): void {
    this.conn.pump();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.conn.abandon(this);
    cb(err);
  }
}

interface Pending {
  resolve: (r: { head: Head; body: WireBody }) => void;
  reject: (e: Error) => void;
}

/** One connection: a socket reading into one buffer, one request at a time. */
class Conn {
  readonly socket: net.Socket;
  private readonly buf = Buffer.allocUnsafeSlow(READ_BUFFER);
  private head: Buffer[] = [];
  private headLen = 0;
  private pending: Pending | undefined;
  private body: WireBody | undefined;
  private decoder: BodyDecoder | undefined;
  /** Bytes read past the head before the body's reader was chosen (copied out of `buf`). */
  private early: Buffer | undefined;
  private paused = false;
  private sawBytes = false;
  private keepAlive = false;
  dead = false;
  private ended = false;

  constructor(url: URL, opts: WireOptions, private readonly release: (c: Conn) => void) {
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
    const onread = { buffer: this.buf, callback: (n: number) => this.onBytes(n) };
    this.socket = url.protocol === 'https:'
      ? tls.connect({ ...opts.tls, host, port, servername: net.isIP(host) ? undefined : host, ALPNProtocols: ['http/1.1'], onread } as tls.ConnectionOptions)
      : net.connect({ host, port, onread });
    this.socket.setNoDelay(true);
    // Silence while a response is owed is a cut (the caller resumes or fails, never hangs); an
    // idle pooled connection that times out is just closed; a pause of our own is not silence.
    const idle = opts.idleTimeoutMs ?? IDLE_TIMEOUT_MS;
    this.socket.setTimeout(idle, () => {
      if (this.paused && this.body) return;
      if (!this.busy) return this.destroy();
      this.failWith(new WireError(`timed out: nothing from the server for ${Math.round(idle / 1000)} s`, 'ETIMEDOUT'));
    });
    this.socket.on('error', (e) => this.onError(e));
    this.socket.on('end', () => this.onEnd());
    this.socket.on('close', () => this.onEnd());
  }

  get busy(): boolean {
    return !!this.pending || !!this.body;
  }

  /** Did this (reused) connection fail before a single byte of its response arrived? */
  get silent(): boolean {
    return !this.sawBytes;
  }

  send(method: string, url: URL, headers: Record<string, string>, p: Pending): void {
    this.pending = p;
    this.sawBytes = false;
    this.head = [];
    this.headLen = 0;
    const lines = [`${method} ${url.pathname}${url.search} HTTP/1.1`, `Host: ${url.host}`];
    for (const [k, v] of Object.entries(headers)) {
      if (/[\r\n]/.test(k) || /[\r\n]/.test(v)) {
        this.pending = undefined;
        return p.reject(new Error(`header ${k}: CR or LF in a request header`));
      }
      if (k.toLowerCase() !== 'host' && k.toLowerCase() !== 'connection') lines.push(`${k}: ${v}`);
    }
    lines.push('Connection: keep-alive', '', '');
    this.socket.write(lines.join('\r\n'));
    this.paused = false;
    this.socket.resume();
  }

  private onBytes(n: number): boolean {
    if (n <= 0) return true;
    this.sawBytes = true;
    const b = this.buf.subarray(0, n);
    try {
      if (this.pending) return this.onHeadBytes(b);
      if (this.body && this.decoder) return this.onBodyBytes(b);
      // Nothing was asked: a server talking out of turn. The connection is not reusable.
      this.destroy();
      return false;
    } catch (e) {
      this.failWith(e as Error);
      return false;
    }
  }

  private onHeadBytes(b: Buffer): boolean {
    this.head.push(Buffer.from(b));
    this.headLen += b.length;
    const all = this.head.length === 1 ? this.head[0] : Buffer.concat(this.head);
    this.head = [all];
    const end = all.indexOf('\r\n\r\n');
    if (end < 0) {
      if (this.headLen > MAX_HEAD) throw protocolError(`head longer than ${MAX_HEAD} bytes`);
      return true;
    }
    if (end > MAX_HEAD) throw protocolError(`head longer than ${MAX_HEAD} bytes`);
    const head = parseHead(all.toString('latin1', 0, end));
    const rest = all.subarray(end + 4);
    if (head.status >= 100 && head.status < 200) {
      if (head.status === 101) throw protocolError('unexpected 101 Switching Protocols');
      this.head = [];
      this.headLen = 0;
      return rest.length ? this.onHeadBytes(rest) : true;
    }
    const f = framing(head);
    const conn = String(head.headers.connection ?? '').toLowerCase();
    this.keepAlive = head.minor === 1 && !/\bclose\b/.test(conn) && f.kind !== 'close';
    const p = this.pending!;
    this.pending = undefined;
    this.head = [];
    const body = new WireBody(head.headers, this);
    this.body = body;
    this.decoder = new BodyDecoder(f, (d) => {
      if (!body.deliver(d)) this.wantPause = true;
    });
    if (rest.length) this.early = rest; // already a copy (from this.head)
    this.paused = true; // until the caller picks how to read the body (pump)
    p.resolve({ head, body });
    if (this.decoder.done && !this.early) this.complete();
    return false;
  }

  /** Set by the decoder's callback when the reader wants no more for now. */
  private wantPause = false;

  private onBodyBytes(b: Buffer): boolean {
    this.wantPause = false;
    const used = this.decoder!.feed(b);
    if (this.decoder!.done) {
      if (used < b.length) {
        // More on the wire than the response: not reusable.
        this.keepAlive = false;
      }
      this.complete();
      // A kept-alive connection keeps reading while idle, to notice a close (or stray bytes).
      return !this.dead;
    }
    if (this.wantPause) {
      this.pauseFor();
      return false;
    }
    return true;
  }

  private pauseFor(): void {
    this.paused = true;
    if (this.body?.sinkMode) this.body.waitSink(() => this.pump());
  }

  /** Resume reading (the body's reader is ready). */
  pump(): void {
    if (!this.paused || this.dead || !this.body) return;
    this.paused = false;
    if (this.early) {
      const e = this.early;
      this.early = undefined;
      try {
        if (!this.onBodyBytes(e)) return;
      } catch (err) {
        return this.failWith(err as Error);
      }
      if (!this.body) return void this.socket.resume(); // complete, kept alive
    }
    if (this.ended) {
      this.onEnd();
      return;
    }
    this.socket.resume();
  }

  private complete(): void {
    const body = this.body!;
    this.body = undefined;
    this.decoder = undefined;
    this.early = undefined;
    body.finish();
    this.paused = false;
    if (this.keepAlive && !this.ended) this.release(this);
    else this.destroy();
  }

  private failWith(e: Error): void {
    const p = this.pending;
    const body = this.body;
    this.pending = undefined;
    this.body = undefined;
    this.destroy();
    if (p) p.reject(e);
    else if (body) body.fail(e);
  }

  private onError(e: Error): void {
    this.failWith(e);
  }

  private onEnd(): void {
    this.ended = true;
    if (this.body && this.decoder) {
      if (this.paused) return; // delivered when the reader resumes (pump)
      if (this.decoder.eof()) return this.complete();
      return this.failWith(aborted());
    }
    if (this.pending) return this.failWith(Object.assign(aborted(), { message: 'socket hang up: the connection closed before a response' }));
    this.destroy();
  }

  /** The body's reader went away before its end: the connection cannot be reused. */
  abandon(b: WireBody): void {
    if (this.body === b) {
      this.body = undefined;
      this.destroy();
    }
  }

  destroy(): void {
    this.dead = true;
    this.socket.destroy();
  }
}

/**
 * Keep-alive connections per origin. `request` sends one GET and resolves with the head; the
 * body must be read (or destroyed) before the connection can carry another request.
 */
export class WirePool {
  private readonly idle = new Map<string, Conn[]>();
  private closed = false;
  constructor(private readonly opts: WireOptions = {}) {}

  async request(url: URL, headers: Record<string, string>): Promise<{ status: number; headers: IncomingHttpHeaders; body: WireBody }> {
    if (this.closed) throw new Error('WirePool: closed');
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`WirePool: unsupported scheme ${url.protocol}`);
    for (let fresh = false; ; fresh = true) {
      const reused = fresh ? undefined : this.take(url.origin);
      const c = reused ?? this.connect(url);
      try {
        const { head, body } = await new Promise<{ head: Head; body: WireBody }>((resolve, reject) => c.send('GET', url, headers, { resolve, reject }));
        return { status: head.status, headers: head.headers, body };
      } catch (e) {
        // A kept-alive connection the server closed meanwhile: once more on a new one.
        if (reused && c.silent && !fresh) continue;
        throw e;
      }
    }
  }

  private connect(url: URL): Conn {
    const origin = url.origin;
    return new Conn(url, this.opts, (c) => {
      if (this.closed || c.dead) return c.destroy();
      const list = this.idle.get(origin) ?? [];
      list.push(c);
      this.idle.set(origin, list);
      c.socket.unref();
    });
  }

  private take(origin: string): Conn | undefined {
    const list = this.idle.get(origin);
    while (list?.length) {
      const c = list.pop()!;
      if (!c.dead && !c.busy && !c.socket.destroyed) {
        c.socket.ref();
        return c;
      }
    }
    return undefined;
  }

  close(): void {
    this.closed = true;
    for (const list of this.idle.values()) for (const c of list) c.destroy();
    this.idle.clear();
  }
}
