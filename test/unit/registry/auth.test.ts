import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { findCredentials, storeCredentials, eraseCredentials, parseChallenges, apiHost, configKey } from '../../../src/registry/auth';
import { registryDomain } from '../../../src/registry/login';

const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('WWW-Authenticate parsing', () => {
  it('reads a Bearer challenge with quoted params containing commas', () => {
    const ch = parseChallenges('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"');
    expect(ch).toEqual([{ scheme: 'bearer', params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull,push' } }]);
  });
  it('reads several challenges and Basic', () => {
    const ch = parseChallenges(['Basic realm="x"', 'Bearer realm="https://t/",service=s']);
    expect(ch.map((c) => c.scheme)).toEqual(['basic', 'bearer']);
    expect(ch[1].params).toEqual({ realm: 'https://t/', service: 's' });
    expect(parseChallenges('Basic realm="imgtool-test", Bearer realm="https://r"').map((c) => c.scheme)).toEqual(['basic', 'bearer']);
  });
  it('handles escapes and nothing', () => {
    expect(parseChallenges('Basic realm="a\\"b"')[0].params.realm).toBe('a"b');
    expect(parseChallenges(undefined)).toEqual([]);
  });
});

describe('credentials lookup and storage', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'regauth-'));
    env = { DOCKER_CONFIG: path.join(dir, 'docker') };
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));
  const writeJson = (p: string, v: unknown) => {
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, JSON.stringify(v));
  };

  it('Docker Hub maps as docker does', () => {
    expect(apiHost('docker.io')).toBe('registry-1.docker.io');
    expect(configKey('docker.io')).toBe('https://index.docker.io/v1/');
    expect(registryDomain('https://index.docker.io/v1/')).toBe('docker.io');
    expect(registryDomain('localhost:5000')).toBe('localhost:5000');
  });

  it('config.json auths first (keys matched by host, scheme and path ignored), then auth.json', async () => {
    writeJson(path.join(dir, 'docker', 'config.json'), { auths: { 'https://reg.example:5000/v2/': { auth: b64('u1:p1') }, 'https://index.docker.io/v1/': { auth: b64('hub:pw') } } });
    writeJson(path.join(dir, 'auth.json'), { auths: { 'reg.example:5000': { auth: b64('u2:p2') }, 'other.example': { auth: b64('u3:p:3') } } });
    env.REGISTRY_AUTH_FILE = path.join(dir, 'auth.json');
    expect(await findCredentials('reg.example:5000', { env, home: dir })).toMatchObject({ username: 'u1', password: 'p1' });
    expect(await findCredentials('docker.io', { env, home: dir })).toMatchObject({ username: 'hub', password: 'pw' });
    expect(await findCredentials('other.example', { env, home: dir })).toMatchObject({ username: 'u3', password: 'p:3', source: path.join(dir, 'auth.json') });
    expect(await findCredentials('nobody.example', { env, home: dir })).toBeUndefined();
  });

  it('XDG_RUNTIME_DIR and ~/.config/containers/auth.json are read in that order', async () => {
    env.XDG_RUNTIME_DIR = path.join(dir, 'run');
    writeJson(path.join(dir, 'run', 'containers', 'auth.json'), { auths: { 'a.example': { auth: b64('xdg:1') } } });
    writeJson(path.join(dir, '.config', 'containers', 'auth.json'), { auths: { 'a.example': { auth: b64('home:1') }, 'b.example': { auth: b64('home:2') } } });
    expect((await findCredentials('a.example', { env, home: dir }))?.username).toBe('xdg');
    expect((await findCredentials('b.example', { env, home: dir }))?.username).toBe('home');
  });

  it('login rewrites config.json atomically: 0600, unknown keys kept, one entry per host', async () => {
    const cfg = path.join(dir, 'docker', 'config.json');
    writeJson(cfg, { psFormat: 'x', credHelpers: {}, auths: { 'http://reg.example': { auth: b64('old:old') }, keep: { auth: b64('k:k') } } });
    fs.chmodSync(cfg, 0o644);
    const r = await storeCredentials('reg.example', 'alice', 'pw', { env, home: dir });
    expect(r.where).toBe(cfg);
    expect(fs.statSync(cfg).mode & 0o777).toBe(0o600);
    const v = JSON.parse(fs.readFileSync(cfg, 'utf8'));
    expect(v.psFormat).toBe('x');
    expect(Object.keys(v.auths).sort()).toEqual(['keep', 'reg.example']);
    expect(Buffer.from(v.auths['reg.example'].auth, 'base64').toString()).toBe('alice:pw');
    expect(fs.readdirSync(path.dirname(cfg))).toEqual(['config.json']); // no temp left behind
    const e = await eraseCredentials('reg.example', { env, home: dir });
    expect(e.removed).toBe(true);
    expect(Object.keys(JSON.parse(fs.readFileSync(cfg, 'utf8')).auths)).toEqual(['keep']);
    expect((await eraseCredentials('reg.example', { env, home: dir })).removed).toBe(false);
  });

  it('a config.json that is not valid JSON is never overwritten', async () => {
    const cfg = path.join(dir, 'docker', 'config.json');
    fs.mkdirSync(path.dirname(cfg), { recursive: true });
    fs.writeFileSync(cfg, '{ not json');
    await expect(storeCredentials('reg.example', 'a', 'secret-pw', { env, home: dir })).rejects.toThrow(/config.json is not valid JSON/);
    expect(fs.readFileSync(cfg, 'utf8')).toBe('{ not json');
  });

  it('a credential helper is used when configured (credHelpers before credsStore)', async () => {
    const bin = path.join(dir, 'bin');
    fs.mkdirSync(bin);
    const helper = (name: string, user: string) => {
      const p = path.join(bin, `docker-credential-${name}`);
      fs.writeFileSync(p, `#!/bin/sh\nin=$(cat)\ncase "$1" in get) echo '{"Username":"${user}","Secret":"s-'"$in"'"}';; store) printf '%s' "$in" > ${dir}/stored-${name};; erase) echo "$in" > ${dir}/erased-${name};; esac\n`);
      fs.chmodSync(p, 0o755);
    };
    helper('one', 'from-one');
    helper('all', 'from-all');
    writeJson(path.join(dir, 'docker', 'config.json'), { credsStore: 'all', credHelpers: { 'reg.example': 'one' }, auths: { 'reg.example': { auth: b64('file:file') } } });
    env.PATH = `${bin}:${process.env.PATH}`;
    {
      expect(await findCredentials('reg.example', { env, home: dir })).toMatchObject({ username: 'from-one', password: 's-reg.example', source: 'docker-credential-one' });
      expect(await findCredentials('x.example', { env, home: dir })).toMatchObject({ username: 'from-all' });
      const s = await storeCredentials('x.example', 'bob', 'pw2', { env, home: dir });
      expect(s.where).toBe('docker-credential-all');
      expect(JSON.parse(fs.readFileSync(path.join(dir, 'stored-all'), 'utf8'))).toEqual({ ServerURL: 'x.example', Username: 'bob', Secret: 'pw2' });
    }
  });
});
