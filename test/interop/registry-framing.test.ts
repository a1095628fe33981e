/**
 * Blob downloads go over imgtool's own HTTP/1.1 client (src/registry/wire.ts). Here the REAL
 * registry serves the image, and a reverse proxy in front of it rewrites the framing of one
 * layer's GET, as a broken or hostile registry (or anything on the path) could: valid chunked
 * framing must pull identically; a body longer than its descriptor, bytes past Content-Length, and
 * malformed framing must each be one clear line naming the blob, with nothing registered and
 * nothing left in the store's ingest directory.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as http from 'node:http';
import { AddressInfo } from 'node:net';
import { rmrf, runCli, tmpDir } from '../helpers/cli';
import { requirePeer, startRegistry, stopRegistry } from '../helpers/peers';
import { ImageBuilder, BuiltImage } from '../../src/builder';
import { imgtool, imgtoolJson } from './matrix-fixtures';
import { Store } from '../../src/store';
import { pullImages } from '../../src/registry';

jest.setTimeout(180_000);

const HAVE = requirePeer('docker-registry');

/** How the proxy answers the layer's GET, given the layer's real bytes. */
type Framing = (blob: Buffer) => Buffer;

describe('blob framing from a hostile registry path', () => {
  let dir: string;
  let reg: string;
  let img: BuiltImage;
  let layer: string;
  let bytes: Buffer;
  let n = 0;

  beforeAll(async () => {
    if (!HAVE) return;
    dir = tmpDir('iregf-');
    reg = await startRegistry(path.join(dir, 'reg'));
    const b = new ImageBuilder(path.join(dir, 'build'));
    const l1 = await b.layer([{ path: 'etc/os', content: 'framing\n' }]);
    const l2 = await b.layer([{ path: 'data.bin', content: { size: 1 << 20, seed: 11 } }]);
    img = b.image({ layers: [l1, l2] });
    layer = l2.digest;
    await b.ociArchive(path.join(dir, 'f.tar'), { images: [{ target: img, names: [`${reg}/frame:1`] }] });
    const src = path.join(dir, 'src');
    await imgtool(src, ['load', '-i', path.join(dir, 'f.tar'), '--no-unpack']);
    await imgtool(src, ['push', `${reg}/frame:1`, '--insecure']);
    bytes = fs.readFileSync(path.join(src, 'content', 'blobs', 'sha256', layer.slice(7)));
  });

  afterAll(async () => {
    if (!HAVE || !dir) return;
    await stopRegistry(path.join(dir, 'reg')).catch(() => undefined);
    rmrf(dir);
  });

  /** Forward everything to the registry, except GETs of the layer: those get `framing`'s raw bytes. */
  async function proxy(framing: Framing, opts: { stall?: boolean } = {}): Promise<{ host: string; close: () => Promise<void>; gets: () => number }> {
    let gets = 0;
    const [rh, rp] = reg.split(':');
    const srv = http.createServer((req, res) => {
      if (req.method === 'GET' && req.url?.includes(`/blobs/${layer}`)) {
        req.resume();
        gets++;
        const sock = res.socket!;
        sock.write(framing(bytes));
        if (!opts.stall) sock.end(); // stalled: the connection stays open, silent
        return;
      }
      const up = http.request({ host: rh, port: Number(rp), method: req.method, path: req.url, headers: req.headers }, (ur) => {
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        ur.pipe(res);
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
    });
    const sockets = new Set<net.Socket>();
    srv.on('connection', (s) => (sockets.add(s), s.on('close', () => sockets.delete(s))));
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    return {
      host: `127.0.0.1:${(srv.address() as AddressInfo).port}`,
      gets: () => gets,
      close: () => new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        srv.close(() => r());
      }),
    };
  }

  const head = (extra: string) => Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n${extra}\r\n`);

  it('valid chunked framing (odd chunk sizes, extensions, a trailer) pulls the same digests', async () => {
    if (!HAVE) return;
    const p = await proxy((blob) => {
      const parts: Buffer[] = [head('Transfer-Encoding: chunked\r\n')];
      for (let off = 0, i = 0; off < blob.length; i++) {
        const k = Math.min(blob.length - off, 1 + ((i * 7919) % 100_000));
        parts.push(Buffer.from(`${k.toString(16)};i=${i}\r\n`), blob.subarray(off, off + k), Buffer.from('\r\n'));
        off += k;
      }
      parts.push(Buffer.from('0\r\nX-Trailer: 1\r\n\r\n'));
      return Buffer.concat(parts);
    });
    try {
      const dst = path.join(dir, `d${n++}`);
      const r = await imgtoolJson(dst, ['pull', `${p.host}/frame:1`, '--insecure', '--no-unpack']);
      expect(r.images[0].digest).toBe(img.descriptor.digest);
      expect((await runCli(['fsck'], { root: dst })).code).toBe(0);
    } finally {
      await p.close();
    }
  });

  it('a registry that goes silent in the middle of a blob: each attempt gives up after the idle timeout, the pull fails after bounded attempts, nothing registered', async () => {
    if (!HAVE) return;
    const p = await proxy((b) => Buffer.concat([head(`Content-Length: ${b.length}\r\n`), b.subarray(0, b.length >> 1)]), { stall: true });
    const dst = path.join(dir, `d${n++}`);
    const store = Store.open(dst);
    try {
      const t0 = Date.now();
      const e = await pullImages(store, [`${p.host}/frame:1`], { insecure: true, unpack: false, idleTimeoutMs: 300 }).then(() => undefined, (x) => x as Error);
      expect(e?.message).toMatch(new RegExp(`blob ${layer}: the connection was cut 3 times; giving up`));
      expect(p.gets()).toBe(3);
      expect(Date.now() - t0).toBeLessThan(20_000);
      expect(store.images.list()).toEqual([]);
    } finally {
      store.close();
      await p.close();
    }
  });

  it('pull honours the unpack limits (--max-layer-size): one line naming the layer, nothing registered; within them it unpacks', async () => {
    if (!HAVE) return;
    const dst = path.join(dir, `d${n++}`);
    const r = await runCli(['pull', `${reg}/frame:1`, '--insecure', '--max-layer-size', '100K'], { root: dst });
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/layer/);
    expect(r.stderr).toMatch(/100 KiB|102400/);
    expect(await imgtoolJson(dst, ['images'])).toEqual([]);
    const ok = await imgtoolJson(dst, ['pull', `${reg}/frame:1`, '--insecure', '--max-layer-size', '2M']);
    expect(ok.unpacked[0].layers).toHaveLength(2);
  });

  const bad: Array<[string, Framing, RegExp]> = [
    ['a body longer than the descriptor says', (b) => Buffer.concat([head(`Content-Length: ${b.length + 100}\r\n`), b, Buffer.alloc(100, 1)]), /size mismatch/],
    ['bytes past Content-Length (the first bytes are the blob with its last byte changed)',
      (b) => { const c = Buffer.from(b); c[c.length - 1] ^= 0xff; return Buffer.concat([head(`Content-Length: ${c.length}\r\n`), c, b.subarray(b.length - 1)]); }, /digest mismatch/],
    ['a negative Content-Length', () => head('Content-Length: -1\r\n'), /malformed HTTP response: Content-Length "-1"/],
    ['disagreeing Content-Length headers', (b) => Buffer.concat([head(`Content-Length: ${b.length}\r\nContent-Length: 5\r\n`), b]), /malformed HTTP response: disagreeing Content-Length/],
    ['a transfer coding other than chunked', (b) => Buffer.concat([head('Transfer-Encoding: gzip\r\n'), b]), /malformed HTTP response: unsupported Transfer-Encoding/],
    ['a blob the registry does not have (404 with its error body)', () => {
      const body = '{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}';
      return Buffer.from(`HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    }, /not found \(BLOB_UNKNOWN: blob unknown to registry\) \(404\)/],
    ['a chunk size that is not hex', () => Buffer.concat([head('Transfer-Encoding: chunked\r\n'), Buffer.from('zz\r\n')]), /malformed HTTP response: chunk size/],
  ];
  it.each(bad)('%s: one line naming the blob, nothing registered, nothing left in ingest', async (_name, framing, why) => {
    if (!HAVE) return;
    const p = await proxy(framing);
    try {
      const dst = path.join(dir, `d${n++}`);
      const r = await runCli(['pull', `${p.host}/frame:1`, '--insecure', '--no-unpack'], { root: dst });
      expect(r.code).not.toBe(0);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(why);
      expect(r.stderr).toContain(layer);
      expect(r.stderr).not.toMatch(/undefined|TypeError|at .*\.js:\d+/);
      expect(await imgtoolJson(dst, ['images'])).toEqual([]);
      const ingest = path.join(dst, 'content', 'ingest');
      expect(fs.existsSync(ingest) ? fs.readdirSync(ingest) : []).toEqual([]);
      expect(fs.existsSync(path.join(dst, 'content', 'blobs', 'sha256', layer.slice(7)))).toBe(false);
    } finally {
      await p.close();
    }
  });
});
