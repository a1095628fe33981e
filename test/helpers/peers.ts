/**
 * Peer tools (skopeo, umoci, ctr/containerd, docker-registry) for interoperability tests.
 *
 * `requirePeer(name)` returns true when the peer is installed. When it is missing it prints a loud
 * SKIP warning and returns false — except under `CI=true`, where a missing peer throws so the test
 * fails. Typical use:
 *
 *   it('ctr accepts our archive', async () => {
 *     if (!requirePeer('ctr')) return;
 *     ...
 *   });
 *
 * A test that returns early this way is counted as *skipped* in the run's closing line: the
 * check records the test in the file named by $IMGTOOL_PEER_SKIPS (set by
 * test/helpers/summary-reporter.js), which moves it from passed to skipped. Call the check
 * inside the test (a module-level `const HAVE = () => requirePeer(…)` is fine), not once per
 * file: only a check made while a test runs can name that test.
 *
 * `startContainerd(dir)` starts an isolated containerd (own root/state/socket under `dir`, via
 * `scripts/peers/containerd-up.sh`) and returns the socket path; `stopContainerd(dir)` stops it.
 * `startRegistry(dir, port)` / `stopRegistry(dir)` do the same for a distribution registry.
 * `ctr(socket, args)` runs `ctr -a SOCKET -n k8s.io ARGS…` and returns its output.
 *
 * docker and podman (Debian's docker.io 20.10 and podman 4.3, see scripts/peers/):
 * `startDockerd(dir)` starts an isolated dockerd and returns its DOCKER_HOST; `docker(host, args)`
 * runs Debian's /usr/bin/docker against it (another docker CLI may come first on PATH);
 * `dockerPathDir(dir)` makes a directory whose `docker` is that CLI, to put first on PATH for
 * programs that run `docker` themselves (imgtool kind). `podmanEnv(dir)` writes an isolated
 * podman/buildah configuration and returns the environment that selects it; `podman(env, args)`.
 */
import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';

export const PEER_SCRIPTS = path.resolve(__dirname, '..', '..', 'scripts', 'peers');

export type PeerName = 'skopeo' | 'umoci' | 'ctr' | 'containerd' | 'docker-registry' | 'zstd' | 'docker' | 'podman' | 'buildah';

/** Binaries each peer needs (containerd is useless without ctr to drive it). */
const PEER_BINARIES: Record<PeerName, string[]> = {
  skopeo: ['skopeo'],
  umoci: ['umoci'],
  ctr: ['ctr'],
  containerd: ['containerd', 'ctr'],
  'docker-registry': ['docker-registry', 'curl'],
  zstd: ['zstd'],
  docker: ['dockerd'],
  podman: ['podman'],
  buildah: ['buildah'],
};

const found = new Map<string, string | null>();

/** Absolute path of `bin` on $PATH, or null. */
export function whichBinary(bin: string): string | null {
  const key = `${process.env.PATH ?? ''}\0${bin}`;
  if (found.has(key)) return found.get(key)!;
  let result: string | null = null;
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const p = path.join(dir, bin);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) { result = p; break; }
    } catch { /* not here */ }
  }
  found.set(key, result);
  return result;
}

/** Is the process root? containerd needs it. */
function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** Why `name` cannot be used here, or null when it can. */
export function peerMissing(name: PeerName): string | null {
  const bins = PEER_BINARIES[name];
  if (!bins) return `unknown peer '${name}'`;
  const missing = bins.filter((b) => !whichBinary(b));
  if (missing.length) return `${missing.join(', ')} not found on PATH`;
  if (name === 'docker' && !dockerCli()) return 'no docker CLI (Debian docker.io installs /usr/bin/docker)';
  if ((name === 'containerd' || name === 'docker' || name === 'podman' || name === 'buildah') && !isRoot()) {
    return `${name} needs root here (running as uid ${process.getuid?.()})`;
  }
  return null;
}

/**
 * True when every named peer is usable. Otherwise: under CI=true throws (the test fails);
 * elsewhere prints a loud SKIP warning and returns false (the test should `return`).
 */
export function requirePeer(...names: PeerName[]): boolean {
  const problems: string[] = [];
  for (const n of names) {
    const why = peerMissing(n);
    if (why) problems.push(`${n}: ${why}`);
  }
  if (!problems.length) return true;
  const msg = `peer tool(s) unavailable — ${problems.join('; ')} (install with scripts/peers/install.sh)`;
  if (process.env.CI === 'true') throw new Error(`CI=true: ${msg}`);
  const current = safeTestName();
  recordPeerSkip(current, msg);
  console.warn(
    `\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n` +
      `!!! SKIP${current ? ` "${current}"` : ''}: ${msg}\n` +
      `!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n`,
  );
  return false;
}

function testState(): { currentTestName?: string; testPath?: string } | undefined {
  try {
    const g = globalThis as unknown as { expect?: { getState?: () => { currentTestName?: string; testPath?: string } } };
    return g.expect?.getState?.();
  } catch {
    return undefined;
  }
}

function safeTestName(): string | undefined {
  return testState()?.currentTestName;
}

/** Tell the summary reporter that the running test is skipped for a missing peer (see the file comment). */
function recordPeerSkip(test: string | undefined, why: string): void {
  const log = process.env.IMGTOOL_PEER_SKIPS;
  const file = testState()?.testPath;
  if (!log || !test || !file) return;
  fs.appendFileSync(log, JSON.stringify({ file, test, why }) + '\n');
}

function runScript(script: string, args: string[], timeoutMs = 30000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(path.join(PEER_SCRIPTS, script), args, { timeout: timeoutMs, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${script} ${args.join(' ')} failed: ${err.message}\n${stderr}`));
      else resolve(stdout.trim());
    });
  });
}

/**
 * Start an isolated containerd with root, state and socket under `dir` (created if needed).
 * Returns the socket path (`dir/containerd.sock`). Stop it with `stopContainerd(dir)`.
 * Keep `dir` short: a unix socket path must stay under ~100 bytes.
 */
export async function startContainerd(dir: string): Promise<string> {
  const abs = path.resolve(dir);
  if (Buffer.byteLength(path.join(abs, 'containerd.sock.ttrpc')) > 100) {
    throw new Error(`startContainerd: directory path too long for a unix socket: ${abs}`);
  }
  return runScript('containerd-up.sh', [abs]);
}

/** Stop the containerd started by `startContainerd(dir)` (by its recorded PID only). */
export async function stopContainerd(dir: string): Promise<void> {
  await runScript('containerd-down.sh', [path.resolve(dir)]);
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Start a distribution registry on 127.0.0.1 (a free port unless given), storage under `dir`.
 * Returns `host:port`. Stop it with `stopRegistry(dir)`.
 */
export async function startRegistry(dir: string, port?: number, htpasswdFile?: string): Promise<string> {
  const p = port ?? (await freePort());
  const args = [path.resolve(dir), String(p)];
  if (htpasswdFile) args.push(htpasswdFile);
  return runScript('registry-up.sh', args);
}

export async function stopRegistry(dir: string): Promise<void> {
  await runScript('registry-down.sh', [path.resolve(dir)]);
}

/** Run `ctr -a SOCKET -n NAMESPACE ARGS…` (namespace default k8s.io); resolves stdout, rejects with stderr. */
export function ctr(socket: string, args: string[], opts: { namespace?: string; input?: Buffer | string } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile('ctr', ['-a', socket, '-n', opts.namespace ?? 'k8s.io', ...args], { maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`ctr ${args.join(' ')} failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
    if (opts.input !== undefined) child.stdin!.end(opts.input);
    else child.stdin!.end();
  });
}

/** Synchronous `ctr` for quick checks; throws on failure. */
export function ctrSync(socket: string, args: string[], namespace = 'k8s.io'): string {
  return execFileSync('ctr', ['-a', socket, '-n', namespace, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
}

/** Debian's docker CLI (20.10, matching its dockerd), else whatever `docker` is on PATH. */
export function dockerCli(): string | null {
  try {
    fs.accessSync('/usr/bin/docker', fs.constants.X_OK);
    return '/usr/bin/docker';
  } catch {
    return whichBinary('docker');
  }
}

/**
 * Start an isolated dockerd with data, socket and logs under `dir` (scripts/peers/dockerd-up.sh).
 * Returns its DOCKER_HOST (`unix://DIR/docker.sock`). Stop it with `stopDockerd(dir)`.
 */
export async function startDockerd(dir: string): Promise<string> {
  const abs = path.resolve(dir);
  if (Buffer.byteLength(path.join(abs, 'docker.sock')) > 100) {
    throw new Error(`startDockerd: directory path too long for a unix socket: ${abs}`);
  }
  return runScript('dockerd-up.sh', [abs], 60000);
}

/** Stop the dockerd started by `startDockerd(dir)`: its containers, mounts and process. */
export async function stopDockerd(dir: string): Promise<void> {
  await runScript('dockerd-down.sh', [path.resolve(dir)], 60000);
}

function runPeer(bin: string, args: string[], env: NodeJS.ProcessEnv, input?: Buffer | string, timeoutMs = 300000): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(bin, args, { env, maxBuffer: 256 << 20, timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${path.basename(bin)} ${args.join(' ')} failed: ${err.message}\n${stdout}\n${stderr}`));
      else resolve(stdout);
    });
    if (input !== undefined) child.stdin!.end(input);
    else child.stdin!.end();
  });
}

/** Run Debian's docker CLI against the daemon at `host` (a DOCKER_HOST); resolves stdout. */
export function docker(host: string, args: string[], opts: { input?: Buffer | string; timeoutMs?: number } = {}): Promise<string> {
  const cli = dockerCli();
  if (!cli) return Promise.reject(new Error('no docker CLI'));
  return runPeer(cli, args, { ...process.env, DOCKER_HOST: host }, opts.input, opts.timeoutMs);
}

/** A directory under `dir` whose only entry `docker` is Debian's CLI; put it first on PATH. */
export function dockerPathDir(dir: string): string {
  const bin = path.join(path.resolve(dir), 'docker-bin');
  fs.mkdirSync(bin, { recursive: true });
  const link = path.join(bin, 'docker');
  fs.rmSync(link, { force: true });
  fs.symlinkSync(dockerCli() ?? 'docker', link);
  return bin;
}

/**
 * Configure an isolated podman/buildah store under `dir` (scripts/peers/podman-env.sh) and return
 * the environment (process.env plus CONTAINERS_STORAGE_CONF, CONTAINERS_CONF, TMPDIR) that selects it.
 */
export async function podmanEnv(dir: string): Promise<NodeJS.ProcessEnv> {
  const out = await runScript('podman-env.sh', [path.resolve(dir)]);
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const line of out.split('\n')) {
    const m = /^export ([A-Z_]+)='(.*)'$/.exec(line.trim());
    if (m) env[m[1]] = m[2];
  }
  return env;
}

/** Run podman with the environment from `podmanEnv`; resolves stdout. */
export function podman(env: NodeJS.ProcessEnv, args: string[], opts: { input?: Buffer | string; timeoutMs?: number } = {}): Promise<string> {
  return runPeer('podman', args, env, opts.input, opts.timeoutMs);
}

/** Run buildah with the environment from `podmanEnv`; resolves stdout. */
export function buildah(env: NodeJS.ProcessEnv, args: string[], opts: { input?: Buffer | string; timeoutMs?: number } = {}): Promise<string> {
  return runPeer('buildah', args, env, opts.input, opts.timeoutMs);
}
