/**
 * The real docker-registry over TLS (a self-signed CA) with distribution's `token` auth, backed by
 * a small token server here that checks Basic credentials and issues RS256 JWTs (x5c chain to the
 * registry's rootcertbundle). Exercises: TLS verification and --ca-file, the Bearer flow (realm,
 * service, scope; token cached per scope), login through it, a cross-repository mount asking for
 * `SRC:pull` and `DST:pull,push` in one token, and bad credentials as one line.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as path from 'node:path';
import { execFile, execFileSync } from 'node:child_process';
import { AddressInfo } from 'node:net';
import { rmrf, runCli, tmpDir } from '../helpers/cli';
import { PEER_SCRIPTS, freePort, requirePeer, whichBinary } from '../helpers/peers';
import { ImageBuilder } from '../../src/builder';
import { imgtool, imgtoolJson } from './matrix-fixtures';

jest.setTimeout(180_000);

const HAVE = requirePeer('docker-registry') && (!!whichBinary('openssl') || (process.env.CI === 'true' ? (() => { throw new Error('CI=true: openssl missing'); })() : (console.warn('\n!!! SKIP registry TLS/token tests: openssl not found\n'), false)));

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: 'pipe' });
}

describe('registry over TLS with token auth', () => {
  let dir: string;
  let reg: string;
  let tokenSrv: https.Server;
  let ca: string;
  let env: Record<string, string>;
  const scopesAsked: string[][] = [];
  let digest: string;

  beforeAll(async () => {
    if (!HAVE) return;
    dir = tmpDir('iregtok-');
    const f = (n: string) => path.join(dir, n);
    // CA and a server certificate for 127.0.0.1.
    openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2', '-subj', '/CN=imgtool test CA']);
    openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('srv.key'), '-out', f('srv.csr'), '-subj', '/CN=127.0.0.1']);
    fs.writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
    openssl(['x509', '-req', '-in', f('srv.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('srv.pem'), '-days', '2', '-extfile', f('ext.cnf')]);
    // Token signing key + certificate (the registry's rootcertbundle).
    openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('tok.key'), '-out', f('tok.pem'), '-days', '2', '-subj', '/CN=imgtool token issuer']);
    ca = f('ca.pem');
    const tokKey = crypto.createPrivateKey(fs.readFileSync(f('tok.key')));
    const tokDer = new crypto.X509Certificate(fs.readFileSync(f('tok.pem'))).raw;

    tokenSrv = https.createServer({ key: fs.readFileSync(f('srv.key')), cert: fs.readFileSync(f('srv.pem')) }, (req, res) => {
      const u = new URL(req.url!, 'https://x');
      const scopes = u.searchParams.getAll('scope');
      scopesAsked.push(scopes);
      const auth = req.headers.authorization ?? '';
      const user = auth.startsWith('Basic ') ? Buffer.from(auth.slice(6), 'base64').toString() : '';
      if (user !== 'alice:tok-pw' && user !== 'reader:read-pw') {
        res.writeHead(401).end('{"details":"bad credentials"}');
        return;
      }
      const access = scopes.map((s) => {
        const [type, name, actions] = [s.split(':')[0], s.split(':').slice(1, -1).join(':'), s.split(':').pop()!];
        // `reader` may only pull.
        return { type, name, actions: actions.split(',').filter((a) => user.startsWith('alice:') || a === 'pull') };
      });
      const now = Math.floor(Date.now() / 1000);
      const header = b64url(JSON.stringify({ typ: 'JWT', alg: 'RS256', x5c: [tokDer.toString('base64')] }));
      const claims = b64url(JSON.stringify({
        iss: 'imgtool-test-issuer', sub: 'alice', aud: u.searchParams.get('service'), exp: now + 300, nbf: now - 10, iat: now,
        jti: crypto.randomBytes(8).toString('hex'), access,
      }));
      const sig = crypto.sign('RSA-SHA256', Buffer.from(`${header}.${claims}`), tokKey);
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ token: `${header}.${claims}.${b64url(sig)}`, expires_in: 300 }));
    });
    await new Promise<void>((r) => tokenSrv.listen(0, '127.0.0.1', () => r()));
    const realm = `https://127.0.0.1:${(tokenSrv.address() as AddressInfo).port}/token`;
    const port = await freePort();
    reg = await new Promise<string>((resolve, reject) => {
      execFile(path.join(PEER_SCRIPTS, 'registry-up.sh'), [f('reg'), String(port)], {
        env: {
          ...process.env, REGISTRY_TLS_CERT: f('srv.pem'), REGISTRY_TLS_KEY: f('srv.key'),
          REGISTRY_TOKEN_REALM: realm, REGISTRY_TOKEN_SERVICE: 'imgtool-test', REGISTRY_TOKEN_ISSUER: 'imgtool-test-issuer', REGISTRY_TOKEN_ROOTCERT: f('tok.pem'),
        },
      }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout.trim())));
    });
    env = { DOCKER_CONFIG: f('docker'), REGISTRY_AUTH_FILE: f('none.json'), XDG_RUNTIME_DIR: f('xdg'), HOME: dir };
    const b = new ImageBuilder(f('build'));
    const l1 = await b.layer([{ path: 'tok', content: 'token\n' }]);
    const l2 = await b.layer([{ path: 'bulk', content: { size: 1 << 20, seed: 11 } }]);
    const im = b.image({ layers: [l1, l2] });
    digest = im.descriptor.digest;
    await b.ociArchive(f('t.tar'), { images: [{ target: im, names: [`${reg}/team/app:1`] }] });
    await imgtool(f('src'), ['load', '-i', f('t.tar'), '--no-unpack']);
  });

  afterAll(async () => {
    if (!HAVE || !dir) return;
    await new Promise<void>((r) => execFile(path.join(PEER_SCRIPTS, 'registry-down.sh'), [path.join(dir, 'reg')], () => r()));
    tokenSrv?.closeAllConnections();
    await new Promise<void>((r) => (tokenSrv ? tokenSrv.close(() => r()) : r()));
    rmrf(dir);
  });

  it('a certificate that does not verify is one clear line; nothing registered', async () => {
    if (!HAVE) return;
    const dst = path.join(dir, 'dst0');
    const r = await runCli(['pull', `${reg}/team/app:1`], { root: dst, env });
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^imgtool: error: .*TLS with 127\.0\.0\.1:\d+ failed: .*--ca-file adds a CA$/)]);
    expect(await imgtoolJson(dst, ['images'])).toEqual([]);
  });

  it('anonymous, then a wrong password: one clear line each, nothing stored', async () => {
    if (!HAVE) return;
    const a = await runCli(['push', `${reg}/team/app:1`, '--ca-file', ca], { root: path.join(dir, 'src'), env });
    expect(a.code).not.toBe(0);
    expect(a.stderr.trim().split('\n')).toEqual([expect.stringMatching(/anonymous access refused by its token service \(401\)/)]);
    const w = await runCli(['login', reg, '-u', 'alice', '--password-stdin', '--ca-file', ca], { env, input: Buffer.from('bad-pw\n') });
    expect(w.code).not.toBe(0);
    expect(w.stderr.trim().split('\n')).toEqual([expect.stringMatching(/refused these credentials \(401\); nothing stored/)]);
    expect(w.stderr).not.toContain('bad-pw');
    expect(fs.existsSync(path.join(dir, 'docker', 'config.json'))).toBe(false);
  });

  it('login through the token flow, push, mount with both scopes in one token, pull: same digest', async () => {
    if (!HAVE) return;
    const l = await runCli(['login', reg, '-u', 'alice', '--password-stdin', '--ca-file', ca], { env, input: Buffer.from('tok-pw\n') });
    expect(l.stderr).toBe('');
    expect(l.code).toBe(0);
    const p = await imgtoolJson(path.join(dir, 'src'), ['push', `${reg}/team/app:1`, '--ca-file', ca], env);
    expect(p.digest).toBe(digest);
    expect(p.blobs.uploaded).toBe(3);
    scopesAsked.length = 0;
    const m = await imgtoolJson(path.join(dir, 'src'), ['push', `${reg}/team/app:1`, `${reg}/other/app:1`, '--ca-file', ca], env);
    expect(m.blobs.mounted).toBe(3);
    expect(scopesAsked).toContainEqual(['repository:team/app:pull', 'repository:other/app:pull,push']);
    // Token cached per scope: far fewer token requests than registry requests.
    expect(scopesAsked.length).toBeLessThanOrEqual(3);
    const dst = path.join(dir, 'dst1');
    const g = await imgtoolJson(dst, ['pull', `${reg}/other/app:1`, '--ca-file', ca, '--no-unpack'], env);
    expect(g.images[0].digest).toBe(digest);
    // The CA from Docker's certs.d layout (HOST:PORT/ca.crt) instead of --ca-file.
    const certsD = path.join(dir, 'certs.d');
    fs.mkdirSync(path.join(certsD, reg), { recursive: true });
    fs.copyFileSync(ca, path.join(certsD, reg, 'ca.crt'));
    const c = await imgtoolJson(path.join(dir, 'dst3'), ['pull', `${reg}/team/app:1`, '--no-unpack'], { ...env, IMGTOOL_CERTS_D: certsD });
    expect(c.images[0].digest).toBe(digest);
    // --insecure: unverified TLS works without the CA.
    const i = await imgtoolJson(path.join(dir, 'dst2'), ['pull', `${reg}/team/app:1`, '--insecure', '--no-unpack'], env);
    expect(i.images[0].digest).toBe(digest);
  });

  it('no permission (a token without push) is one clear line naming the repository; the tag stays untouched', async () => {
    if (!HAVE) return;
    const renv = { ...env, DOCKER_CONFIG: path.join(dir, 'docker-reader') };
    const l = await runCli(['login', reg, '-u', 'reader', '--password-stdin', '--ca-file', ca], { env: renv, input: Buffer.from('read-pw\n') });
    expect(l.code).toBe(0);
    const r = await runCli(['push', `${reg}/team/app:1`, `${reg}/readonly/app:1`, '--ca-file', ca], { root: path.join(dir, 'src'), env: renv });
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^imgtool: error: registry 127\.0\.0\.1:\d+: no permission to push to readonly\/app \(insufficient_scope\)$/)]);
    const none = await runCli(['pull', `${reg}/readonly/app:1`, '--ca-file', ca, '--no-unpack'], { root: path.join(dir, 'dst5'), env });
    expect(none.stderr).toMatch(/not found .*\(404\)/);
    // reader can still pull.
    const g = await imgtoolJson(path.join(dir, 'dst4'), ['pull', `${reg}/team/app:1`, '--ca-file', ca, '--no-unpack'], renv);
    expect(g.images[0].digest).toBe(digest);
  });
});
