/**
 * `kindLoad` against real, isolated containerd daemons (one per "node"), reached through the
 * exec template `env CONTAINERD_ADDRESS=DIR/{node}/containerd.sock`, exactly as a KIND node
 * would be through `docker exec`.
 */
import * as path from 'node:path';
import { rmrf, tmpDir } from '../helpers/cli';
import { requirePeer, startContainerd, stopContainerd, ctr } from '../helpers/peers';
import { Store } from '../../src/store';
import { kindLoad, KindLoadError } from '../../src/kind/load';
import { parseImagesLs, parseImagesCheck, parseContentLs } from '../../src/kind/ctr';
import { Fixtures } from './kind-fixtures';
import { buildImage, buildIndex } from '../../src/builder';
import { formatPlatform, hostPlatform } from '../../src/platform';
import { Descriptor, Index, Manifest } from '../../src/images/types';

// Missing containerd: a loud SKIP warning here and every test returns early; under CI=true it throws.
const HAVE = (): boolean => requirePeer('containerd');

describe('kind load into live containerd nodes', () => {
  let dir: string;
  let store: Store;
  let fx: Fixtures;
  const sock: Record<string, string> = {};
  let template: string;
  let app1: Descriptor;
  let app2: Descriptor;

  beforeAll(async () => {
    if (!HAVE()) return;
    dir = tmpDir('imgtool-kl-');
    for (const n of ['n1', 'n2']) sock[n] = await startContainerd(path.join(dir, n));
    template = `env CONTAINERD_ADDRESS=${dir}/{node}/containerd.sock`;
    store = Store.open(path.join(dir, 'store'));
    fx = new Fixtures(dir, store);
    app1 = await fx.put(await fx.twoPlatformApp('v1', 2 << 20), ['docker.io/library/app:1']);
    app2 = await fx.put(await fx.twoPlatformApp('v2', 2 << 20), ['docker.io/library/app:2']);
  });

  afterAll(async () => {
    if (!HAVE()) return;
    store?.close();
    for (const n of Object.keys(sock)) await stopContainerd(path.join(dir, n));
    rmrf(dir);
  });

  async function imagesOn(node: string) {
    return parseImagesLs(await ctr(sock[node], ['images', 'ls']));
  }
  async function checkOn(node: string, name: string) {
    return parseImagesCheck(await ctr(sock[node], ['images', 'check'])).find((c) => c.name === name);
  }
  async function contentOn(node: string) {
    return new Set(parseContentLs(await ctr(sock[node], ['content', 'ls'])).map((b) => b.digest));
  }

  it('--full sends everything to one node; names exact, image complete, unpacked', async () => {
    if (!HAVE()) return;
    const r = await kindLoad(store, ['app:1'], { nodes: ['n1'], exec: template, full: true });
    expect(r.nodes).toHaveLength(1);
    const n = r.nodes[0];
    expect(n.node).toBe('n1');
    expect(n.snapshotter).toBe('overlayfs');
    expect(n.imported).toEqual(['docker.io/library/app:1']);
    expect(n.omittedBlobs).toBe(0);
    expect(n.bytesSent).toBe(r.fullBytes);
    expect(n.bytesSent).toBeGreaterThan(4 << 20);
    const imgs = await imagesOn('n1');
    expect(imgs.find((i) => i.name === 'docker.io/library/app:1')?.digest).toBe(app1.digest);
    const c = await checkOn('n1', 'docker.io/library/app:1');
    expect(c?.complete).toBe(true);
    expect(c?.unpacked).toBe(true);
    const content = await contentOn('n1');
    for (const b of fx.closure(app1)) expect(content.has(b)).toBe(true);
  });

  it('delta after changing only the top layer sends far fewer bytes and leaves the image complete', async () => {
    if (!HAVE()) return;
    const r = await kindLoad(store, ['app:2'], { nodes: ['n1'], exec: template });
    const n = r.nodes[0];
    expect(n.imported).toEqual(['docker.io/library/app:2']);
    expect(n.fallback).toBeUndefined();
    expect(n.omittedBlobs).toBe(2); // the two base layers
    expect(n.bytesSent).toBeLessThan(r.fullBytes / 20);
    expect(n.fullBytes).toBe(r.fullBytes);
    const imgs = await imagesOn('n1');
    expect(imgs.find((i) => i.name === 'docker.io/library/app:2')?.digest).toBe(app2.digest);
    expect((await checkOn('n1', 'docker.io/library/app:2'))?.complete).toBe(true);
    const content = await contentOn('n1');
    for (const b of fx.closure(app2)) expect(content.has(b)).toBe(true);
  });

  it('a second identical load skips everything and sends nothing', async () => {
    if (!HAVE()) return;
    const r = await kindLoad(store, ['app:1', 'docker.io/library/app:2'], { nodes: ['n1'], exec: template });
    const n = r.nodes[0];
    expect(n.skipped.sort()).toEqual(['docker.io/library/app:1', 'docker.io/library/app:2']);
    expect(n.imported).toEqual([]);
    expect(n.bytesSent).toBe(0);
  });

  it('an image present under another name is retagged, not sent', async () => {
    if (!HAVE()) return;
    store.images.put('registry.example.com/team/app:stable', app2);
    const r = await kindLoad(store, ['registry.example.com/team/app:stable'], { nodes: ['n1'], exec: template, pin: true });
    const n = r.nodes[0];
    expect(n.retagged).toEqual([{ name: 'registry.example.com/team/app:stable', from: 'docker.io/library/app:2' }]);
    expect(n.bytesSent).toBe(0);
    expect(n.pinned).toEqual(['registry.example.com/team/app:stable']);
    const out = await ctr(sock.n1, ['images', 'ls']);
    const line = out.split('\n').find((l) => l.startsWith('registry.example.com/team/app:stable '));
    expect(line).toContain(app2.digest);
    expect(line).toContain('io.cri-containerd.pinned=pinned');
  });

  it('a name that moved to new content is re-imported over the old one (delta)', async () => {
    if (!HAVE()) return;
    const app3 = await fx.put(await fx.twoPlatformApp('v3', 2 << 20), ['docker.io/library/app:3']);
    store.images.put('docker.io/library/moving:1', app1);
    await kindLoad(store, ['moving:1'], { nodes: ['n1'], exec: template });
    expect((await imagesOn('n1')).find((i) => i.name === 'docker.io/library/moving:1')?.digest).toBe(app1.digest);
    store.images.put('docker.io/library/moving:1', app3);
    const r = await kindLoad(store, ['moving:1'], { nodes: ['n1'], exec: template });
    const n = r.nodes[0];
    expect(n.imported).toEqual(['docker.io/library/moving:1']);
    expect(n.omittedBlobs).toBe(2);
    expect(n.bytesSent).toBeLessThan(r.fullBytes / 20);
    expect((await imagesOn('n1')).find((i) => i.name === 'docker.io/library/moving:1')?.digest).toBe(app3.digest);
    expect((await checkOn('n1', 'docker.io/library/moving:1'))?.complete).toBe(true);
  });

  it('nodes load in parallel, each with its own delta', async () => {
    if (!HAVE()) return;
    const r = await kindLoad(store, ['app:1', 'app:2'], { nodes: ['n1', 'n2'], exec: template });
    const byNode = Object.fromEntries(r.nodes.map((n) => [n.node, n]));
    expect(byNode.n1.bytesSent).toBe(0);
    expect(byNode.n1.skipped).toHaveLength(2);
    // n2 was empty: nothing is omitted, everything is imported.
    expect(byNode.n2.imported.sort()).toEqual(['docker.io/library/app:1', 'docker.io/library/app:2']);
    expect(byNode.n2.omittedBlobs).toBe(0);
    expect(byNode.n2.bytesSent).toBe(r.fullBytes);
    for (const name of ['docker.io/library/app:1', 'docker.io/library/app:2']) {
      expect((await checkOn('n2', name))?.complete).toBe(true);
    }
  });

  it('an image left incomplete on a node (a blob removed) gets a full archive', async () => {
    if (!HAVE()) return;
    // Remove one arm64 base layer: ctr images check (host platform only) may still say complete,
    // but the node's content store no longer holds the whole image.
    const index = fx.blobs.readJson<Index>(app1.digest);
    const arm = index.manifests.find((m) => m.platform?.architecture === 'arm64')!;
    const victim = fx.blobs.readJson<Manifest>(arm.digest).layers[1].digest;
    expect((await contentOn('n2')).has(victim)).toBe(true);
    await ctr(sock.n2, ['content', 'rm', victim]);
    expect((await contentOn('n2')).has(victim)).toBe(false);
    const r = await kindLoad(store, ['app:1'], { nodes: ['n2'], exec: template });
    const n = r.nodes[0];
    expect(n.fallback).toMatch(/absent from the node's content store|ctr images check/);
    expect(n.imported).toEqual(['docker.io/library/app:1']);
    expect(n.bytesSent).toBe(r.fullBytes);
    expect((await contentOn('n2')).has(victim)).toBe(true);
  });

  it('a failing node command fails naming the node', async () => {
    if (!HAVE()) return;
    const e = await kindLoad(store, ['app:1'], { nodes: ['n1', 'broken'], exec: template }).catch((x) => x);
    expect(e).toBeInstanceOf(KindLoadError);
    expect(e.message).toMatch(/node "broken"/);
    expect(e.message).not.toMatch(/node "n1"/);
    expect(e.failures.map((f: { node: string }) => f.node)).toEqual(['broken']);
  });

  it("an image without the node's platform fails on import, naming the node and ctr's reason", async () => {
    if (!HAVE()) return;
    const other = formatPlatform(hostPlatform()) === 'linux/arm64' ? 'linux/amd64' : 'linux/arm64';
    const img = buildImage(fx.blobs, { layers: [await fx.layer('foreign', 4096)], platform: other, format: 'oci' });
    const idx = buildIndex(fx.blobs, { images: [img], format: 'oci' });
    await fx.put(idx.descriptor, ['docker.io/library/foreign:1']);
    const e = await kindLoad(store, ['foreign:1'], { nodes: ['n1'], exec: template }).catch((x) => x);
    expect(e).toBeInstanceOf(KindLoadError);
    expect(e.message).toMatch(/^kind load: node "n1": `ctr --namespace=k8s.io images import .*--snapshotter=overlayfs -` failed \(exit status 1\): .*no match for platform/);
  });

  it('an unknown image fails before any node is contacted', async () => {
    if (!HAVE()) return;
    const e = await kindLoad(store, ['nope:1'], { nodes: ['broken'], exec: template }).catch((x) => x);
    expect(e.message).toMatch(/nope/);
    expect(e.message).not.toMatch(/broken/);
  });
});
