/**
 * `imgtool kind load` / `kind preload` against a KIND cluster whose nodes are real containers
 * (test/interop/kind-node-fixtures.ts): privileged containers running the host's containerd, found
 * by KIND's labels and driven through the DEFAULT exec template `docker exec --privileged -i
 * {node}` — no --exec override, no stand-in docker; only PATH (Debian's docker CLI first) and
 * DOCKER_HOST point imgtool at the isolated dockerd. The simulated variant is kind-cli.test.ts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runCli, rmrf } from '../helpers/cli';
import { requirePeer } from '../helpers/peers';
import { Store } from '../../src/store';
import { parseImagesLs, parseImagesCheck, parseContentLs, parseSnapshotter } from '../../src/kind/ctr';
import { Descriptor } from '../../src/images/types';
import { Fixtures } from './kind-fixtures';
import { KindCluster, NODE_IMAGE, NODE_SNAPSHOTTER } from './kind-node-fixtures';

// Missing docker/containerd/busybox: a loud SKIP warning and every test returns early; under CI=true it throws.
const HAVE = (): boolean => requirePeer('kind-node');

const CLUSTER = 'imgt';
const CP = `${CLUSTER}-control-plane`;
const WORKER = `${CLUSTER}-worker`;
const SNAP: Record<string, string> = { [CP]: NODE_SNAPSHOTTER['control-plane'], [WORKER]: NODE_SNAPSHOTTER.worker };
const BASE = 4 << 20;

interface NodeJson {
  node: string;
  snapshotter: string;
  imported: string[];
  skipped: string[];
  retagged: Array<{ name: string; from: string }>;
  bytesSent: number;
  fullBytes: number;
  omittedBlobs: number;
  fallback?: string;
}

describe('imgtool kind load into real KIND node containers', () => {
  let dir: string;
  let root: string;
  let cluster: KindCluster;
  let fx: Fixtures;
  let app1: Descriptor;
  let app2: Descriptor;
  let app1z: Descriptor;
  let pre: Descriptor;
  const fullLoadBytes: Record<string, number> = {};

  beforeAll(async () => {
    if (!HAVE()) return;
    // Short: dockerd's socket lives under it.
    dir = fs.mkdtempSync('/tmp/ikn-');
    root = path.join(dir, 'store');
    cluster = new KindCluster(dir, CLUSTER);
    const store = Store.open(root);
    fx = new Fixtures(dir, store);
    // The cluster starts while the fixtures are built (one after another: they share blobs).
    const fixtures = async () => {
      app1 = await fx.put(await fx.twoPlatformApp('v1', BASE), ['docker.io/library/app:1']);
      app2 = await fx.put(await fx.twoPlatformApp('v2', BASE), ['docker.io/library/app:2']);
      // Same layers as app:1 (same diffIDs, same configs), other compressed blobs.
      app1z = await fx.put(await fx.twoPlatformApp('v1', BASE, 'zstd'), ['docker.io/library/app-zstd:1']);
      pre = await fx.put(await fx.twoPlatformApp('pre', 1 << 20), ['docker.io/library/preloaded:1']);
    };
    await Promise.all([cluster.start(), fixtures()]);
    store.close();
  }, 180000);

  afterAll(async () => {
    if (!HAVE()) return;
    await cluster?.stop();
    if (dir) rmrf(dir);
  }, 120000);

  const kind = (args: string[]) => runCli(['kind', ...args], { root, env: cluster.env(), timeoutMs: 120000 });

  /** `ctr images ls`, `images check` and `content ls` in the node, in one `docker exec`. */
  async function onNode(node: string, name: string) {
    const sep = '--- imgtool-test ---';
    const out = await cluster.docker(['exec', node, 'sh', '-c', `ctr -n k8s.io images ls && echo '${sep}' && ctr -n k8s.io images check --snapshotter=${SNAP[node] ?? 'overlayfs'} && echo '${sep}' && ctr -n k8s.io content ls`]);
    const [ls, check, content] = out.split(`${sep}\n`);
    return {
      img: parseImagesLs(ls).find((i) => i.name === name),
      check: parseImagesCheck(check).find((c) => c.name === name),
      content: new Set(parseContentLs(content).map((b) => b.digest)),
    };
  }

  /** The image is on the node under `name`, `ctr images check` says complete, every blob is there. */
  async function expectComplete(node: string, name: string, target: Descriptor, unpacked = true) {
    const { img, check, content } = await onNode(node, name);
    expect(img?.digest).toBe(target.digest);
    expect(check?.complete).toBe(true);
    if (unpacked) expect(check?.unpacked).toBe(true);
    const absent = fx.closure(target).filter((d) => !content.has(d));
    expect(absent).toEqual([]);
  }

  it('full load: discovers both nodes by label, loads through `docker exec --privileged -i`, images complete', async () => {
    if (!HAVE()) return;
    const r = await kind(['load', 'app:1', '--name', CLUSTER, '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.nodes.map((n: NodeJson) => n.node).sort()).toEqual([CP, WORKER]);
    for (const n of j.nodes as NodeJson[]) {
      expect(n.imported).toEqual(['docker.io/library/app:1']);
      expect(n.snapshotter).toBe(SNAP[n.node]); // read from the node's `containerd config dump`
      expect(n.omittedBlobs).toBe(0);
      expect(n.bytesSent).toBe(j.fullBytes);
      fullLoadBytes[n.node] = n.bytesSent;
    }
    process.stdout.write(`kind-node: full load of app:1 sent ${j.bytesSent} bytes to 2 nodes (${j.fullBytes} each)\n`);
    for (const n of [CP, WORKER]) await expectComplete(n, 'docker.io/library/app:1', app1);
  });

  it('delta load after changing the top layer sends a small fraction of the full archive', async () => {
    if (!HAVE()) return;
    const r = await kind(['load', 'app:2', '--name', CLUSTER, '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    for (const n of j.nodes as NodeJson[]) {
      expect(n.imported).toEqual(['docker.io/library/app:2']);
      expect(n.fallback).toBeUndefined();
      expect(n.omittedBlobs).toBe(2); // the two base layers
      expect(n.bytesSent * 20).toBeLessThan(n.fullBytes);
      process.stdout.write(`kind-node: delta load of app:2 into ${n.node} sent ${n.bytesSent} of ${n.fullBytes} bytes (full load of app:1 sent ${fullLoadBytes[n.node]})\n`);
    }
    for (const n of [CP, WORKER]) await expectComplete(n, 'docker.io/library/app:2', app2);

    // Nothing changed: a second load skips, sends nothing.
    const again = await kind(['load', 'app:1', 'app:2', '--name', CLUSTER, '--json']);
    expect(again.code).toBe(0);
    for (const n of JSON.parse(again.stdout).nodes as NodeJson[]) {
      expect(n.skipped.sort()).toEqual(['docker.io/library/app:1', 'docker.io/library/app:2']);
      expect(n.bytesSent).toBe(0);
    }
  });

  it('an image sharing diffIDs (not blobs) with one on the node ends with every one of its blobs', async () => {
    if (!HAVE()) return;
    // The node's snapshots already have these chainIDs (unpacked from app:1's gzip blobs): the zstd
    // blobs must still all reach its content store, or the image is incomplete there.
    const shared = fx.closure(app1z).filter((d) => fx.closure(app1).includes(d));
    expect(shared.length).toBe(2); // the configs, nothing else
    const r = await kind(['load', 'app-zstd:1', '--name', CLUSTER, '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    for (const n of JSON.parse(r.stdout).nodes as NodeJson[]) {
      expect(n.imported).toEqual(['docker.io/library/app-zstd:1']);
      expect(n.omittedBlobs).toBe(2); // the two configs the node's app:1 already holds
      expect(n.fallback).toBeUndefined();
    }
    for (const n of [CP, WORKER]) {
      await expectComplete(n, 'docker.io/library/app-zstd:1', app1z);
      await expectComplete(n, 'docker.io/library/app:1', app1);
    }
  });

  it("a preload archive imports the way a node image's /kind/images does, and kind load then skips it", async () => {
    if (!HAVE()) return;
    const file = path.join(dir, 'preloaded.tar');
    const r = await runCli(['kind', 'preload', 'preloaded:1', '-o', file, '--json'], { root });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).archives[0].images[0]).toMatchObject({ name: 'docker.io/library/preloaded:1', digest: pre.digest });
    await cluster.docker(['exec', WORKER, 'mkdir', '-p', '/kind/images']);
    await cluster.docker(['cp', file, `${WORKER}:/kind/images/preloaded.tar`]);
    // What KIND's node image build runs for each /kind/images/*.tar.
    const snap = parseSnapshotter(await cluster.docker(['exec', WORKER, 'containerd', 'config', 'dump']));
    expect(snap).toBe(SNAP[WORKER]);
    await cluster.docker(['exec', WORKER, 'ctr', '--namespace=k8s.io', 'images', 'import', '--all-platforms', '--no-unpack', '--digests', `--snapshotter=${snap}`, '/kind/images/preloaded.tar']);
    await expectComplete(WORKER, 'docker.io/library/preloaded:1', pre, false);

    const load = await kind(['load', 'preloaded:1', '--name', CLUSTER, '--json']);
    expect(load.code).toBe(0);
    const byNode = Object.fromEntries((JSON.parse(load.stdout).nodes as NodeJson[]).map((n) => [n.node, n]));
    expect(byNode[WORKER].skipped).toEqual(['docker.io/library/preloaded:1']);
    expect(byNode[WORKER].bytesSent).toBe(0);
    expect(byNode[CP].imported).toEqual(['docker.io/library/preloaded:1']);
    await expectComplete(CP, 'docker.io/library/preloaded:1', pre);
  });

  it('a container without containerd found as a node: the error quotes what docker exec printed on stdout', async () => {
    if (!HAVE()) return;
    // Labelled as a KIND node, but `containerd` is not on its PATH: docker exec exits 126 and says
    // why on stdout only.
    await cluster.startNode('notkind-control-plane', 'notkind', 'control-plane', ['-e', 'PATH=/bin', '--entrypoint', '/bin/sleep'], ['3600']);
    const r = await kind(['load', 'app:1', '--name', 'notkind']);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^imgtool: error: kind load: node "notkind-control-plane": `containerd config dump` failed \(exit status 12[67]\): OCI runtime exec failed: .*"containerd": executable file not found in \$PATH/);
  });

  it('a stopped node: the error names it and quotes docker', async () => {
    if (!HAVE()) return;
    await cluster.docker(['create', '--privileged', '--network', 'none', '--name', `${CLUSTER}-worker2`, '--label', `io.x-k8s.kind.cluster=${CLUSTER}-stopped`, NODE_IMAGE]);
    const r = await kind(['load', 'app:1', '--nodes', `${WORKER},${CLUSTER}-worker2`]);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(new RegExp(`^imgtool: error: kind load: node "${CLUSTER}-worker2": \`containerd config dump\` failed \\(exit status 1\\): Error response from daemon: Container [0-9a-f]+ is not running\\n`));
  });
});
