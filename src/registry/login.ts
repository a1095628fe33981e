/**
 * `imgtool login` / `logout`: check credentials against the registry (`GET /v2/`, answering its
 * challenge with them, as `docker login` does) before storing them (auth.ts: the configured
 * helper, else an atomic rewrite of config.json). The password is never printed.
 */
import { RegistryError } from '../errors';
import { parseReference } from '../reference';
import { AuthEnv, eraseCredentials, storeCredentials } from './auth';
import { ClientOptions, RegistryClient } from './client';
import { discard } from './http';

/** `REGISTRY` as typed (`localhost:5000`, `https://ghcr.io`, `docker.io`) -> the reference domain. */
export function registryDomain(input: string): string {
  const h = input.replace(/^[a-z]+:\/\//i, '').split('/')[0];
  return parseReference(`${h}/x`).domain;
}

export async function login(registry: string, username: string, password: string, opts: ClientOptions & AuthEnv = {}): Promise<{ registry: string; stored: string }> {
  const domain = registryDomain(registry);
  const client = new RegistryClient(domain, { ...opts, credentials: { username, password, source: 'the given credentials' } });
  try {
    const res = await client.request({ method: 'GET', path: '/v2/', scopes: [], what: `login ${domain}` });
    discard(res.body);
    if (res.status !== 200) await client.fail(res, `login ${domain}`);
  } catch (e) {
    if (e instanceof RegistryError && (e.status === 401 || e.status === 403)) {
      throw new RegistryError(`login ${domain}: the registry refused these credentials (${e.status}); nothing stored`, { status: e.status });
    }
    throw e;
  } finally {
    client.close();
  }
  const s = await storeCredentials(domain, username, password, opts);
  return { registry: domain, stored: s.where };
}

export async function logout(registry: string, opts: AuthEnv = {}): Promise<{ registry: string; removed: boolean; where: string }> {
  const domain = registryDomain(registry);
  const r = await eraseCredentials(domain, opts);
  return { registry: domain, ...r };
}
