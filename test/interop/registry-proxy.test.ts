/**
 * HTTPS_PROXY / HTTP_PROXY / NO_PROXY against the REAL docker-registry, through a small real
 * forward proxy (test/helpers/proxy.ts): https goes through a CONNECT tunnel (the registry's
 * Basic credentials travel inside TLS, never in the proxy's view; the proxy's own credentials go
 * as Proxy-Authorization to the proxy only), plain http as absolute-URI requests; NO_PROXY
 * bypasses the proxy; a proxy that refuses CONNECT is one clear line and registers nothing.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFile, execFileSync } from 'node:child_process';
import { rmrf, runCli, tmpDir } from '../helpers/cli';
import { PEER_SCRIPTS, freePort, requirePeer, startRegistry, stopRegistry, whichBinary } from '../helpers/peers';
import { startForwardProxy } from '../helpers/proxy';
import { ImageBuilder } from '../../src/builder';
import { imgtool, imgtoolJson } from './matrix-fixtures';

jest.setTimeout(180_000);

function need(bin: string, pkg: string): boolean {
  if (whichBinary(bin)) return true;
  if (process.env.CI === 'true') throw new Error(`CI=true: ${bin} (${pkg}) not installed`);
  console.warn(`\n!!! SKIP registry proxy tests: ${bin} not found (apt-get install ${pkg})\n`);
  return false;
}
const HAVE = requirePeer('docker-registry') && need('openssl', 'openssl') && need('htpasswd', 'apache2-utils');

const NO_PROXY_ENV = { HTTPS_PROXY: '', https_proxy: '', HTTP_PROXY: '', http_proxy: '', NO_PROXY: '', no_proxy: '', ALL_PROXY: '', all_proxy: '' };

describe('registry through an HTTP(S) proxy', () => {
  let dir: string;
  let reg: string; // TLS + htpasswd
  let plain: string; // plain HTTP, anonymous
  let ca: string;
  let env: Record<string, string>;
  let digest: string;

  beforeAll(async () => {
    if (!HAVE) return;
    dir = tmpDir('iregproxy-');
    const f = (n: string) => path.join(dir, n);
    const openssl = (args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
    openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2', '-subj', '/CN=imgtool proxy test CA']);
    openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('srv.key'), '-out', f('srv.csr'), '-subj', '/CN=127.0.0.1']);
    fs.writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
    openssl(['x509', '-req', '-in', f('srv.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('srv.pem'), '-days', '2', '-extfile', f('ext.cnf')]);
    ca = f('ca.pem');
    execFileSync('htpasswd', ['-B', '-b', '-c', f('htpasswd'), 'alice', 'reg-s3cret']);
    const port = await freePort();
    reg = await new Promise<string>((resolve, reject) => {
      execFile(path.join(PEER_SCRIPTS, 'registry-up.sh'), [f('reg'), String(port), f('htpasswd')], {
        env: { ...process.env, REGISTRY_TLS_CERT: f('srv.pem'), REGISTRY_TLS_KEY: f('srv.key') },
      }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout.trim())));
    });
    plain = await startRegistry(f('plain'));
    fs.mkdirSync(f('docker'));
    fs.writeFileSync(f('docker/config.json'), JSON.stringify({ auths: { [reg]: { auth: Buffer.from('alice:reg-s3cret').toString('base64') } } }));
    env = { ...NO_PROXY_ENV, DOCKER_CONFIG: f('docker'), REGISTRY_AUTH_FILE: f('none.json'), XDG_RUNTIME_DIR: f('xdg'), HOME: dir };
    const b = new ImageBuilder(f('build'));
    const l1 = await b.layer([{ path: 'proxied', content: 'through the tunnel\n' }]);
    const l2 = await b.layer([{ path: 'bulk', content: { size: 1 << 20, seed: 5 } }]);
    const im = b.image({ layers: [l1, l2] });
    digest = im.descriptor.digest;
    await b.ociArchive(f('p.tar'), { images: [{ target: im, names: [`${reg}/team/app:1`, `${plain}/open/app:1`] }] });
    await imgtool(f('src'), ['load', '-i', f('p.tar'), '--no-unpack']);
  });

  afterAll(async () => {
    if (!HAVE || !dir) return;
    await new Promise<void>((r) => execFile(path.join(PEER_SCRIPTS, 'registry-down.sh'), [path.join(dir, 'reg')], () => r()));
    await stopRegistry(path.join(dir, 'plain')).catch(() => undefined);
    rmrf(dir);
  });

  it('push and pull over https go through CONNECT tunnels; the proxy gets only its own credentials', async () => {
    if (!HAVE) return;
    const proxy = await startForwardProxy({ auth: 'pxuser:px-pass' });
    try {
      const penv = { ...env, HTTPS_PROXY: proxy.url };
      const p = await runCli(['push', `${reg}/team/app:1`, '--ca-file', ca, '--json'], { root: path.join(dir, 'src'), env: penv });
      expect(p.stderr).toBe('');
      expect(p.code).toBe(0);
      expect(JSON.parse(p.stdout).digest).toBe(digest);
      const dst = path.join(dir, 'dst1');
      const g = await runCli(['pull', `${reg}/team/app:1`, '--ca-file', ca, '--json', '--no-unpack'], { root: dst, env: penv });
      expect(g.stderr).toBe('');
      expect(g.code).toBe(0);
      expect(JSON.parse(g.stdout).images[0].digest).toBe(digest);

      expect(proxy.tunnels.length).toBeGreaterThanOrEqual(2);
      for (const t of proxy.tunnels) {
        expect(t.target).toBe(reg);
        expect(t.status).toBe(200);
        expect(t.headers['proxy-authorization']).toBe(`Basic ${Buffer.from('pxuser:px-pass').toString('base64')}`);
        // The registry's credentials are inside the tunnel, never in what the proxy reads.
        expect(t.headers.authorization).toBeUndefined();
        expect(JSON.stringify(t.headers)).not.toContain(Buffer.from('alice:reg-s3cret').toString('base64'));
      }
      expect(proxy.forwarded).toEqual([]);
      expect(p.stdout + p.stderr + g.stdout + g.stderr).not.toContain('px-pass');
    } finally {
      await proxy.close();
    }
  });

  it('NO_PROXY / no_proxy bypass the proxy (exact host, host:port, a list); lower-case https_proxy is read', async () => {
    if (!HAVE) return;
    const proxy = await startForwardProxy();
    try {
      const port = reg.split(':')[1];
      for (const [i, extra] of [
        { HTTPS_PROXY: proxy.url, NO_PROXY: '127.0.0.1' },
        { https_proxy: proxy.url, no_proxy: `.example.com, 127.0.0.1:${port}` },
        { HTTPS_PROXY: proxy.url, NO_PROXY: '10.0.0.0/8,127.0.0.0/8' },
        { HTTPS_PROXY: proxy.url, NO_PROXY: '*' },
      ].entries()) {
        const g = await runCli(['pull', `${reg}/team/app:1`, '--ca-file', ca, '--no-unpack'], { root: path.join(dir, `dst-np${i}`), env: { ...env, ...extra } });
        expect(g.stderr).toBe('');
        expect(g.code).toBe(0);
      }
      expect(proxy.tunnels).toEqual([]);
      // Another port of the same host is not bypassed by host:port.
      const g = await runCli(['pull', `${reg}/team/app:1`, '--ca-file', ca, '--no-unpack'], {
        root: path.join(dir, 'dst-np-other'), env: { ...env, https_proxy: proxy.url, no_proxy: '127.0.0.1:1' },
      });
      expect(g.code).toBe(0);
      expect(proxy.tunnels.map((t) => t.target)).toContain(reg);
    } finally {
      await proxy.close();
    }
  });

  it('plain http goes to HTTP_PROXY as absolute-URI requests', async () => {
    if (!HAVE) return;
    await imgtool(path.join(dir, 'src'), ['push', `${plain}/open/app:1`, '--insecure']);
    const proxy = await startForwardProxy({ auth: 'pxuser:px-pass' });
    try {
      const g = await runCli(['pull', `${plain}/open/app:1`, '--insecure', '--no-unpack', '--json'], { root: path.join(dir, 'dst-http'), env: { ...env, HTTP_PROXY: proxy.url } });
      expect(g.stderr).toBe('');
      expect(g.code).toBe(0);
      expect(JSON.parse(g.stdout).images[0].digest).toBe(digest);
      expect(proxy.tunnels).toEqual([]);
      expect(proxy.forwarded.length).toBeGreaterThanOrEqual(3);
      for (const f of proxy.forwarded) {
        expect(f.target.startsWith(`http://${plain}/v2/`)).toBe(true);
        expect(f.headers['proxy-authorization']).toBe(`Basic ${Buffer.from('pxuser:px-pass').toString('base64')}`);
      }
    } finally {
      await proxy.close();
    }
  });

  it('a proxy that refuses CONNECT is one clear line naming the proxy (without its credentials); nothing registered', async () => {
    if (!HAVE) return;
    const proxy = await startForwardProxy({ refuse: 403 });
    try {
      const dst = path.join(dir, 'dst-refused');
      const url = proxy.url.replace('http://', 'http://pxuser:px-pass@');
      const g = await runCli(['pull', `${reg}/team/app:1`, '--ca-file', ca], { root: dst, env: { ...env, HTTPS_PROXY: url } });
      expect(g.code).not.toBe(0);
      expect(g.stderr.trim().split('\n')).toEqual([expect.stringMatching(new RegExp(`^imgtool: error: .*proxy http://127\\.0\\.0\\.1:${proxy.port} refused CONNECT to ${reg.replace(/\./g, '\\.')} \\(403`))]);
      expect(g.stderr).not.toContain('px-pass');
      expect(proxy.tunnels).toHaveLength(1); // not retried: a refusal is an answer
      expect(await imgtoolJson(dst, ['images'])).toEqual([]);
    } finally {
      await proxy.close();
    }
  });
});
