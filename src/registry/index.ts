/**
 * registry: pull and push over the OCI distribution API (issue 13).
 *  - `http.ts`    transport: node:http/https, keep-alive, own redirects, bounded retries
 *  - `auth.ts`    credentials (helpers, config.json, auth.json), login/logout, WWW-Authenticate
 *  - `client.ts`  one registry host: scheme choice, Basic/Bearer auth, error lines
 *  - `docs.ts`    accepted media types, 4 MiB cap, document validation
 *  - `pull.ts`, `push.ts`, `login.ts`  the commands' library calls
 *  - `sources.ts` blob_sources: where blobs live, for cross-repository mounts
 */
export { pullImages } from './pull';
export type { PullOptions, PullResult, PulledImage } from './pull';
export { RegistryClient, isLoopback } from './client';
export type { ClientOptions } from './client';
export { findCredentials, storeCredentials, eraseCredentials, parseChallenges, dockerConfigPath, apiHost, configKey } from './auth';
export type { Credentials, Challenge, AuthEnv } from './auth';
export { MAX_MANIFEST_SIZE, MANIFEST_ACCEPT, parseRegistryDoc } from './docs';
export { pushImage, PUSH_COMPRESSIONS } from './push';
export type { PushOptions, PushResult, PushCompression } from './push';
export { login, logout, registryDomain } from './login';
