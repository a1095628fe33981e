/**
 * Registry credentials and auth challenges.
 *
 * Lookup, first hit wins (as docker, then containers/image): `credHelpers[host]`, `credsStore`
 * (both through `docker-credential-<name> get`), `auths` of Docker's `config.json`
 * (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`), then containers' `auth.json`
 * (`$REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json`, `~/.config/containers/auth.json`).
 * `auths` keys are matched by host (a scheme and a path such as `/v1/` are ignored); Docker Hub's
 * key is `https://index.docker.io/v1/`.
 *
 * `login`/`logout` go through the configured helper when there is one, else rewrite
 * `config.json` atomically: temp file in the same directory (mode 0600), fsync, rename; every
 * other key of the file is kept. A file that is not valid JSON is never overwritten.
 *
 * Secrets never appear in messages: errors name the host and the file, not the value.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as crypto from 'node:crypto';
import type * as ChildProcess from 'node:child_process';
import { InvalidArgumentError, RegistryError } from '../errors';
import { writeFileAtomic } from '../fsutil';

export interface Credentials {
  username: string;
  password: string;
  /** Where they were found (for `--debug`-free messages: a file or helper name, never the value). */
  source: string;
}

/** Docker Hub: the reference domain, the API host, and its config key. */
export const DOCKER_HUB = 'docker.io';
export const DOCKER_HUB_API = 'registry-1.docker.io';
export const DOCKER_HUB_KEY = 'https://index.docker.io/v1/';

/** Host the API is served from for a reference domain. */
export function apiHost(domain: string): string {
  return domain === DOCKER_HUB || domain === 'index.docker.io' ? DOCKER_HUB_API : domain;
}

/** The key a host's credentials are stored under in config.json. */
export function configKey(host: string): string {
  return host === DOCKER_HUB || host === DOCKER_HUB_API || host === 'index.docker.io' ? DOCKER_HUB_KEY : host;
}

/** `https://host:5000/v1/` -> `host:5000`; Docker Hub spellings -> `docker.io`. */
function keyHost(key: string): string {
  let h = key.replace(/^[a-z]+:\/\//i, '');
  h = h.split('/')[0];
  if (h === 'index.docker.io' || h === DOCKER_HUB_API) return DOCKER_HUB;
  return h.toLowerCase();
}

function hostOf(registry: string): string {
  return keyHost(registry);
}

interface AuthEntry { auth?: string; username?: string; password?: string; identitytoken?: string }
interface ConfigFile { auths?: Record<string, AuthEntry>; credHelpers?: Record<string, string>; credsStore?: string; [k: string]: unknown }

export interface AuthEnv {
  env?: NodeJS.ProcessEnv;
  home?: string;
}

export function dockerConfigPath(e: AuthEnv = {}): string {
  const env = e.env ?? process.env;
  const dir = env.DOCKER_CONFIG || path.join(e.home ?? os.homedir(), '.docker');
  return path.join(dir, 'config.json');
}

function authJsonPaths(e: AuthEnv = {}): string[] {
  const env = e.env ?? process.env;
  const out: string[] = [];
  if (env.REGISTRY_AUTH_FILE) out.push(env.REGISTRY_AUTH_FILE);
  if (env.XDG_RUNTIME_DIR) out.push(path.join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json'));
  out.push(path.join(e.home ?? os.homedir(), '.config', 'containers', 'auth.json'));
  return out;
}

/** Read a JSON config; undefined when absent. Invalid JSON is an error naming the file. */
function readConfig(file: string): ConfigFile | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new InvalidArgumentError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (!text.trim()) return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new InvalidArgumentError(`${file} is not valid JSON; fix or remove it`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new InvalidArgumentError(`${file} is not a JSON object`);
  return v as ConfigFile;
}

function entryFor(cfg: ConfigFile | undefined, host: string): AuthEntry | undefined {
  if (!cfg?.auths || typeof cfg.auths !== 'object') return undefined;
  for (const [k, v] of Object.entries(cfg.auths)) if (keyHost(k) === host && v && typeof v === 'object') return v;
  return undefined;
}

function decodeEntry(e: AuthEntry, file: string, host: string): Credentials | undefined {
  if (e.username && e.password) return { username: e.username, password: e.password, source: file };
  if (e.auth) {
    const s = Buffer.from(e.auth, 'base64').toString('utf8');
    const i = s.indexOf(':');
    if (i <= 0) throw new InvalidArgumentError(`${file}: the "auth" entry for ${host} is not base64 of user:password`);
    return { username: s.slice(0, i), password: s.slice(i + 1), source: file };
  }
  return undefined;
}

// node:child_process only when a credential helper runs (not on every registry request).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const childProcess = (): typeof ChildProcess => require('node:child_process') as typeof ChildProcess;

/** Run `docker-credential-NAME ACTION` with `input` on stdin. */
function credHelper(name: string, action: 'get' | 'store' | 'erase', input: string, e: AuthEnv): Promise<string> {
  if (!/^[A-Za-z0-9._-]+$/.test(name)) return Promise.reject(new InvalidArgumentError(`invalid credential helper name ${JSON.stringify(name)}`));
  return new Promise((resolve, reject) => {
    const child = childProcess().execFile(`docker-credential-${name}`, [action], { timeout: 30_000, maxBuffer: 1 << 20, env: e.env ?? process.env }, (err, stdout) => {
      if (err) {
        const out = String(stdout ?? '').trim();
        // Helpers answer "credentials not found in native keychain" for unknown hosts.
        if (action === 'get' && /not found/i.test(out)) return resolve('');
        return reject(new RegistryError(`credential helper docker-credential-${name} ${action} failed${(err as NodeJS.ErrnoException).code === 'ENOENT' ? ': not installed' : ''}`));
      }
      resolve(String(stdout));
    });
    child.stdin?.end(input);
  });
}

function helperFor(cfg: ConfigFile | undefined, host: string): string | undefined {
  if (!cfg) return undefined;
  if (cfg.credHelpers && typeof cfg.credHelpers === 'object') {
    for (const [k, v] of Object.entries(cfg.credHelpers)) if (keyHost(k) === host && typeof v === 'string') return v;
  }
  return typeof cfg.credsStore === 'string' && cfg.credsStore ? cfg.credsStore : undefined;
}

/** Credentials for a registry host (`docker.io`, `localhost:5000`), or undefined for anonymous. */
export async function findCredentials(registry: string, e: AuthEnv = {}): Promise<Credentials | undefined> {
  const host = hostOf(registry);
  const file = dockerConfigPath(e);
  const cfg = readConfig(file);
  const helper = helperFor(cfg, host);
  if (helper) {
    const out = await credHelper(helper, 'get', configKey(host), e);
    if (out.trim()) {
      try {
        const j = JSON.parse(out) as { Username?: string; Secret?: string };
        if (j.Username && j.Secret) return { username: j.Username, password: j.Secret, source: `docker-credential-${helper}` };
      } catch {
        throw new RegistryError(`credential helper docker-credential-${helper} gave an invalid answer for ${host}`);
      }
    }
  }
  const d = entryFor(cfg, host);
  const fromDocker = d && decodeEntry(d, file, host);
  if (fromDocker) return fromDocker;
  for (const f of authJsonPaths(e)) {
    const c = readConfig(f);
    const ent = entryFor(c, host);
    const got = ent && decodeEntry(ent, f, host);
    if (got) return got;
  }
  return undefined;
}

/** Write `data` to `file` atomically: temp in the same directory, 0600, fsync, rename. */
function writeAtomic(file: string, data: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  try {
    writeFileAtomic(file, data, 0o600);
  } catch (e) {
    throw new InvalidArgumentError(`cannot write ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

export interface StoredLogin {
  /** `config.json` path, or `docker-credential-NAME`. */
  where: string;
}

/** Store credentials for `registry` (through the configured helper, else in config.json). */
export async function storeCredentials(registry: string, username: string, password: string, e: AuthEnv = {}): Promise<StoredLogin> {
  if (!username || username.includes(':')) throw new InvalidArgumentError('username must be non-empty and must not contain ":"');
  const host = hostOf(registry);
  const file = dockerConfigPath(e);
  const cfg = readConfig(file) ?? {};
  const helper = helperFor(cfg, host);
  if (helper) {
    await credHelper(helper, 'store', JSON.stringify({ ServerURL: configKey(host), Username: username, Secret: password }), e);
    return { where: `docker-credential-${helper}` };
  }
  const auths: Record<string, AuthEntry> = cfg.auths && typeof cfg.auths === 'object' ? { ...cfg.auths } : {};
  // One entry per host: drop other spellings of the same host.
  for (const k of Object.keys(auths)) if (keyHost(k) === host) delete auths[k];
  auths[configKey(host)] = { auth: Buffer.from(`${username}:${password}`, 'utf8').toString('base64') };
  writeAtomic(file, JSON.stringify({ ...cfg, auths }, null, '\t') + '\n');
  return { where: file };
}

/** Remove stored credentials for `registry`. Returns false when there were none. */
export async function eraseCredentials(registry: string, e: AuthEnv = {}): Promise<{ removed: boolean; where: string }> {
  const host = hostOf(registry);
  const file = dockerConfigPath(e);
  const cfg = readConfig(file);
  const helper = helperFor(cfg, host);
  if (helper) {
    await credHelper(helper, 'erase', configKey(host), e);
    return { removed: true, where: `docker-credential-${helper}` };
  }
  if (!cfg?.auths) return { removed: false, where: file };
  const auths = { ...cfg.auths };
  let removed = false;
  for (const k of Object.keys(auths)) {
    if (keyHost(k) === host) {
      delete auths[k];
      removed = true;
    }
  }
  if (removed) writeAtomic(file, JSON.stringify({ ...cfg, auths }, null, '\t') + '\n');
  return { removed, where: file };
}

/** One `WWW-Authenticate` challenge. */
export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parse `WWW-Authenticate` (several challenges, quoted params with escapes). */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  if (!header) return [];
  const text = Array.isArray(header) ? header.join(', ') : header;
  const out: Challenge[] = [];
  const re = /\s*([A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*)(?:\s+|$)/y;
  let i = 0;
  while (i < text.length) {
    while (i < text.length && /[\s,]/.test(text[i])) i++;
    re.lastIndex = i;
    const m = re.exec(text);
    if (!m) break;
    const ch: Challenge = { scheme: m[1].toLowerCase(), params: {} };
    i = re.lastIndex;
    // params: key=value or key="quoted"
    for (;;) {
      const pm = /\s*([A-Za-z0-9_-]+)\s*=\s*/y;
      pm.lastIndex = i;
      const k = pm.exec(text);
      if (!k) break;
      let j = pm.lastIndex;
      let v = '';
      if (text[j] === '"') {
        j++;
        while (j < text.length && text[j] !== '"') {
          if (text[j] === '\\' && j + 1 < text.length) j++;
          v += text[j++];
        }
        j++;
      } else {
        while (j < text.length && text[j] !== ',') v += text[j++];
        v = v.trim();
      }
      ch.params[k[1].toLowerCase()] = v;
      i = j;
      while (i < text.length && /\s/.test(text[i])) i++;
      if (text[i] === ',') {
        // Next param, or the next challenge (a bare token followed by space or end).
        const look = /,\s*([A-Za-z0-9_-]+)\s*=/y;
        look.lastIndex = i;
        if (look.exec(text)) {
          i++;
          continue;
        }
        i++;
        break;
      }
      break;
    }
    out.push(ch);
  }
  return out;
}
