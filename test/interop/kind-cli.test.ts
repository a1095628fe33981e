/**
 * `imgtool kind preload` / `imgtool kind load` through the built binary, against real isolated
 * containerd daemons. A stand-in `docker` on PATH answers `docker ps --filter label=…` with the
 * cluster's node names and runs `docker exec --privileged -i NODE CMD…` as CMD with
 * CONTAINERD_ADDRESS pointing at that node's containerd — so the default exec template and
 * node discovery are exercised exactly as against a real KIND cluster.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runCli, rmrf, tmpDir } from '../helpers/cli';
import { requirePeer, startContainerd, stopContainerd, ctr } from '../helpers/peers';
import { Store } from '../../src/store';
import { parseImagesLs, parseImagesCheck } from '../../src/kind/ctr';
import { Descriptor } from '../../src/images/types';
import { Fixtures } from './kind-fixtures';

// Missing containerd: a loud SKIP warning here and every test returns early; under CI=true it throws.
const HAVE = (): boolean => requirePeer('containerd');

const NODES = ['kind-control-plane', 'kind-worker'];

describe('imgtool kind preload / kind load (CLI)', () => {
  let dir: string;
  let root: string;
  let env: Record<string, string>;
  let app: Descriptor;
  const sock: Record<string, string> = {};

  beforeAll(async () => {
    if (!HAVE()) return;
    dir = tmpDir('imgtool-kc-');
    root = path.join(dir, 'store');
    for (const n of NODES) sock[n] = await startContainerd(path.join(dir, n));
    const store = Store.open(root);
    const fx = new Fixtures(dir, store);
    app = await fx.put(await fx.twoPlatformApp('v1', 512 << 10), ['docker.io/library/app:1']);
    await fx.put(await fx.twoPlatformApp('v2', 512 << 10), ['docker.io/library/app:2']);
    store.close();
    const bin = path.join(dir, 'bin');
    fs.mkdirSync(bin);
    fs.writeFileSync(
      path.join(bin, 'docker'),
      `#!/bin/sh
# Stand-in for docker: a KIND cluster named "kind" with nodes ${NODES.join(', ')}.
echo "$*" >> "${dir}/docker.log"
case "$1" in
  ps)
    [ "$2 $3" = "--filter label=io.x-k8s.kind.cluster=kind" ] || exit 0
    [ "$4 $5" = "--format {{.Names}}" ] || { echo "unexpected: $*" >&2; exit 2; }
    printf '%s\\n' ${NODES.join(' ')} ;;
  exec)
    [ "$2 $3" = "--privileged -i" ] || { echo "unexpected: $*" >&2; exit 2; }
    node=$4; shift 4
    [ -S "${dir}/$node/containerd.sock" ] || { echo "Error response from daemon: No such container: $node" >&2; exit 1; }
    CONTAINERD_ADDRESS="${dir}/$node/containerd.sock" exec "$@" ;;
  *) echo "unexpected: $*" >&2; exit 2 ;;
esac
`,
      { mode: 0o755 },
    );
    env = { PATH: `${bin}:${process.env.PATH}` };
  });

  afterAll(async () => {
    if (!HAVE()) return;
    for (const n of NODES) await stopContainerd(path.join(dir, n));
    rmrf(dir);
  });

  it('kind preload -o FILE: verified archive that ctr imports with exact names', async () => {
    if (!HAVE()) return;
    const out = path.join(dir, 'pre.tar');
    const r = await runCli(['kind', 'preload', 'app:1', '-o', out, '--json'], { root, env });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.mode).toBe('file');
    expect(j.archives[0].images[0]).toMatchObject({ name: 'docker.io/library/app:1', digest: app.digest });
    await ctr(sock['kind-worker'], ['images', 'import', '--no-unpack', '--all-platforms', '--digests', out], { namespace: 'preload' });
    const imgs = parseImagesLs(await ctr(sock['kind-worker'], ['images', 'ls'], { namespace: 'preload' }));
    expect(imgs.find((i) => i.name === 'docker.io/library/app:1')?.digest).toBe(app.digest);
    const check = parseImagesCheck(await ctr(sock['kind-worker'], ['images', 'check'], { namespace: 'preload' }));
    expect(check.find((c) => c.name === 'docker.io/library/app:1')?.complete).toBe(true);
  });

  it('kind preload -o DIR/ writes one tar per image', async () => {
    if (!HAVE()) return;
    const out = path.join(dir, 'kind-images') + '/';
    const r = await runCli(['kind', 'preload', 'app:1', 'app:2', '-o', out], { root, env });
    expect(r.code).toBe(0);
    expect(fs.readdirSync(out).sort()).toEqual(['docker.io_library_app_1.tar', 'docker.io_library_app_2.tar']);
    expect(r.stdout).toMatch(/wrote .*docker\.io_library_app_1\.tar: 1 image\(s\), .*verified/);
  });

  it('kind load --name kind: discovers the nodes, loads both in parallel; a second load skips', async () => {
    if (!HAVE()) return;
    const r = await runCli(['kind', 'load', 'app:1', '--name', 'kind', '--json'], { root, env });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.nodes.map((n: { node: string }) => n.node).sort()).toEqual(NODES);
    for (const n of j.nodes) {
      expect(n.imported).toEqual(['docker.io/library/app:1']);
      expect(n.bytesSent).toBe(j.fullBytes);
      expect(n.snapshotter).toBe('overlayfs');
    }
    const log = fs.readFileSync(path.join(dir, 'docker.log'), 'utf8');
    expect(log).toContain('ps --filter label=io.x-k8s.kind.cluster=kind --format {{.Names}}');
    expect(log).toMatch(/exec --privileged -i kind-worker ctr --namespace=k8s\.io images import --all-platforms --digests --snapshotter=overlayfs -/);
    expect(log).toMatch(/exec --privileged -i kind-control-plane containerd config dump/);
    for (const n of NODES) {
      const imgs = parseImagesLs(await ctr(sock[n], ['images', 'ls']));
      expect(imgs.find((i) => i.name === 'docker.io/library/app:1')?.digest).toBe(app.digest);
    }

    const again = await runCli(['kind', 'load', 'app:1'], { root, env });
    expect(again.code).toBe(0);
    for (const n of NODES) {
      expect(again.stdout).toContain(`${n}: docker.io/library/app:1 skipped`);
      expect(again.stdout).toMatch(new RegExp(`${n}: sent 0 B of a [0-9.]+ (KiB|MiB) full archive \\(delta`));
    }
  });

  it('kind load delta after a top-layer change reports bytes sent vs a full archive', async () => {
    if (!HAVE()) return;
    const r = await runCli(['kind', 'load', 'app:2', '--nodes', 'kind-worker', '--json'], { root, env });
    expect(r.code).toBe(0);
    const n = JSON.parse(r.stdout).nodes[0];
    expect(n.node).toBe('kind-worker');
    expect(n.imported).toEqual(['docker.io/library/app:2']);
    expect(n.omittedBlobs).toBe(2);
    expect(n.bytesSent * 10).toBeLessThan(n.fullBytes);
  });

  it("--exec 'env CONTAINERD_ADDRESS=SOCKET' --nodes local drives a local containerd", async () => {
    if (!HAVE()) return;
    const r = await runCli(['kind', 'load', 'app:2', '--exec', `env CONTAINERD_ADDRESS=${sock['kind-control-plane']}`, '--nodes', 'local', '--pin'], { root, env });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('local: docker.io/library/app:2 imported');
    expect(r.stdout).toMatch(/local: sent [0-9.]+ KiB of a [0-9.]+ MiB full archive \(delta, 2 blob\(s\) already on the node left out; snapshotter overlayfs, pinned 1\)/);
    const out = await ctr(sock['kind-control-plane'], ['images', 'ls']);
    const line = out.split('\n').find((l) => l.startsWith('docker.io/library/app:2 '));
    expect(line).toContain('io.cri-containerd.pinned=pinned');
  });

  it('a failing node: non-zero exit, one error line naming the node', async () => {
    if (!HAVE()) return;
    const r = await runCli(['kind', 'load', 'app:1', '--nodes', 'kind-worker,kind-gone'], { root, env });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/^imgtool: error: kind load: node "kind-gone": `containerd config dump` failed \(exit status 1\): Error response from daemon: No such container: kind-gone\n/);
    expect(r.stdout).toBe('');
  });

  it('a cluster without nodes, or an engine that cannot list them, is an error naming the cluster', async () => {
    if (!HAVE()) return;
    const r = await runCli(['kind', 'load', 'app:1', '--name', 'other'], { root, env });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/no nodes found for KIND cluster "other"/);
    const r2 = await runCli(['kind', 'load', 'app:1', '--name', 'kind', '--exec', '/nonexistent/podman exec -i {node}'], { root, env });
    expect(r2.code).not.toBe(0);
    expect(r2.stderr).toMatch(/cannot list the nodes of KIND cluster "kind": `\/nonexistent\/podman ps .*` failed \(\/nonexistent\/podman could not be run\)/);
  });
});
