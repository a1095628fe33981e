import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import * as tarStream from 'tar-stream';
import { decompressStream } from '../../../src/compression/codecs';
import {
  BuiltLayer,
  ImageBuilder,
  LayerEntry,
  encodePaxRecords,
  layerTar,
  rawTar,
  writeRawTar,
} from '../../../src/builder';
import { MediaType } from '../../../src/images/mediatypes';
import { requirePeer } from '../../helpers/peers';
import { rmrf, tmpDir } from '../../helpers/cli';

const CAP = Buffer.from('0100000200200000000000000000000000000000', 'hex'); // cap_net_raw+ep
const LONG = 'usr/share/' + 'd'.repeat(110) + '/a-file-whose-full-path-is-longer-than-one-hundred-bytes.txt';
const LONG_TARGET = '/opt/' + 't'.repeat(120);

function sampleEntries(): LayerEntry[] {
  return [
    { path: 'etc/', type: 'dir' },
    { path: 'etc/hello', content: 'hello\n', uname: 'root', gname: 'root' },
    { path: LONG, content: 'long\n' },
    { path: 'bin/ping', content: Buffer.from([0x7f, 0x45, 0x4c, 0x46]), mode: 0o755, xattrs: { 'security.capability': CAP } },
    { path: 'etc/link', type: 'symlink', target: 'hello' },
    { path: 'etc/longlink', type: 'symlink', target: LONG_TARGET },
    { path: 'etc/hard', type: 'hardlink', target: 'etc/hello' },
    { path: 'tmp/gone', type: 'whiteout' },
    { path: 'var/cache', type: 'opaque' },
    { path: 'dev/null', type: 'char', major: 1, minor: 3 },
    { path: 'dev/sda', type: 'block', major: 8, minor: 0 },
    { path: 'run/fifo', type: 'fifo' },
    { path: 'data/rand', content: { size: 300_000, seed: 7 } },
    { path: 'data/text', content: { size: 300_000, seed: 7, text: true }, uid: 1000, gid: 1000, mtime: 1700000000 },
  ];
}

function sha256File(p: string): string {
  return 'sha256:' + createHash('sha256').update(fs.readFileSync(p)).digest('hex');
}

async function decompressedDigest(file: string, c: 'none' | 'gzip' | 'zstd'): Promise<{ digest: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  await pipeline(
    fs.createReadStream(file),
    decompressStream(c),
    new Writable({
      write(chunk: Buffer, _e, cb) {
        h.update(chunk);
        size += chunk.length;
        cb();
      },
    }),
  );
  return { digest: 'sha256:' + h.digest('hex'), size };
}

interface Listed {
  name: string;
  type: string;
  size: number;
  linkname?: string | null;
  pax?: Record<string, string>;
  devmajor?: number;
  devminor?: number;
  mode?: number;
  uid?: number;
  mtime?: Date;
  data?: Buffer;
}

/** Read a tar (file or buffer) with tar-stream, keeping the bodies of small entries. */
async function listTar(input: string | Buffer): Promise<Listed[]> {
  const ex = tarStream.extract();
  const out: Listed[] = [];
  ex.on('entry', (h, stream, next) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => {
      if (h.size! <= 4096) chunks.push(c);
    });
    stream.on('error', () => {}); // reported through the extract stream
    stream.on('end', () => {
      out.push({ name: h.name, type: h.type!, size: h.size!, linkname: h.linkname, pax: h.pax as Record<string, string> | undefined, devmajor: h.devmajor, devminor: h.devminor, mode: h.mode, uid: h.uid, mtime: h.mtime, data: Buffer.concat(chunks) });
      next();
    });
    stream.resume();
  });
  const done = new Promise<void>((resolve, reject) => {
    ex.on('finish', resolve);
    ex.on('error', reject);
  });
  if (typeof input === 'string') fs.createReadStream(input).pipe(ex);
  else ex.end(input);
  await done;
  return out;
}

describe('builder: layers', () => {
  let dir: string;
  beforeAll(() => {
    dir = tmpDir('imgtool-builder-');
  });
  afterAll(() => rmrf(dir));

  it('is deterministic: the same spec twice gives identical blobs and archives', async () => {
    const results: Array<{ layer: BuiltLayer; img: string; oci: string; d25: string; leg: string }> = [];
    for (const sub of ['a', 'b']) {
      const b = new ImageBuilder(path.join(dir, `det-${sub}`));
      const layer = await b.layer(sampleEntries(), { compression: 'gzip' });
      const l2 = await b.layer([{ path: 'z', content: { size: 10_000, seed: 'z' } }], { compression: 'zstd' });
      const img = b.image({ layers: [layer, l2], platform: 'linux/arm64/v8', config: { Env: ['A=1'] } });
      const oci = await b.ociArchive(path.join(dir, `det-${sub}.oci.tar`), { images: [{ target: img, names: ['example.com/x:1'] }] });
      const d25 = await b.dockerArchive(path.join(dir, `det-${sub}.d25.tar`), { images: [{ image: img, tags: ['x:1'] }] });
      const leg = await b.dockerArchive(path.join(dir, `det-${sub}.leg.tar`), { images: [{ image: img, tags: ['x:1'] }], layout: 'legacy' });
      results.push({ layer, img: img.descriptor.digest, oci: oci.digest, d25: d25.digest, leg: leg.digest });
      expect(sha256File(oci.path)).toBe(oci.digest);
      expect(img.manifest.mediaType).toBe(MediaType.OCI_MANIFEST); // zstd forces OCI
      expect(img.configJson.variant).toBe('v8');
    }
    expect(results[0]).toEqual(results[1]);
  });

  it.each(['none', 'gzip', 'zstd'] as const)('diffID and blob digest are correct (%s)', async (c) => {
    const b = new ImageBuilder(path.join(dir, `diff-${c}`));
    const l = await b.layer(sampleEntries(), { compression: c });
    const blob = b.blobs.path(l.digest);
    expect(sha256File(blob)).toBe(l.digest);
    expect(fs.statSync(blob).size).toBe(l.size);
    const un = await decompressedDigest(blob, c);
    expect(un.digest).toBe(l.diffId);
    expect(un.size).toBe(l.uncompressedSize);
    if (c === 'none') expect(l.digest).toBe(l.diffId);
    else expect(l.digest).not.toBe(l.diffId);
  });

  it('gzip level 1 and 9 give the same diffID but different blobs; so do gzip and zstd', async () => {
    const b = new ImageBuilder(path.join(dir, 'levels'));
    const entries: LayerEntry[] = [{ path: 'text', content: { size: 200_000, text: true, seed: 3 } }];
    const g1 = await b.layer(entries, { compression: 'gzip', level: 1 });
    const g9 = await b.layer(entries, { compression: 'gzip', level: 9 });
    const z = await b.layer(entries, { compression: 'zstd' });
    expect(g1.diffId).toBe(g9.diffId);
    expect(z.diffId).toBe(g1.diffId);
    expect(new Set([g1.digest, g9.digest, z.digest]).size).toBe(3);
    expect(g9.size).toBeLessThan(g1.size);
    // text compresses, random does not
    const r = await b.layer([{ path: 'rand', content: { size: 200_000, seed: 3 } }], { compression: 'gzip' });
    expect(g9.size).toBeLessThan(200_000 / 2);
    expect(r.size).toBeGreaterThan(200_000);
  });

  it('system tar lists every entry, long names, links, devices and xattrs', async () => {
    const b = new ImageBuilder(path.join(dir, 'systar'));
    const l = await b.layer(sampleEntries(), { compression: 'none' });
    const listing = execFileSync('tar', ['--xattrs', "--xattrs-include=*", '-tvvf', b.blobs.path(l.digest)], { encoding: 'utf8' });
    const lines = listing.split('\n');
    const line = (needle: string): string => {
      const found = lines.find((x) => x.includes(needle));
      if (!found) throw new Error(`no line with ${needle} in:\n${listing}`);
      return found;
    };
    expect(line(' etc/hello')).toMatch(/^-rw-r--r--\s+root\/root\s+6 1970-01-01/);
    expect(line(LONG)).toMatch(/^-rw-r--r-- /);
    expect(line('etc/link ->')).toMatch(/^lrwxrwxrwx .* etc\/link -> hello$/);
    expect(line('etc/longlink ->')).toContain(`-> ${LONG_TARGET}`);
    expect(line('etc/hard')).toMatch(/^h.* etc\/hard link to etc\/hello$/);
    expect(line('tmp/.wh.gone')).toMatch(/^-/);
    expect(line('var/cache/.wh..wh..opq')).toMatch(/^-/);
    expect(line('dev/null')).toMatch(/^crw-rw-rw-\s.*\s1,3 /);
    expect(line('dev/sda')).toMatch(/^brw-rw-rw-\s.*\s8,0 /);
    expect(line('run/fifo')).toMatch(/^p/);
    expect(line('data/text')).toMatch(/^-rw-r--r--\s+1000\/1000\s+300000 2023-11-1/);
    const ping = lines.findIndex((x) => x.endsWith(' bin/ping'));
    expect(lines[ping]).toMatch(/^-rwxr-xr-x\*/);
    expect(lines[ping + 1]).toMatch(/x:\s+20 security\.capability/);
    expect(lines.filter((x) => /^[-dlhcbp]/.test(x))).toHaveLength(sampleEntries().length);
  });

  it('writes PAX records for long names, long link targets and binary xattrs', async () => {
    const chunks: Buffer[] = [];
    for await (const c of layerTar(sampleEntries())) chunks.push(c as Buffer);
    const entries = await listTar(Buffer.concat(chunks));
    const long = entries.find((e) => e.name === LONG)!;
    expect(long.pax?.path).toBe(LONG);
    expect(entries.find((e) => e.name === 'etc/longlink')!.linkname).toBe(LONG_TARGET);
    // tar-stream decodes PAX values as strings; check the raw bytes instead
    const tarBuf = Buffer.concat(chunks);
    expect(tarBuf.includes(Buffer.concat([Buffer.from('SCHILY.xattr.security.capability='), CAP, Buffer.from('\n')]))).toBe(true);
    expect(entries.find((e) => e.name === 'data/rand')!.size).toBe(300_000);
  });

  it('can write GNU long-name headers instead of PAX', async () => {
    const b = new ImageBuilder(path.join(dir, 'gnu'));
    const l = await b.layer([{ path: LONG, content: 'x' }, { path: 'l', type: 'symlink', target: LONG_TARGET }], { compression: 'none', longNames: 'gnu' });
    const raw = fs.readFileSync(b.blobs.path(l.digest));
    expect(raw.subarray(0, 13).toString()).toBe('././@LongLink');
    expect(String.fromCharCode(raw[156])).toBe('L');
    expect(raw.includes(Buffer.from('PaxHeaders'))).toBe(false);
    const listing = execFileSync('tar', ['-tvf', b.blobs.path(l.digest)], { encoding: 'utf8' });
    expect(listing).toContain(LONG);
    expect(listing).toContain(`l -> ${LONG_TARGET}`);
  });

  it('PAX record lengths count their own digits', () => {
    const rec = encodePaxRecords({ path: 'x'.repeat(93) });
    // "100 path=xxx…\n": 3 digits + space + 5 + 93 + newline = 100... check it parses back
    const len = parseInt(rec.toString().split(' ')[0], 10);
    expect(len).toBe(rec.length);
  });

  it('hashes a generated layer far larger than its memory use (streaming)', async () => {
    const b = new ImageBuilder(path.join(dir, 'big'));
    const before = process.memoryUsage().rss;
    const l = await b.layer([{ path: 'big', content: { size: 256 * 1024 * 1024, seed: 'big' } }], { compression: 'none' });
    const grew = process.memoryUsage().rss - before;
    expect(l.uncompressedSize).toBe(256 * 1024 * 1024 + 512 + 1024);
    expect(grew).toBeLessThan(128 * 1024 * 1024);
    fs.rmSync(b.blobs.path(l.digest));
  });
});

describe('builder: images, indexes, archives', () => {
  let dir: string;
  let b: ImageBuilder;
  beforeAll(() => {
    dir = tmpDir('imgtool-builder-img-');
    b = new ImageBuilder(path.join(dir, 'blobs'));
  });
  afterAll(() => rmrf(dir));

  it('builds configs and Docker/OCI manifests', async () => {
    const l = await b.layer([{ path: 'a', content: 'a' }]);
    const d = b.image({ layers: [l], platform: 'linux/arm/v7' });
    expect(d.manifest.mediaType).toBe(MediaType.DOCKER_MANIFEST);
    expect(d.manifest.layers[0].mediaType).toBe(MediaType.DOCKER_LAYER_GZIP);
    expect(d.configJson).toMatchObject({ os: 'linux', architecture: 'arm', variant: 'v7', created: '1970-01-01T00:00:00Z', rootfs: { type: 'layers', diff_ids: [l.diffId] } });
    expect(JSON.parse(fs.readFileSync(b.blobs.path(d.config.digest), 'utf8'))).toEqual(d.configJson);
    const o = b.image({ layers: [l], format: 'oci', platform: 'linux/amd64' });
    expect(o.manifest.mediaType).toBe(MediaType.OCI_MANIFEST);
    expect(o.manifest.layers[0].mediaType).toBe(MediaType.OCI_LAYER_GZIP);
    expect(o.config.mediaType).toBe(MediaType.OCI_CONFIG);
    expect(sha256File(b.blobs.path(o.descriptor.digest))).toBe(o.descriptor.digest);
  });

  it('builds a multi-platform index with attestation manifests', async () => {
    const l = await b.layer([{ path: 'a', content: 'a' }]);
    const imgs = ['linux/amd64', 'linux/arm64/v8', 'linux/arm/v7'].map((p) => b.image({ layers: [l], platform: p, format: 'oci' }));
    const idx = b.index({ images: imgs, attestations: true });
    expect(idx.index.mediaType).toBe(MediaType.OCI_INDEX);
    expect(idx.index.manifests).toHaveLength(6);
    expect(idx.index.manifests.slice(0, 3).map((m) => m.platform)).toEqual([
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
      { os: 'linux', architecture: 'arm', variant: 'v7' },
    ]);
    for (let i = 0; i < 3; i++) {
      const att = idx.index.manifests[3 + i];
      expect(att.platform).toEqual({ os: 'unknown', architecture: 'unknown' });
      expect(att.annotations).toEqual({ 'vnd.docker.reference.digest': imgs[i].descriptor.digest, 'vnd.docker.reference.type': 'attestation-manifest' });
      const m = JSON.parse(fs.readFileSync(b.blobs.path(att.digest), 'utf8'));
      expect(m.layers[0].mediaType).toBe(MediaType.IN_TOTO);
      const stmt = JSON.parse(fs.readFileSync(b.blobs.path(m.layers[0].digest), 'utf8'));
      expect(stmt.subject[0].digest.sha256).toBe(imgs[i].descriptor.digest.slice(7));
    }
    const list = b.index({ images: imgs.slice(0, 2).map(() => b.image({ layers: [l] })), format: 'docker' });
    expect(list.index.mediaType).toBe(MediaType.DOCKER_MANIFEST_LIST);
  });

  it('writes OCI archives with ctr / skopeo / no annotations', async () => {
    const l = await b.layer([{ path: 'a', content: 'a' }]);
    const img = b.image({ layers: [l], format: 'oci' });
    const readIndex = async (file: string) => JSON.parse((await listTar(file)).find((e) => e.name === 'index.json')!.data!.toString());
    const ctr = await b.ociArchive(path.join(dir, 'ctr.tar'), { images: [{ target: img, names: ['busybox', 'example.com/a/b@sha256:' + 'a'.repeat(64)] }] });
    const ci = await readIndex(ctr.path);
    expect(ci.manifests.map((m: { annotations: unknown }) => m.annotations)).toEqual([
      { 'io.containerd.image.name': 'docker.io/library/busybox:latest', 'org.opencontainers.image.ref.name': 'latest' },
      { 'io.containerd.image.name': 'example.com/a/b@sha256:' + 'a'.repeat(64), 'org.opencontainers.image.ref.name': 'example.com/a/b@sha256:' + 'a'.repeat(64) },
    ]);
    const sk = await readIndex((await b.ociArchive(path.join(dir, 'sk.tar'), { images: [{ target: img, names: ['busybox:1.36'] }], annotate: 'skopeo-tag' })).path);
    expect(sk.manifests[0].annotations).toEqual({ 'org.opencontainers.image.ref.name': '1.36' });
    const skf = await readIndex((await b.ociArchive(path.join(dir, 'skf.tar'), { images: [{ target: img, names: ['busybox:1.36'] }], annotate: 'skopeo-full' })).path);
    expect(skf.manifests[0].annotations).toEqual({ 'org.opencontainers.image.ref.name': 'busybox:1.36' });
    const none = await readIndex((await b.ociArchive(path.join(dir, 'none.tar'), { images: [{ target: img, names: ['busybox'] }], annotate: 'none' })).path);
    expect(none.manifests[0].annotations).toBeUndefined();
    const withMj = await b.ociArchive(path.join(dir, 'ctr-mj.tar'), { images: [{ target: img, names: ['busybox:1'] }], dockerManifest: true });
    const mj = JSON.parse((await listTar(withMj.path)).find((e) => e.name === 'manifest.json')!.data!.toString());
    expect(mj).toEqual([{ Config: `blobs/sha256/${img.config.digest.slice(7)}`, RepoTags: ['busybox:1'], Layers: [`blobs/sha256/${l.digest.slice(7)}`] }]);
    const names = (await listTar(ctr.path)).map((e) => e.name);
    expect(names).toEqual(['blobs/', 'blobs/sha256/', ...[img.descriptor.digest, img.config.digest, l.digest].map((d) => `blobs/sha256/${d.slice(7)}`).sort(), 'index.json', 'oci-layout']);
  });

  it('controls entry order, wraps in gzip/zstd, truncates, omits blobs', async () => {
    const l = await b.layer([{ path: 'a', content: 'a' }]);
    const img = b.image({ layers: [l] });
    const first = await b.dockerArchive(path.join(dir, 'mf.tar'), { images: [{ image: img, tags: ['a:1'] }], order: 'metadata-first' });
    expect(first.entries.slice(0, 4)).toEqual(['index.json', 'manifest.json', 'oci-layout', 'repositories']);
    const last = await b.dockerArchive(path.join(dir, 'ml.tar'), { images: [{ image: img, tags: ['a:1'] }], order: 'manifest-last' });
    expect(last.entries[last.entries.length - 1]).toBe('manifest.json');
    expect((await listTar(last.path)).map((e) => e.name)).toEqual(last.entries);
    const gz = await b.ociArchive(path.join(dir, 'w.tar.gz'), { images: [{ target: img }], wrap: 'gzip' });
    const gunz = zlib.gunzipSync(fs.readFileSync(gz.path));
    expect((await listTar(gunz)).map((e) => e.name)).toEqual(gz.entries);
    const zs = await b.ociArchive(path.join(dir, 'w.tar.zst'), { images: [{ target: img }], wrap: 'zstd' });
    expect(fs.readFileSync(zs.path).subarray(0, 4)).toEqual(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]));
    const tr = await b.ociArchive(path.join(dir, 'tr.tar'), { images: [{ target: img }], truncateAt: 1000 });
    expect(fs.statSync(tr.path).size).toBe(1000);
    const om = await b.ociArchive(path.join(dir, 'om.tar'), { images: [{ target: img }], omitBlobs: [l.digest] });
    expect(om.entries).not.toContain(`blobs/sha256/${l.digest.slice(7)}`);
    const custom = await b.ociArchive(path.join(dir, 'cu.tar'), { images: [{ target: img }], dirEntries: false, order: (n) => [...n].reverse() });
    expect(custom.entries[0]).toBe('oci-layout');
    expect(custom.entries).not.toContain('blobs/');
  });

  it('docker 25+ layout: uncompressed layers at blobs/sha256/<diffID>, manifest.json, repositories', async () => {
    const l1 = await b.layer([{ path: 'a', content: 'a' }], { compression: 'gzip' });
    const l2 = await b.layer([{ path: 'b', content: 'b' }], { compression: 'zstd' });
    const img = b.image({ layers: [l1, l2] });
    const res = await b.dockerArchive(path.join(dir, 'd25.tar'), { images: [{ image: img, tags: ['busybox:latest', 'example.com/x/y:2'] }] });
    const ents = await listTar(res.path);
    const get = (n: string) => JSON.parse(ents.find((e) => e.name === n)!.data!.toString());
    expect(get('manifest.json')).toEqual([{ Config: `blobs/sha256/${img.config.digest.slice(7)}`, RepoTags: ['busybox:latest', 'example.com/x/y:2'], Layers: [l1.diffId, l2.diffId].map((d) => `blobs/sha256/${d.slice(7)}`) }]);
    expect(get('repositories')).toEqual({ busybox: { latest: l2.diffId.slice(7) }, 'example.com/x/y': { '2': l2.diffId.slice(7) } });
    const index = get('index.json');
    expect(index.manifests.map((m: { annotations: Record<string, string> }) => m.annotations['io.containerd.image.name'])).toEqual(['docker.io/library/busybox:latest', 'example.com/x/y:2']);
    const man = get(`blobs/sha256/${index.manifests[0].digest.slice(7)}`);
    expect(man.layers.map((x: { mediaType: string; digest: string }) => [x.mediaType, x.digest])).toEqual([[MediaType.OCI_LAYER, l1.diffId], [MediaType.OCI_LAYER, l2.diffId]]);
    expect(ents.find((e) => e.name === `blobs/sha256/${l1.diffId.slice(7)}`)!.size).toBe(l1.uncompressedSize);
  });

  it('docker legacy layout: v1 dirs, symlinked duplicate layers, compressed layers', async () => {
    const shared = await b.layer([{ path: 'shared', content: 'same' }], { compression: 'gzip' });
    const top = await b.layer([{ path: 'top', content: 'top' }], { compression: 'gzip' });
    const img1 = b.image({ layers: [shared, top, shared] });
    const top2 = await b.layer([{ path: 'top2', content: 'top2' }], { compression: 'gzip' });
    const img2 = b.image({ layers: [shared, top2], platform: 'linux/arm64' });
    const res = await b.dockerArchive(path.join(dir, 'leg.tar'), { images: [{ image: img1, tags: ['one:1'] }, { image: img2, tags: ['two:2'] }], layout: 'legacy' });
    const ents = await listTar(res.path);
    const mj = JSON.parse(ents.find((e) => e.name === 'manifest.json')!.data!.toString());
    expect(mj).toHaveLength(2);
    expect(mj[0].Config).toBe(`${img1.config.digest.slice(7)}.json`);
    expect(mj[0].Layers).toHaveLength(3);
    expect(mj[1].Layers[0]).toBe(mj[0].Layers[0]); // same chain below the top -> same v1 id, written once
    expect(ents.filter((e) => e.name === mj[0].Layers[0])).toHaveLength(1);
    const third = ents.find((e) => e.name === mj[0].Layers[2])!;
    expect(third.type).toBe('symlink');
    expect(third.linkname).toBe(`../${mj[0].Layers[0]}`);
    const firstLayer = ents.find((e) => e.name === mj[0].Layers[0])!;
    expect(firstLayer.type).toBe('file');
    expect(firstLayer.size).toBe(shared.uncompressedSize);
    const v1 = JSON.parse(ents.find((e) => e.name === mj[0].Layers[1].replace('layer.tar', 'json'))!.data!.toString());
    expect(v1.parent).toBe(mj[0].Layers[0].split('/')[0]);
    expect(ents.find((e) => e.name === mj[0].Layers[0].replace('layer.tar', 'VERSION'))!.data!.toString()).toBe('1.0');
    const repos = JSON.parse(ents.find((e) => e.name === 'repositories')!.data!.toString());
    expect(repos).toEqual({ one: { '1': mj[0].Layers[2].split('/')[0] }, two: { '2': mj[1].Layers[1].split('/')[0] } });

    const copy = await b.dockerArchive(path.join(dir, 'leg-copy-gz.tar'), { images: [{ image: img1, tags: ['one:1'] }], layout: 'legacy', duplicateLayers: 'copy', compressedLayers: true });
    const cents = await listTar(copy.path);
    const layerFiles = cents.filter((e) => e.name.endsWith('/layer.tar'));
    expect(layerFiles.map((e) => e.type)).toEqual(['file', 'file', 'file']);
    expect(layerFiles.map((e) => e.size).sort()).toEqual([shared.size, shared.size, top.size].sort());
  });

  it('skopeo accepts the OCI and docker archives', async () => {
    if (!requirePeer('skopeo')) return;
    const l1 = await b.layer(sampleEntries(), { compression: 'gzip' });
    const l2 = await b.layer([{ path: 'x', content: 'x' }], { compression: 'gzip', level: 9 });
    const img = b.image({ layers: [l1, l2, l1], config: { Cmd: ['/bin/sh'] } });
    const ociImg = b.image({ layers: [l1, await b.layer([{ path: 'z', content: 'z' }], { compression: 'zstd' })] });
    const idx = b.index({ images: [ociImg, b.image({ layers: [l1], platform: 'linux/arm64/v8', format: 'oci' })], attestations: true });
    const oci = await b.ociArchive(path.join(dir, 'sk-oci.tar'), { images: [{ target: idx, names: ['example.com/multi:1'] }] });
    const raw = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', `oci-archive:${oci.path}`], { encoding: 'utf8' }));
    expect(raw.manifests).toHaveLength(4);
    expect(raw.manifests[2].annotations['vnd.docker.reference.type']).toBe('attestation-manifest');
    // skopeo's oci: name lookup only considers OCI media types, so use an OCI image here
    const ociFmt = b.image({ layers: [l1, l2, l1], config: { Cmd: ['/bin/sh'] }, format: 'oci' });
    const ociSingle = await b.ociArchive(path.join(dir, 'sk-oci1.tar'), { images: [{ target: ociFmt, names: ['busybox:1'] }], annotate: 'skopeo-tag' });
    const insp = JSON.parse(execFileSync('skopeo', ['inspect', `oci-archive:${ociSingle.path}:1`], { encoding: 'utf8' }));
    expect(insp.Layers).toEqual([l1.digest, l2.digest, l1.digest]);
    for (const layout of ['docker25', 'legacy'] as const) {
      const d = await b.dockerArchive(path.join(dir, `sk-${layout}.tar`), { images: [{ image: img, tags: ['busybox:1'] }], layout });
      const di = JSON.parse(execFileSync('skopeo', ['inspect', `docker-archive:${d.path}`], { encoding: 'utf8' }));
      expect(di.Layers).toEqual([l1.diffId, l2.diffId, l1.diffId]);
      expect(di.Architecture).toBe('amd64');
      // look the image up by its RepoTag too
      const byTag = JSON.parse(execFileSync('skopeo', ['inspect', `docker-archive:${d.path}:busybox:1`], { encoding: 'utf8' }));
      expect(byTag.Digest).toBe(di.Digest);
    }
  });
});

describe('builder: hostile layers, foreign layers, OCI layout dirs', () => {
  let dir: string;
  beforeAll(() => {
    dir = tmpDir('imgtool-builder-misc-');
  });
  afterAll(() => rmrf(dir));

  it('turns a raw (hostile) tar into a layer with a correct diffID', async () => {
    const b = new ImageBuilder(path.join(dir, 'hostile'));
    const tar = rawTar([
      { name: '../../escape', data: 'x' },
      { name: 'link', type: 'symlink', linkname: '/etc' },
      { name: 'link/passwd', data: 'pwned' },
    ]);
    const { Readable } = await import('node:stream');
    const l = await b.layerFromTar(Readable.from([tar]), { compression: 'gzip' });
    expect(l.diffId).toBe('sha256:' + createHash('sha256').update(tar).digest('hex'));
    expect(l.uncompressedSize).toBe(tar.length);
    expect(zlib.gunzipSync(fs.readFileSync(b.blobs.path(l.digest)))).toEqual(tar);
    // layer entries may also carry unsafe paths/targets directly
    const l2 = await b.layer([{ path: '../up', content: 'x' }, { path: 'abs', type: 'symlink', target: '/' }], { compression: 'none' });
    expect((await listTar(b.blobs.path(l2.digest))).map((e) => [e.name, e.linkname ?? null])).toEqual([['../up', null], ['abs', '/']]);
  });

  it('lets a layer override its descriptor (foreign / non-distributable layers)', async () => {
    const b = new ImageBuilder(path.join(dir, 'foreign'));
    const l = await b.layer([{ path: 'f', content: 'f' }]);
    const img = b.image({ layers: [{ ...l, mediaType: MediaType.DOCKER_FOREIGN_LAYER, urls: ['https://example.com/layer'] }] });
    expect(img.manifest.layers[0]).toEqual({ mediaType: MediaType.DOCKER_FOREIGN_LAYER, digest: l.digest, size: l.size, urls: ['https://example.com/layer'] });
  });

  it('writes an OCI layout directory that skopeo reads', async () => {
    const b = new ImageBuilder(path.join(dir, 'layout'));
    const img = b.image({ layers: [await b.layer([{ path: 'x', content: 'x' }])], format: 'oci' });
    const index = b.ociLayout({ images: [{ target: img, names: ['v1'] }], annotate: 'skopeo-full' });
    expect(index.manifests[0].annotations).toEqual({ 'org.opencontainers.image.ref.name': 'v1' });
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'layout', 'oci-layout'), 'utf8'))).toEqual({ imageLayoutVersion: '1.0.0' });
    if (!requirePeer('skopeo')) return;
    const raw = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', `oci:${path.join(dir, 'layout')}:v1`], { encoding: 'utf8' }));
    expect(raw).toEqual(img.manifest);
  });
});

describe('builder: rawTar', () => {
  it('writes hostile entries verbatim', async () => {
    const buf = rawTar([
      { name: '../escape', data: 'x' },
      { name: '/etc/passwd', data: 'root' },
      { name: 'link', type: 'symlink', linkname: '../../../../etc' },
      { name: 'hard', type: 'hardlink', linkname: '/etc/shadow' },
      { name: 'weird', typeflag: 'Z', data: 'q' },
    ]);
    const ents = await listTar(buf);
    expect(ents.map((e) => [e.name, e.type, e.linkname ?? null])).toEqual([
      ['../escape', 'file', null],
      ['/etc/passwd', 'file', null],
      ['link', 'symlink', '../../../../etc'],
      ['hard', 'link', '/etc/shadow'],
      ['weird', null, null], // tar-stream reports unknown typeflags as type null
    ]);
    expect(buf.length % 512).toBe(0);
  });

  it('declares sizes larger than the data, truncates, omits end blocks', async () => {
    const huge = rawTar([{ name: 'huge', data: 'abc', size: 10 * 1024 ** 4 }], { endBlocks: false });
    expect(huge.length).toBe(1024);
    // base-256 size field for sizes that do not fit 11 octal digits
    expect(huge[124]).toBe(0x80);
    await expect(listTar(huge)).rejects.toThrow();
    const full = rawTar([{ name: 'a', data: 'x'.repeat(2000) }]);
    const cut = rawTar([{ name: 'a', data: 'x'.repeat(2000) }], { truncateAt: 700 });
    expect(cut).toEqual(full.subarray(0, 700));
    const long = rawTar([{ name: 'n'.repeat(150), data: '' }]);
    expect((await listTar(long))[0].name).toBe('n'.repeat(100));
    const pax = rawTar([{ name: 'n'.repeat(150), data: '', longNames: 'pax' }]);
    expect((await listTar(pax))[0].name).toBe('n'.repeat(150));
  });

  it('writeRawTar wraps in gzip and truncates the compressed output', async () => {
    const dir = tmpDir('imgtool-builder-raw-');
    try {
      const entries = [{ name: 'a', data: 'x'.repeat(5000) }];
      const gz = await writeRawTar(path.join(dir, 'a.tar.gz'), entries, { wrap: 'gzip' });
      expect(zlib.gunzipSync(fs.readFileSync(gz.path))).toEqual(rawTar(entries));
      expect(gz.digest).toBe(sha256File(gz.path));
      const cut = await writeRawTar(path.join(dir, 'b.tar.gz'), entries, { wrap: 'gzip', truncateOutputAt: 20 });
      expect(fs.readFileSync(cut.path)).toEqual(fs.readFileSync(gz.path).subarray(0, 20));
    } finally {
      rmrf(dir);
    }
  });
});
