/**
 * Registry pull/push against the REAL distribution registry (Debian's docker-registry), started
 * per file on 127.0.0.1 with a free port and temp storage (scripts/peers/registry-up.sh), through
 * the built CLI. No mock of the registry. Cross-checked with skopeo; the seed scenario ends in
 * containerd (`ctr images import --no-unpack` + `ctr images check`).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import * as http from 'node:http';
import { AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';
import { rmrf, runCli, tmpDir } from '../helpers/cli';
import { requirePeer, startRegistry, stopRegistry, startContainerd, stopContainerd, ctr, whichBinary } from '../helpers/peers';
import { ImageBuilder, BuiltImage } from '../../src/builder';
import { parseImagesCheck } from '../../src/kind/ctr';
import { imgtool, imgtoolJson } from './matrix-fixtures';

jest.setTimeout(180_000);

const HAVE = requirePeer('docker-registry');
const HAVE_SKOPEO = HAVE && requirePeer('skopeo');

const sha = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');

describe('registry pull/push against docker-registry', () => {
  let dir: string;
  let reg: string; // host:port
  let src: string; // store the images are built into
  let img: BuiltImage; // single-platform image (gzip layers)
  let multiDigest: string;

  beforeAll(async () => {
    if (!HAVE) return;
    dir = tmpDir('ireg-');
    reg = await startRegistry(path.join(dir, 'reg'));
    src = path.join(dir, 'src');
    const b = new ImageBuilder(path.join(dir, 'build'));
    const l1 = await b.layer([{ path: 'etc/', type: 'dir' }, { path: 'etc/os', content: 'imgtool\n' }]);
    const l2 = await b.layer([{ path: 'data.bin', content: { size: 2 << 20, seed: 7 } }]);
    const l3 = await b.layer([{ path: 'arm', content: 'arm64\n' }]);
    img = b.image({ layers: [l1, l2], platform: 'linux/amd64' });
    const arm = b.image({ layers: [l1, l3], platform: 'linux/arm64' });
    const idx = b.index({ images: [img, arm], format: 'oci', attestations: true });
    multiDigest = idx.descriptor.digest;
    await b.ociArchive(path.join(dir, 'one.tar'), { images: [{ target: img, names: [`${reg}/one:1`] }] });
    await b.ociArchive(path.join(dir, 'multi.tar'), { images: [{ target: idx, names: [`${reg}/multi:1`] }] });
    await imgtool(src, ['load', '-i', path.join(dir, 'one.tar'), '--no-unpack']);
    await imgtool(src, ['load', '-i', path.join(dir, 'multi.tar'), '--no-unpack', '--all-platforms']);
  });

  afterAll(async () => {
    if (!HAVE || !dir) return;
    await stopRegistry(path.join(dir, 'reg')).catch(() => undefined);
    rmrf(dir);
  });

  it('push then pull into another store gives the same digests; a second push uploads nothing; skopeo sees it', async () => {
    if (!HAVE) return;
    const p1 = await imgtoolJson(src, ['push', `${reg}/one:1`, '--insecure']);
    expect(p1.digest).toBe(img.descriptor.digest);
    expect(p1.blobs.uploaded).toBe(3);
    const p2 = await imgtoolJson(src, ['push', `${reg}/one:1`, '--insecure']);
    expect(p2.blobs).toEqual({ uploaded: 0, skipped: 3, mounted: 0, bytes: 0 });
    expect(p2.manifests.uploaded).toBe(0);

    const dst = path.join(dir, 'dst1');
    const pulled = await imgtoolJson(dst, ['pull', `${reg}/one:1`, '--insecure']);
    expect(pulled.images[0].digest).toBe(img.descriptor.digest);
    expect(pulled.unpacked).toHaveLength(1);
    const ls = await imgtoolJson(dst, ['images']);
    expect(JSON.stringify(ls)).toContain(img.descriptor.digest);

    // Already complete: one manifest request.
    const again = await imgtoolJson(dst, ['pull', `${reg}/one:1`, '--insecure', '--no-unpack']);
    expect(again.images[0].requests).toBe(1);
    expect(again.images[0].blobs.fetched).toBe(0);

    if (HAVE_SKOPEO) {
      const raw = execFileSync('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${reg}/one:1`]);
      expect(sha(raw)).toBe(img.descriptor.digest);
    }
  });

  it('a push of an index (with attestations) and its pull by digest and --all-platforms keep the index digest, and push it back identically; --digests adds NAME@DIGEST', async () => {
    if (!HAVE) return;
    const p = await imgtoolJson(src, ['push', `${reg}/multi:1`, '--insecure']);
    expect(p.digest).toBe(multiDigest);
    const dst = path.join(dir, 'dst2');
    const r = await imgtoolJson(dst, ['pull', `${reg}/multi@${multiDigest}`, '--insecure', '--all-platforms', '--no-unpack']);
    expect(r.images[0].names).toEqual([`${reg}/multi@${multiDigest}`]);
    expect(r.images[0].platforms.sort()).toEqual(['linux/amd64', 'linux/arm64']);
    expect(r.images[0].partial).toBe(false);
    // A byte-identical mirror (attestations included): pushing what --all-platforms pulled keeps the index digest.
    const mirror = await imgtoolJson(dst, ['push', `${reg}/multi@${multiDigest}`, `${reg}/mirror:1`, '--insecure']);
    expect(mirror.digest).toBe(multiDigest);
    expect(mirror.changes).toEqual([]);
    const t = await imgtoolJson(dst, ['pull', `${reg}/multi:1`, '--insecure', '--digests', '--platform', 'linux/arm64', '--no-unpack']);
    expect(t.images[0].names).toEqual([`${reg}/multi:1`, `${reg}/multi@${multiDigest}`]);
  });

  it('a push to another repository of the same registry mounts instead of uploading', async () => {
    if (!HAVE) return;
    await imgtoolJson(src, ['push', `${reg}/one:1`, '--insecure']);
    const m = await imgtoolJson(src, ['push', `${reg}/one:1`, `${reg}/mounted/copy:1`, '--insecure']);
    expect(m.blobs.uploaded).toBe(0);
    expect(m.blobs.mounted).toBe(3);
    expect(m.digest).toBe(img.descriptor.digest);
  });

  it('a partial image is pushed as its present platforms under a new index, old -> new printed', async () => {
    if (!HAVE) return;
    const dst = path.join(dir, 'dst3');
    await imgtool(src, ['push', `${reg}/multi:1`, '--insecure']);
    await imgtool(dst, ['pull', `${reg}/multi:1`, '--insecure', '--platform', 'linux/arm64', '--no-unpack']);
    const r = await runCli(['push', `${reg}/multi:1`, `${reg}/partial:1`, '--insecure'], { root: dst });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`index ${multiDigest} -> sha256:[0-9a-f]{64}`));
    const bad = await runCli(['push', `${reg}/multi:1`, `${reg}/partial:2`, '--insecure', '--all-platforms'], { root: dst });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr.trim().split('\n')[0]).toMatch(/^imgtool: error: .*linux\/amd64/);
  });

  it('what skopeo copy pushes, imgtool pulls with the same digests', async () => {
    if (!HAVE_SKOPEO) return;
    execFileSync('skopeo', ['copy', '--all', '--dest-tls-verify=false', `oci-archive:${path.join(dir, 'multi.tar')}`, `docker://${reg}/bysk:1`], { stdio: 'pipe' });
    const dst = path.join(dir, 'dst4');
    const r = await imgtoolJson(dst, ['pull', `${reg}/bysk:1`, '--insecure', '--all-platforms', '--no-unpack']);
    expect(r.images[0].digest).toBe(multiDigest);
    const v = await runCli(['save', '-o', path.join(dir, 'bysk.tar'), `${reg}/bysk:1`], { root: dst });
    expect(v.code).toBe(0);
  });

  it('an unknown repository or tag is one clear line and registers nothing', async () => {
    if (!HAVE) return;
    const dst = path.join(dir, 'dst5');
    for (const ref of [`${reg}/nope:1`, `${reg}/one:nope`]) {
      const r = await runCli(['pull', ref, '--insecure'], { root: dst });
      expect(r.code).not.toBe(0);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/not found .*\(404\)/);
    }
    const ls = await imgtoolJson(dst, ['images']);
    expect(JSON.stringify(ls)).not.toContain('nope');
  });

  it('a blob whose bytes in the registry do not match its digest fails the pull and registers nothing', async () => {
    if (!HAVE) return;
    await imgtool(src, ['push', `${reg}/one:1`, `${reg}/corrupt:1`, '--insecure']);
    // A layer unique to this test: rewrite a copy of it in the registry's storage.
    const b = new ImageBuilder(path.join(dir, 'build-c'));
    const l = await b.layer([{ path: 'victim', content: { size: 300_000, seed: 99 } }]);
    const im = b.image({ layers: [l] });
    await b.ociArchive(path.join(dir, 'c.tar'), { images: [{ target: im, names: [`${reg}/corrupt:2`] }] });
    await imgtool(src, ['load', '-i', path.join(dir, 'c.tar'), '--no-unpack']);
    await imgtool(src, ['push', `${reg}/corrupt:2`, '--insecure']);
    const hex = l.digest.slice(7);
    const data = path.join(dir, 'reg', 'data', 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
    const buf = fs.readFileSync(data);
    buf[buf.length >> 1] ^= 0xff;
    fs.writeFileSync(data, buf);
    const dst = path.join(dir, 'dst6');
    const r = await runCli(['pull', `${reg}/corrupt:2`, '--insecure'], { root: dst });
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/digest mismatch/);
    expect(r.stderr).toContain(l.digest);
    const ls = await imgtoolJson(dst, ['images']);
    expect(ls).toEqual([]);
  });

  /** A TCP-level proxy in front of the real registry that cuts blob downloads of `digest` half-way (`cuts` times). */
  async function cuttingProxy(digest: string, cuts: number): Promise<{ host: string; close: () => Promise<void>; blobGets: () => number; ranges: Array<string | undefined> }> {
    const [rh, rp] = reg.split(':');
    let gets = 0;
    const ranges: Array<string | undefined> = [];
    const srv = http.createServer((req, res) => {
      const isBlob = req.method === 'GET' && req.url?.includes(`/blobs/${digest}`);
      const up = http.request({ host: rh, port: Number(rp), method: req.method, path: req.url, headers: req.headers }, (ur) => {
        if (!isBlob) {
          res.writeHead(ur.statusCode ?? 502, ur.headers);
          return void ur.pipe(res);
        }
        gets++;
        ranges.push(req.headers.range);
        const cut = gets <= cuts;
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        let sent = 0;
        const total = Number(ur.headers['content-length'] ?? 0);
        // (a Range answer is cut too: half of what is left)
        ur.on('data', (c: Buffer) => {
          if (cut && sent + c.length > total / 2) {
            res.write(c.subarray(0, Math.max(0, Math.floor(total / 2) - sent)));
            ur.destroy();
            res.socket?.destroy();
            return;
          }
          sent += c.length;
          res.write(c);
        });
        ur.on('end', () => res.end());
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    return {
      host: `127.0.0.1:${(srv.address() as AddressInfo).port}`,
      blobGets: () => gets,
      ranges,
      close: () => new Promise<void>((r) => { srv.closeAllConnections(); srv.close(() => r()); }),
    };
  }

  it('a blob download cut once resumes with one Range request and the pull succeeds; cut every time, it fails after bounded attempts and registers nothing', async () => {
    if (!HAVE) return;
    await imgtool(src, ['push', `${reg}/one:1`, '--insecure']);
    const layer = img.layers[1].digest; // the 2 MiB layer
    const once = await cuttingProxy(layer, 1);
    try {
      const dst = path.join(dir, 'dst-cut1');
      const r = await imgtoolJson(dst, ['pull', `${once.host}/one:1`, '--insecure', '--no-unpack']);
      expect(r.images[0].digest).toBe(img.descriptor.digest);
      expect(once.blobGets()).toBe(2);
      expect(once.ranges[0]).toBeUndefined();
      const m = /^bytes=(\d+)-$/.exec(once.ranges[1] ?? '');
      expect(m).not.toBeNull();
      expect(Number(m![1])).toBeGreaterThan(0);
    } finally {
      await once.close();
    }
    const always = await cuttingProxy(layer, 1000);
    try {
      const dst = path.join(dir, 'dst-cut2');
      const r = await runCli(['pull', `${always.host}/one:1`, '--insecure', '--no-unpack'], { root: dst });
      expect(r.code).not.toBe(0);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(new RegExp(`${layer}.*cut 3 times`));
      expect(always.blobGets()).toBe(3);
      expect(await imgtoolJson(dst, ['images'])).toEqual([]);
      // Nothing partial in the store: no temp files left in the ingest directory.
      const ingest = path.join(dst, 'content', 'ingest');
      expect(fs.existsSync(ingest) ? fs.readdirSync(ingest) : []).toEqual([]);
    } finally {
      await always.close();
    }
  });

  it('a layer discarded after unpacking is rebuilt on push (same digests)', async () => {
    if (!HAVE) return;
    const st = path.join(dir, 'disc');
    await imgtool(st, ['load', '-i', path.join(dir, 'one.tar'), '--discard-layers']);
    const r = await imgtoolJson(st, ['push', `${reg}/one:1`, `${reg}/rebuilt:1`, '--insecure']);
    expect(r.digest).toBe(img.descriptor.digest);
    expect(r.changes).toEqual([]);
  });

  it('an oversized manifest (64 MiB, served in front of the real registry) fails the pull in one line before it is read — by tag, by digest, with and without a Content-Length; nothing registered', async () => {
    if (!HAVE) return;
    // distribution itself refuses to serve a stored blob over 4 MiB as a manifest ("storage: read
    // exceeds limit", 500), so the oversized document comes from a proxy standing for another
    // registry: a valid manifest head, then padding, generated lazily with back-pressure.
    const TOTAL = 64 << 20;
    const head = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: img.manifest.config, layers: img.manifest.layers }).slice(0, -1) + ',"annotations":{"pad":"');
    const tail = Buffer.from('"}}');
    const pad = Buffer.alloc(1 << 20, 'p');
    const body = function* () {
      yield head;
      let n = head.length + tail.length;
      while (n < TOTAL) {
        const c = pad.subarray(0, Math.min(pad.length, TOTAL - n));
        n += c.length;
        yield c;
      }
      yield tail;
    };
    const h = createHash('sha256');
    for (const c of body()) h.update(c);
    const digest = 'sha256:' + h.digest('hex');
    const [rh, rp] = reg.split(':');
    const served: number[] = [];
    const proxy = async (withLength: boolean) => {
      const srv = http.createServer((req, res) => {
        if (req.url?.startsWith('/v2/planted/huge/manifests/')) {
          res.writeHead(200, { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json', 'Docker-Content-Digest': digest, ...(withLength ? { 'Content-Length': String(TOTAL) } : {}) });
          if (req.method === 'HEAD') return void res.end();
          const i = served.push(0) - 1;
          const it = body();
          const pump = () => {
            for (let r = it.next(); !r.done; r = it.next()) {
              served[i] += r.value.length;
              if (!res.write(r.value)) return void res.once('drain', pump);
            }
            res.end();
          };
          res.on('close', () => it.return(undefined));
          return pump();
        }
        const up = http.request({ host: rh, port: Number(rp), method: req.method, path: req.url, headers: req.headers }, (ur) => {
          res.writeHead(ur.statusCode ?? 502, ur.headers);
          ur.pipe(res);
        });
        up.on('error', () => res.destroy());
        req.pipe(up);
      });
      await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
      return { host: `127.0.0.1:${(srv.address() as AddressInfo).port}`, close: () => new Promise<void>((r) => { srv.closeAllConnections(); srv.close(() => r()); }) };
    };
    const dst = path.join(dir, 'dst-huge');
    for (const withLength of [true, false]) {
      const p = await proxy(withLength);
      try {
        for (const ref of [`${p.host}/planted/huge:1`, `${p.host}/planted/huge@${digest}`]) {
          const r = await runCli(['pull', ref, '--insecure'], { root: dst });
          expect(r.code).not.toBe(0);
          const why = withLength ? `${TOTAL} bytes, over the 4194304-byte limit` : 'more than the 4194304-byte limit';
          expect(r.stderr.trim().split('\n')).toEqual([`imgtool: error: manifest ${ref}: ${why}`]);
        }
      } finally {
        await p.close();
      }
    }
    // Not read whole: at most the cap plus socket buffers went out (nothing at all with a Content-Length).
    expect(served).toHaveLength(4);
    for (const n of served) expect(n).toBeLessThan(16 << 20);
    expect(await imgtoolJson(dst, ['images'])).toEqual([]);
    const ingest = path.join(dst, 'content', 'ingest');
    expect(fs.existsSync(ingest) ? fs.readdirSync(ingest) : []).toEqual([]);
    expect(fs.existsSync(path.join(dst, 'content', 'blobs', 'sha256', digest.slice(7)))).toBe(false);
  });

  it('a manifest over the 4 MiB registry limit is refused before any upload', async () => {
    if (!HAVE) return;
    const b = new ImageBuilder(path.join(dir, 'build-big'));
    const l = await b.layer([{ path: 'big-manifest', content: 'x\n' }]);
    const im = b.image({ layers: [l], format: 'oci', annotations: { huge: 'a'.repeat(4 * 1024 * 1024 + 10) } });
    await b.ociArchive(path.join(dir, 'big.tar'), { images: [{ target: im, names: [`${reg}/big:1`] }] });
    const st = path.join(dir, 'bigst');
    await imgtool(st, ['load', '-i', path.join(dir, 'big.tar'), '--no-unpack']);
    const r = await runCli(['push', `${reg}/big:1`, '--insecure'], { root: st });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/over the registry limit.*nothing uploaded/);
    const head = await runCli(['pull', `${reg}/big:1`, '--insecure'], { root: path.join(dir, 'bigst2') });
    expect(head.stderr).toMatch(/404/);
    // The layer was never uploaded.
    const hex = l.digest.slice(7);
    expect(fs.existsSync(path.join(dir, 'reg', 'data', 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex))).toBe(false);
  });
});

/**
 * The seed scenario: two images from the same layer tars, compressed differently, pushed under
 * two names; pull A (unpacked), then pull B into the same store — B's blobs must all be fetched
 * although A's snapshots have the same chainIDs — then save B and `ctr images import --no-unpack`
 * it: complete.
 */
describe('seed scenario: shared diffIDs, other compression', () => {
  const HAVE_CTD = HAVE && requirePeer('containerd');
  let dir: string;
  let reg: string;
  let sock: string | undefined;

  beforeAll(async () => {
    if (!HAVE_CTD) return;
    dir = tmpDir('iseed-');
    reg = await startRegistry(path.join(dir, 'reg'));
    sock = await startContainerd(path.join(dir, 'ctd'));
  });
  afterAll(async () => {
    if (!HAVE_CTD || !dir) return;
    await stopRegistry(path.join(dir, 'reg')).catch(() => undefined);
    if (sock) await stopContainerd(path.join(dir, 'ctd')).catch(() => undefined);
    rmrf(dir);
  });

  it('pull A unpacked, pull B, save B, ctr import --no-unpack: complete', async () => {
    if (!HAVE_CTD) return;
    const b = new ImageBuilder(path.join(dir, 'build'));
    const entries1 = [{ path: 'etc/', type: 'dir' as const }, { path: 'etc/seed', content: 'seed\n' }];
    const entries2 = [{ path: 'payload', content: { size: 1 << 20, seed: 3 } }];
    const a1 = await b.layer(entries1, { compression: 'gzip' });
    const a2 = await b.layer(entries2, { compression: 'gzip' });
    const b1 = await b.layer(entries1, { compression: 'zstd' });
    const b2 = await b.layer(entries2, { compression: 'zstd' });
    expect(b1.diffId).toBe(a1.diffId);
    const A = b.image({ layers: [a1, a2], format: 'oci' });
    const B = b.image({ layers: [b1, b2], format: 'oci' });
    await b.ociArchive(path.join(dir, 'ab.tar'), { images: [{ target: A, names: [`${reg}/seed/a:1`] }, { target: B, names: [`${reg}/seed/b:1`] }] });
    const up = path.join(dir, 'up');
    await imgtool(up, ['load', '-i', path.join(dir, 'ab.tar'), '--no-unpack']);
    await imgtool(up, ['push', `${reg}/seed/a:1`, '--insecure']);
    await imgtool(up, ['push', `${reg}/seed/b:1`, '--insecure']);

    const st = path.join(dir, 'st');
    await imgtool(st, ['pull', `${reg}/seed/a:1`, '--insecure']);
    const pb = await imgtoolJson(st, ['pull', `${reg}/seed/b:1`, '--insecure']);
    expect(pb.images[0].digest).toBe(B.descriptor.digest);
    // Both zstd layers are fetched although A's snapshots have their chainIDs (A and B share the config).
    expect(pb.images[0].blobs).toMatchObject({ fetched: 2, present: 1 });
    const tar = path.join(dir, 'b.tar');
    await imgtool(st, ['save', '-o', tar, `${reg}/seed/b:1`]);
    await ctr(sock!, ['images', 'import', '--no-unpack', '--digests', tar], { namespace: 'seed' });
    const check = parseImagesCheck(await ctr(sock!, ['images', 'check'], { namespace: 'seed' }));
    const row = check.find((c) => c.name === `${reg}/seed/b:1`);
    expect(row).toBeDefined();
    expect(row!.complete).toBe(true);
    // And pushing B again from this store (another repository) keeps its digest.
    const re = await imgtoolJson(st, ['push', `${reg}/seed/b:1`, `${reg}/seed/b2:1`, '--insecure']);
    expect(re.digest).toBe(B.descriptor.digest);
  });
});

/** htpasswd (bcrypt) Basic auth: login checks, wrong password = one clear line, nothing stored or registered. */
describe('registry with htpasswd Basic auth', () => {
  const HAVE_HT = HAVE && !!whichBinary('htpasswd');
  if (HAVE && !HAVE_HT) {
    if (process.env.CI === 'true') throw new Error('CI=true: htpasswd (apache2-utils) not installed');
    console.warn('\n!!! SKIP registry Basic auth tests: htpasswd not found on PATH (apt-get install apache2-utils)\n');
  }
  let dir: string;
  let reg: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    if (!HAVE_HT) return;
    dir = tmpDir('iauth-');
    const ht = path.join(dir, 'htpasswd');
    execFileSync('htpasswd', ['-B', '-b', '-c', ht, 'alice', 's3cret-pw']);
    reg = await startRegistry(path.join(dir, 'reg'), undefined, ht);
    env = { DOCKER_CONFIG: path.join(dir, 'docker'), REGISTRY_AUTH_FILE: path.join(dir, 'none.json'), XDG_RUNTIME_DIR: path.join(dir, 'xdg'), HOME: dir };
    const b = new ImageBuilder(path.join(dir, 'build'));
    const l = await b.layer([{ path: 'auth', content: 'ok\n' }]);
    await b.ociArchive(path.join(dir, 'a.tar'), { images: [{ target: b.image({ layers: [l] }), names: [`${reg}/private/app:1`] }] });
    await imgtool(path.join(dir, 'src'), ['load', '-i', path.join(dir, 'a.tar'), '--no-unpack']);
  });
  afterAll(async () => {
    if (!HAVE_HT || !dir) return;
    await stopRegistry(path.join(dir, 'reg')).catch(() => undefined);
    rmrf(dir);
  });

  it('anonymous push is refused with one clear line', async () => {
    if (!HAVE_HT) return;
    const r = await runCli(['push', `${reg}/private/app:1`, '--insecure'], { root: path.join(dir, 'src'), env });
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^imgtool: error: registry .*authentication required.*\(401\)/)]);
  });

  it('login with a wrong password fails in one line and stores nothing', async () => {
    if (!HAVE_HT) return;
    const r = await runCli(['login', reg, '-u', 'alice', '--password-stdin', '--insecure'], { env, input: Buffer.from('wrong\n') });
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/refused these credentials \(401\); nothing stored/);
    expect(r.stderr + r.stdout).not.toContain('wrong');
    expect(fs.existsSync(path.join(dir, 'docker', 'config.json'))).toBe(false);
  });

  it('credentials are not sent over plain HTTP without --insecure', async () => {
    if (!HAVE_HT) return;
    const r = await runCli(['login', reg, '-u', 'alice', '--password-stdin'], { env, input: Buffer.from('s3cret-pw\n') });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/plain HTTP.*--insecure/);
  });

  it('login stores the credentials (0600, other keys kept); push and pull then work; a wrong stored password registers nothing', async () => {
    if (!HAVE_HT) return;
    fs.mkdirSync(path.join(dir, 'docker'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'docker', 'config.json'), JSON.stringify({ psFormat: 'table', auths: { 'other.example': { auth: 'eDp5' } } }));
    const r = await runCli(['login', reg, '-u', 'alice', '--password-stdin', '--insecure'], { env, input: Buffer.from('s3cret-pw\n') });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain('s3cret');
    const cfgPath = path.join(dir, 'docker', 'config.json');
    expect(fs.statSync(cfgPath).mode & 0o777).toBe(0o600);
    const cfg = JSON.parse(fs.readFileSync(cfgPath, 'utf8'));
    expect(cfg.psFormat).toBe('table');
    expect(cfg.auths['other.example']).toEqual({ auth: 'eDp5' });
    expect(Buffer.from(cfg.auths[reg].auth, 'base64').toString()).toBe('alice:s3cret-pw');

    const p = await runCli(['push', `${reg}/private/app:1`, '--insecure'], { root: path.join(dir, 'src'), env });
    expect(p.stderr).toBe('');
    expect(p.code).toBe(0);
    const dst = path.join(dir, 'dst');
    const g = await runCli(['pull', `${reg}/private/app:1`, '--insecure'], { root: dst, env });
    expect(g.code).toBe(0);

    // Wrong stored password: one clear line naming the registry, nothing registered.
    cfg.auths[reg].auth = Buffer.from('alice:nope').toString('base64');
    fs.writeFileSync(cfgPath, JSON.stringify(cfg));
    const dst2 = path.join(dir, 'dst2');
    const w = await runCli(['pull', `${reg}/private/app:1`, '--insecure'], { root: dst2, env });
    expect(w.code).not.toBe(0);
    expect(w.stderr.trim().split('\n')).toEqual([expect.stringMatching(new RegExp(`^imgtool: error: registry ${reg.replace(/\./g, '\\.')}: credentials from .*config.json were refused .*\\(401\\)$`))]);
    expect(w.stderr).not.toContain('nope');
    expect(await imgtoolJson(dst2, ['images'])).toEqual([]);

    const lo = await runCli(['logout', reg], { env });
    expect(lo.code).toBe(0);
    const after = JSON.parse(fs.readFileSync(cfgPath, 'utf8'));
    expect(after.auths[reg]).toBeUndefined();
    expect(after.auths['other.example']).toEqual({ auth: 'eDp5' });
  });
});
