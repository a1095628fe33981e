/**
 * Chunked uploads that resume, against the REAL docker-registry behind a cutting proxy
 * (test/helpers/proxy.ts): a blob larger than the chunk size goes up as POST -> PATCH
 * (Content-Range) ... -> PUT ?digest=; a PATCH cut by a connection reset asks the upload URL for
 * its status (GET -> Range 0-N) and continues from N+1 in the same session, reopening the blob
 * from the store at that offset; when the registry lost the session (distribution drops it when
 * a cut left it more bytes than its upload state says) the upload restarts in a new one. Either
 * way the registry ends with the right digest. Bounded: a proxy cutting every attempt gives one
 * clear error and leaves the tag untouched.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { rmrf, tmpDir } from '../helpers/cli';
import { requirePeer, startRegistry, stopRegistry } from '../helpers/peers';
import { startCuttingProxy, CuttingProxy } from '../helpers/proxy';
import { ImageBuilder, BuiltImage } from '../../src/builder';
import { Store } from '../../src/store';
import { pushImage } from '../../src/registry';
import { RegistryError } from '../../src/errors';
import { imgtool } from './matrix-fixtures';

jest.setTimeout(180_000);

const HAVE = requirePeer('docker-registry');
const CHUNK = 512 * 1024;

describe('chunked, resumable blob uploads against docker-registry', () => {
  let dir: string;
  let reg: string;
  let img: BuiltImage;
  let big: string; // the 2 MiB layer: 4+ chunks
  let n = 0;

  beforeAll(async () => {
    if (!HAVE) return;
    dir = tmpDir('iregup-');
    reg = await startRegistry(path.join(dir, 'reg'));
    const b = new ImageBuilder(path.join(dir, 'build'));
    const l1 = await b.layer([{ path: 'small', content: 'small\n' }]);
    const l2 = await b.layer([{ path: 'big.bin', content: { size: 2 << 20, seed: 21 } }]);
    img = b.image({ layers: [l1, l2] });
    big = l2.digest;
    expect(l2.size).toBeGreaterThan(3 * CHUNK);
    await b.ociArchive(path.join(dir, 'u.tar'), { images: [{ target: img, names: ['example.com/up:1'] }] });
  });

  afterAll(async () => {
    if (!HAVE || !dir) return;
    await stopRegistry(path.join(dir, 'reg')).catch(() => undefined);
    rmrf(dir);
  });

  /** A fresh store with the image (no blob sources: nothing can be mounted), pushed through `proxy`. */
  async function push(proxy: CuttingProxy, repo: string) {
    const root = path.join(dir, `st${n++}`);
    await imgtool(root, ['load', '-i', path.join(dir, 'u.tar'), '--no-unpack']);
    const store = Store.open(root);
    try {
      return await pushImage(store, 'example.com/up:1', `${proxy.host}/${repo}:1`, { insecure: true, chunkSize: CHUNK, backoffMs: 10 });
    } finally {
      store.close();
    }
  }

  /** The blob as the registry stored it (its filesystem layout), hashed. */
  function stored(digest: string): string {
    const hex = digest.slice(7);
    const data = path.join(dir, 'reg', 'data', 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
    return 'sha256:' + createHash('sha256').update(fs.readFileSync(data)).digest('hex');
  }

  const patchesOf = (p: CuttingProxy) => p.log.filter((e) => e.method === 'PATCH');

  it('a large blob goes up in PATCH chunks with Content-Range, small ones in one PUT', async () => {
    if (!HAVE) return;
    const proxy = await startCuttingProxy(reg, { match: () => false, afterBytes: 0, times: 0 });
    try {
      const r = await push(proxy, 'chunks');
      expect(r.digest).toBe(img.descriptor.digest);
      expect(r.blobs.uploaded).toBe(3);
      const patches = patchesOf(proxy);
      const size = img.layers[1].size;
      expect(patches.map((p) => p.contentRange)).toEqual(
        Array.from({ length: Math.ceil(size / CHUNK) }, (_, i) => `${i * CHUNK}-${Math.min(size, (i + 1) * CHUNK) - 1}`),
      );
      expect(patches.every((p) => p.status === 202)).toBe(true);
      expect(proxy.log.filter((e) => e.method === 'POST')).toHaveLength(3);
      expect(stored(big)).toBe(big);
    } finally {
      await proxy.close();
    }
  });

  it('a PATCH reset before its bytes reached the registry: status GET, then the upload continues from the offset the registry gives, in the same session', async () => {
    if (!HAVE) return;
    let patches = 0;
    const proxy = await startCuttingProxy(reg, { match: (m) => m === 'PATCH' && ++patches === 3, afterBytes: 0, times: 1 });
    try {
      const r = await push(proxy, 'resume');
      expect(r.digest).toBe(img.descriptor.digest);
      expect(proxy.cuts()).toBe(1);
      const i = proxy.log.findIndex((e) => e.method === 'PATCH' && e.status === 0);
      expect(i).toBeGreaterThan(0);
      // The status request, answered with what the registry has: two chunks.
      expect(proxy.log[i + 1]).toMatchObject({ method: 'GET', status: 204, range: `0-${2 * CHUNK - 1}` });
      expect(proxy.log[i + 2]).toMatchObject({ method: 'PATCH', status: 202, contentRange: `${2 * CHUNK}-${3 * CHUNK - 1}` });
      // No new session: one POST per blob.
      expect(proxy.log.filter((e) => e.method === 'POST')).toHaveLength(3);
      expect(stored(big)).toBe(big);
    } finally {
      await proxy.close();
    }
  });

  it('a PATCH cut mid-body (distribution then drops the session): the upload restarts in a new session and the registry has the right digest', async () => {
    if (!HAVE) return;
    let patches = 0;
    const proxy = await startCuttingProxy(reg, { match: (m) => m === 'PATCH' && ++patches === 2, afterBytes: 100_000, times: 1 });
    try {
      const r = await push(proxy, 'restart');
      expect(r.digest).toBe(img.descriptor.digest);
      expect(proxy.cuts()).toBe(1);
      const i = proxy.log.findIndex((e) => e.method === 'PATCH' && e.status === 0);
      expect(proxy.log[i + 1]).toMatchObject({ method: 'GET', status: 404 });
      expect(proxy.log[i + 2]).toMatchObject({ method: 'POST', status: 202 });
      expect(proxy.log[i + 3]).toMatchObject({ method: 'PATCH', status: 202, contentRange: `0-${CHUNK - 1}` });
      expect(stored(big)).toBe(big);
    } finally {
      await proxy.close();
    }
  });

  it('a monolithic PUT cut mid-body is uploaded again in a new session', async () => {
    if (!HAVE) return;
    let puts = 0;
    const proxy = await startCuttingProxy(reg, { match: (m, u) => m === 'PUT' && u.includes('/blobs/uploads/') && ++puts === 1, afterBytes: 10, times: 1 });
    try {
      const r = await push(proxy, 'mono');
      expect(r.digest).toBe(img.descriptor.digest);
      expect(proxy.cuts()).toBe(1);
      expect(proxy.log.filter((e) => e.method === 'POST')).toHaveLength(4);
    } finally {
      await proxy.close();
    }
  });

  // Chunked: the PATCHes go, the finalising PUT never does. Monolithic (the default chunk size
  // covers the 2 MiB blob): the PUT begins but is destroyed before its last byte, so the registry
  // never gets a complete body; the very last byte is the one changed, only a check before the
  // end catches it (without it the registry's own DIGEST_INVALID would be the error).
  it.each([
    ['chunked', 'corrupt', CHUNK, 100, false],
    ['monolithic', 'corrupt-mono', undefined, 1, true],
  ] as const)('a stored blob whose bytes do not match its digest fails a %s upload before it is finalised', async (_how, repo, chunkSize, fromEnd, putBegins) => {
    if (!HAVE) return;
    const proxy = await startCuttingProxy(reg, { match: () => false, afterBytes: 0, times: 0 });
    try {
      const root = path.join(dir, `st${n++}`);
      await imgtool(root, ['load', '-i', path.join(dir, 'u.tar'), '--no-unpack']);
      const store = Store.open(root);
      try {
        const file = store.content.blobPath(big);
        const buf = fs.readFileSync(file);
        buf[buf.length - fromEnd] ^= 0xff;
        fs.chmodSync(file, 0o644);
        fs.writeFileSync(file, buf);
        const e = await pushImage(store, 'example.com/up:1', `${proxy.host}/${repo}:1`, { insecure: true, chunkSize }).then(() => undefined, (x) => x as Error);
        expect(e?.message).toMatch(new RegExp(`blob ${big} \\(read from the store\\): digest mismatch`));
        expect(e?.message.split('\n')).toHaveLength(1);
      } finally {
        store.close();
      }
      const puts = proxy.log.filter((l) => l.method === 'PUT' && l.url.includes(`digest=${encodeURIComponent(big)}`));
      expect(puts.length > 0).toBe(putBegins);
      const res = await fetch(`http://${reg}/v2/${repo}/blobs/${big}`, { method: 'HEAD' });
      expect(res.status).toBe(404);
    } finally {
      await proxy.close();
    }
  });

  it('cut every time: a bounded number of attempts, one clear error naming the blob, the tag untouched', async () => {
    if (!HAVE) return;
    const proxy = await startCuttingProxy(reg, { match: (m) => m === 'PATCH', afterBytes: 1000, times: 1000 });
    try {
      const e = await push(proxy, 'never').then(() => undefined, (x) => x as Error);
      expect(e).toBeInstanceOf(RegistryError);
      expect(e!.message.split('\n')).toHaveLength(1);
      expect(e!.message).toMatch(new RegExp(`blob ${big}: the upload was cut \\d+ times; giving up`));
      expect(proxy.cuts()).toBeLessThanOrEqual(5);
      const res = await fetch(`http://${reg}/v2/never/manifests/1`, { method: 'HEAD' });
      expect(res.status).toBe(404);
    } finally {
      await proxy.close();
    }
  });
});
