/**
 * A KIND cluster whose nodes are real containers, for the interop tests: an isolated dockerd
 * (scripts/peers/dockerd-up.sh), a node image built offline from the host's containerd, shim,
 * runc, ctr and busybox-static (scripts/peers/kind-node-image.sh, brought in with `docker
 * import`), and node containers started the way KIND starts them: privileged, KIND's labels,
 * `/var/lib/containerd` an anonymous volume, here `--network none`. A node is ready when
 * `docker exec NODE ctr version` answers.
 *
 * imgtool reaches the nodes exactly as in a real cluster: `env()` puts a directory whose `docker`
 * is Debian's 20.10 CLI first on PATH and sets DOCKER_HOST, so its default exec template
 * (`docker exec --privileged -i {node}`) and discovery (`docker ps --filter label=…`) talk to this
 * daemon. Nothing of the product is replaced.
 */
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { PEER_SCRIPTS, startDockerd, stopDockerd, docker, dockerPathDir } from '../helpers/peers';
import { KIND_CLUSTER_LABEL } from '../../src/kind/nodes';

export const KIND_ROLE_LABEL = 'io.x-k8s.kind.role';
export const NODE_IMAGE = 'imgtool-test/kind-node:1';
/** The snapshotter each node of `KindCluster` runs (from its containerd config). */
export const NODE_SNAPSHOTTER = { 'control-plane': 'overlayfs', worker: 'native' } as const;

/** Build the node image into the daemon at `host` (a DOCKER_HOST). */
export function buildNodeImage(host: string, image = NODE_IMAGE, snapshotter = 'overlayfs'): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(
      path.join(PEER_SCRIPTS, 'kind-node-image.sh'),
      [image, snapshotter],
      { env: { ...process.env, DOCKER_HOST: host }, timeout: 120000, maxBuffer: 1 << 20 },
      (err, _stdout, stderr) => (err ? reject(new Error(`kind-node-image.sh failed: ${err.message}\n${stderr}`)) : resolve()),
    );
  });
}

export class KindCluster {
  readonly nodes: string[] = [];
  host = '';
  private pathDir = '';

  /** `dir` holds dockerd's data and socket: keep it short (a unix socket path). */
  constructor(readonly dir: string, readonly name: string) {}

  /**
   * Start dockerd, build the node image, start a control-plane node (overlayfs) and a worker node
   * (native snapshotter), wait for both.
   */
  async start(): Promise<void> {
    this.host = await startDockerd(path.join(this.dir, 'd'));
    this.pathDir = dockerPathDir(this.dir);
    await buildNodeImage(this.host);
    await Promise.all([
      this.startNode(`${this.name}-control-plane`, this.name, 'control-plane'),
      // The worker on the native snapshotter (KIND's switch): imgtool must read it from the node.
      this.startNode(`${this.name}-worker`, this.name, 'worker', ['-e', `KIND_EXPERIMENTAL_CONTAINERD_SNAPSHOTTER=${NODE_SNAPSHOTTER.worker}`]),
    ]);
  }

  /** Start one node container (KIND's flags and labels) and wait until its containerd answers. */
  async startNode(node: string, cluster: string, role: string, extra: string[] = [], command: string[] = []): Promise<void> {
    await this.docker([
      'run', '-d', '--privileged', '--network', 'none', '-v', '/var/lib/containerd',
      '--label', `${KIND_CLUSTER_LABEL}=${cluster}`, '--label', `${KIND_ROLE_LABEL}=${role}`,
      '--hostname', node, '--name', node, ...extra, NODE_IMAGE, ...command,
    ]);
    if (cluster === this.name) this.nodes.push(node);
    this.nodes.sort();
    if (!command.length) await this.waitReady(node);
  }

  async waitReady(node: string, timeoutMs = 30000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    while (Date.now() < deadline) {
      try {
        await this.docker(['exec', node, 'ctr', 'version']);
        return;
      } catch (e) {
        last = e;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    const logs = await this.docker(['logs', '--tail', '20', node]).catch(() => '');
    throw new Error(`node ${node}: containerd did not answer within ${timeoutMs} ms: ${(last as Error)?.message}\n${logs}`);
  }

  /** Environment for imgtool: Debian's docker CLI first on PATH, DOCKER_HOST set. */
  env(): Record<string, string> {
    return { PATH: `${this.pathDir}:${process.env.PATH}`, DOCKER_HOST: this.host };
  }

  docker(args: string[], opts: { input?: Buffer | string; timeoutMs?: number } = {}): Promise<string> {
    return docker(this.host, args, opts);
  }

  /** `ctr --namespace=k8s.io ARGS…` inside `node`. */
  ctr(node: string, args: string[]): Promise<string> {
    return this.docker(['exec', node, 'ctr', '--namespace=k8s.io', ...args]);
  }

  /** Stop every container and dockerd (dockerd-down.sh removes containers and their volumes). */
  async stop(): Promise<void> {
    if (this.host) await stopDockerd(path.join(this.dir, 'd'));
  }
}
