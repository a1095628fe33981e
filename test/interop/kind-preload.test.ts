/**
 * `kindPreload` archives imported by a real containerd the way KIND node images load them:
 * `ctr --namespace=… images import --no-unpack --all-platforms --digests`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { rmrf, tmpDir } from '../helpers/cli';
import { requirePeer, startContainerd, stopContainerd, ctr } from '../helpers/peers';
import { Store } from '../../src/store';
import { kindPreload, checkPreloadArchive, preloadFileNames } from '../../src/kind/preload';
import { saveImages } from '../../src/archive/export';
import { parseImagesLs, parseImagesCheck, parseContentLs } from '../../src/kind/ctr';
import { Descriptor, Index, Manifest } from '../../src/images/types';
import { Fixtures } from './kind-fixtures';
import { formatPlatform, hostPlatform } from '../../src/platform';

// Missing containerd: a loud SKIP warning here and every test returns early; under CI=true it throws.
const HAVE = (): boolean => requirePeer('containerd');

const fileSha = (f: string) => createHash('sha256').update(fs.readFileSync(f)).digest('hex');

describe('preload file names', () => {
  it('are the full name with / : @ replaced, unique even when names collide', () => {
    const m = preloadFileNames(['docker.io/library/x:1', 'localhost:5000/a/b:c', 'a/b_c:d', 'a/b:c_d']);
    expect(m.get('docker.io/library/x:1')).toBe('docker.io_library_x_1.tar');
    expect(m.get('localhost:5000/a/b:c')).toBe('localhost_5000_a_b_c.tar');
    expect(m.get('a/b_c:d')).toMatch(/^a_b_c_d-[0-9a-f]{12}\.tar$/);
    expect(m.get('a/b:c_d')).toMatch(/^a_b_c_d-[0-9a-f]{12}\.tar$/);
    expect(m.get('a/b_c:d')).not.toBe(m.get('a/b:c_d'));
  });
});

describe('kind preload → ctr import --no-unpack --all-platforms --digests', () => {
  let dir: string;
  let sock: string;
  let store: Store;
  let fx: Fixtures;
  let app: Descriptor;
  let tool: Descriptor;
  let zapp: Descriptor;
  let ns = 0;

  beforeAll(async () => {
    if (!HAVE()) return;
    dir = tmpDir('imgtool-kp-');
    sock = await startContainerd(path.join(dir, 'c'));
    store = Store.open(path.join(dir, 'store'));
    fx = new Fixtures(dir, store);
    app = await fx.put(await fx.twoPlatformApp('v1', 256 << 10), ['docker.io/library/app:1']);
    tool = await fx.put(await fx.simple(['t1', 't2']), ['registry.example.com/ns/tool:2', 'docker.io/library/tool:latest']);
    zapp = await fx.put(await fx.twoPlatformApp('z', 64 << 10, 'zstd'), ['docker.io/library/zapp:1']);
  });

  afterAll(async () => {
    if (!HAVE()) return;
    store?.close();
    await stopContainerd(path.join(dir, 'c'));
    rmrf(dir);
  });

  /** Import like a node image build does (archive on stdin), into a fresh namespace. */
  async function ctrImport(file: string): Promise<string> {
    const namespace = `preload${++ns}`;
    await ctr(sock, ['images', 'import', '--no-unpack', '--all-platforms', '--digests', '-'], { namespace, input: fs.readFileSync(file) });
    return namespace;
  }
  async function state(namespace: string) {
    return {
      images: parseImagesLs(await ctr(sock, ['images', 'ls'], { namespace })),
      check: parseImagesCheck(await ctr(sock, ['images', 'check'], { namespace })),
      content: new Set(parseContentLs(await ctr(sock, ['content', 'ls'], { namespace })).map((b) => b.digest)),
    };
  }

  it('one tar for all images: names exact, digests kept, every image complete', async () => {
    if (!HAVE()) return;
    const out = path.join(dir, 'all.tar');
    const r = await kindPreload(store, ['app:1', 'registry.example.com/ns/tool:2', 'tool', 'zapp:1'], { output: out });
    expect(r.mode).toBe('file');
    expect(r.archives).toHaveLength(1);
    expect(r.archives[0].images.map((i) => i.name).sort()).toEqual([
      'docker.io/library/app:1', 'docker.io/library/tool:latest', 'docker.io/library/zapp:1', 'registry.example.com/ns/tool:2',
    ]);
    expect(r.changes).toEqual([]);
    const namespace = await ctrImport(out);
    const s = await state(namespace);
    const byName = new Map(s.images.map((i) => [i.name, i.digest]));
    expect(byName.get('docker.io/library/app:1')).toBe(app.digest);
    expect(byName.get('registry.example.com/ns/tool:2')).toBe(tool.digest);
    expect(byName.get('docker.io/library/tool:latest')).toBe(tool.digest);
    expect(byName.get('docker.io/library/zapp:1')).toBe(zapp.digest);
    // --digests adds import-DATE@sha256:… names; nothing else is invented.
    const others = s.images.filter((i) => !/^(docker\.io|registry\.example\.com)\//.test(i.name)).map((i) => i.name);
    expect(others.length).toBeGreaterThan(0);
    expect(s.images.filter((i) => !others.includes(i.name)).map((i) => i.name).sort()).toEqual([
      'docker.io/library/app:1', 'docker.io/library/tool:latest', 'docker.io/library/zapp:1', 'registry.example.com/ns/tool:2',
    ]);
    for (const n of others) expect(n).toMatch(/^import-\d{4}-\d{2}-\d{2}@sha256:[0-9a-f]{64}$/);
    for (const name of ['docker.io/library/app:1', 'registry.example.com/ns/tool:2', 'docker.io/library/tool:latest', 'docker.io/library/zapp:1']) {
      expect(s.check.find((c) => c.name === name)?.complete).toBe(true);
    }
    for (const b of [...fx.closure(app), ...fx.closure(tool), ...fx.closure(zapp)]) expect(s.content.has(b)).toBe(true);
  });

  it('one tar per image in a directory, deterministic names and bytes, each importable', async () => {
    if (!HAVE()) return;
    const out = path.join(dir, 'images') + '/';
    const r = await kindPreload(store, ['app:1', 'registry.example.com/ns/tool:2'], { output: out });
    expect(r.mode).toBe('dir');
    expect(fs.readdirSync(out).sort()).toEqual(['docker.io_library_app_1.tar', 'registry.example.com_ns_tool_2.tar']);
    const before = fs.readdirSync(out).map((f) => fileSha(path.join(out, f)));
    await kindPreload(store, ['registry.example.com/ns/tool:2', 'app:1'], { output: out });
    expect(fs.readdirSync(out).sort().map((f) => fileSha(path.join(out, f)))).toEqual(before);
    for (const a of r.archives) {
      expect(a.images).toHaveLength(1);
      const namespace = await ctrImport(a.file);
      const s = await state(namespace);
      const img = s.images.find((i) => i.name === a.images[0].name);
      expect(img?.digest).toBe(a.images[0].digest);
      expect(s.check.find((c) => c.name === a.images[0].name)?.complete).toBe(true);
    }
  });

  it('a multi-platform image preloaded for one platform: new index, only that platform, complete', async () => {
    if (!HAVE()) return;
    // The host's platform, so that `ctr images check` (which judges the host platform) can run.
    const host = formatPlatform(hostPlatform());
    const [keep, drop] = host === 'linux/arm64' ? ['arm64', 'amd64'] : ['amd64', 'arm64'];
    const out = path.join(dir, 'one-platform.tar');
    const r = await kindPreload(store, ['app:1'], { output: out, platform: `linux/${keep}` });
    const img = r.archives[0].images[0];
    expect(img.platforms).toEqual([`linux/${keep}`]);
    expect(img.digest).not.toBe(app.digest);
    expect(r.changes).toEqual([expect.objectContaining({ kind: 'index', from: app.digest, to: img.digest })]);
    const namespace = await ctrImport(out);
    const s = await state(namespace);
    const row = s.images.find((i) => i.name === 'docker.io/library/app:1');
    expect(row?.digest).toBe(img.digest);
    expect(s.check.find((c) => c.name === 'docker.io/library/app:1')?.complete).toBe(true);
    const idx = fx.blobs.readJson<Index>(app.digest);
    const kept = idx.manifests.find((m) => m.platform?.architecture === keep)!;
    const dropped = idx.manifests.find((m) => m.platform?.architecture === drop)!;
    expect(s.content.has(kept.digest)).toBe(true);
    for (const l of fx.blobs.readJson<Manifest>(kept.digest).layers) expect(s.content.has(l.digest)).toBe(true);
    expect(s.content.has(dropped.digest)).toBe(false);
    for (const l of fx.blobs.readJson<Manifest>(dropped.digest).layers) expect(s.content.has(l.digest)).toBe(false);
  });

  it('a partial archive fails the strict check', async () => {
    if (!HAVE()) return;
    const out = path.join(dir, 'partial.tar');
    const layer = fx.blobs.readJson<Manifest>(tool.digest).layers[0].digest;
    await saveImages(store, ['registry.example.com/ns/tool:2'], { output: out, omitBlobs: new Set([layer]) });
    await expect(checkPreloadArchive(out, [{ name: 'registry.example.com/ns/tool:2', digest: tool.digest }])).rejects.toMatchObject({
      code: 'INVALID_ARCHIVE',
      message: expect.stringMatching(/failed verification \(--strict\)/),
    });
    // The complete archive passes, and a wrong expected name is caught.
    await saveImages(store, ['registry.example.com/ns/tool:2'], { output: out });
    await expect(checkPreloadArchive(out, [{ name: 'registry.example.com/ns/tool:2', digest: tool.digest }])).resolves.toMatchObject({ ok: true });
    await expect(checkPreloadArchive(out, [{ name: 'docker.io/library/other:1', digest: tool.digest }])).rejects.toThrow(/other:1 is not named/);
  });

  it('nothing is written when an image or platform is missing', async () => {
    if (!HAVE()) return;
    const out = path.join(dir, 'none.tar');
    await expect(kindPreload(store, ['app:1', 'nope:1'], { output: out })).rejects.toThrow(/nope/);
    expect(fs.existsSync(out)).toBe(false);
    await expect(kindPreload(store, ['app:1'], { output: out, platform: 'linux/s390x' })).rejects.toThrow(/s390x/);
    expect(fs.existsSync(out)).toBe(false);
    const d = path.join(dir, 'none-dir') + '/';
    await expect(kindPreload(store, ['tool', 'nope:1'], { output: d })).rejects.toThrow(/nope/);
    expect(fs.existsSync(d) ? fs.readdirSync(d) : []).toEqual([]);
  });

  it('a failure after some archives were written removes them all', async () => {
    if (!HAVE()) return;
    // Corrupt one stored layer of `tool` (same size): saving it fails its digest re-check.
    const layer = fx.blobs.readJson<Manifest>(tool.digest).layers[1].digest;
    const file = store.content.blobPath(layer);
    const good = fs.readFileSync(file);
    fs.chmodSync(file, 0o644);
    fs.writeFileSync(file, Buffer.alloc(good.length, 0x55));
    try {
      const d = path.join(dir, 'half') + '/';
      const e = await kindPreload(store, ['app:1', 'registry.example.com/ns/tool:2'], { output: d }).catch((x) => x);
      expect(e).toBeInstanceOf(Error);
      expect(e.message).toMatch(new RegExp(layer.slice(7, 19)));
      expect(fs.readdirSync(d)).toEqual([]);
    } finally {
      fs.writeFileSync(file, good);
    }
  });
});
