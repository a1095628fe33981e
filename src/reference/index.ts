import { InvalidArgumentError } from '../errors';
import { isDigest } from '../digest';

/**
 * Docker-style image references, normalised the way Docker and containerd do:
 * `busybox` -> `docker.io/library/busybox:latest`.
 */
export interface Reference {
  /** Registry host (with port), e.g. `docker.io`, `localhost:5000`. */
  domain: string;
  /** Repository path, e.g. `library/busybox`. */
  path: string;
  tag?: string;
  digest?: string;
}

export const DEFAULT_DOMAIN = 'docker.io';
const LEGACY_DOMAIN = 'index.docker.io';
const OFFICIAL_PREFIX = 'library/';

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*(?::[0-9]+)?$|^\[[a-fA-F0-9:]+\](?::[0-9]+)?$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const MAX_NAME = 255;

/** Parse and normalise a reference. Throws InvalidArgumentError on bad input. */
export function parseReference(input: string): Reference {
  const s = input.trim();
  if (!s) throw new InvalidArgumentError('empty image reference');
  let rest = s;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!isDigest(digest)) throw new InvalidArgumentError(`invalid reference ${JSON.stringify(input)}: bad digest`);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw new InvalidArgumentError(`invalid reference ${JSON.stringify(input)}: bad tag`);
  }
  let domain: string;
  let path: string;
  const slash = rest.indexOf('/');
  const first = slash < 0 ? '' : rest.slice(0, slash);
  if (slash >= 0 && (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase())) {
    domain = first;
    path = rest.slice(slash + 1);
  } else {
    domain = DEFAULT_DOMAIN;
    path = rest;
  }
  if (domain === LEGACY_DOMAIN) domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !path.includes('/')) path = OFFICIAL_PREFIX + path;
  if (!DOMAIN.test(domain)) throw new InvalidArgumentError(`invalid reference ${JSON.stringify(input)}: bad registry host`);
  if (!path || path.split('/').some((c) => !PATH_COMPONENT.test(c))) {
    throw new InvalidArgumentError(`invalid reference ${JSON.stringify(input)}: repository name must be lowercase [a-z0-9._-/]`);
  }
  if (domain.length + 1 + path.length > MAX_NAME) throw new InvalidArgumentError(`invalid reference ${JSON.stringify(input)}: name too long`);
  if (!tag && !digest) tag = 'latest';
  return { domain, path, tag, digest };
}

/** Repository name without tag or digest: `docker.io/library/busybox`. */
export function repositoryName(ref: Reference): string {
  return `${ref.domain}/${ref.path}`;
}

/** Full normalised string: `docker.io/library/busybox:latest`, `x@sha256:…`, `x:t@sha256:…`. */
export function formatReference(ref: Reference): string {
  let s = repositoryName(ref);
  if (ref.tag) s += `:${ref.tag}`;
  if (ref.digest) s += `@${ref.digest}`;
  return s;
}

/** `normalizeReference('busybox')` -> `docker.io/library/busybox:latest`. */
export function normalizeReference(input: string): string {
  return formatReference(parseReference(input));
}

/** Docker's familiar form: `docker.io/library/busybox:latest` -> `busybox:latest`. */
export function familiarName(input: string): string {
  const ref = parseReference(input);
  let repo = repositoryName(ref);
  if (ref.domain === DEFAULT_DOMAIN) {
    repo = ref.path.startsWith(OFFICIAL_PREFIX) ? ref.path.slice(OFFICIAL_PREFIX.length) : ref.path;
  }
  let s = repo;
  if (ref.tag) s += `:${ref.tag}`;
  if (ref.digest) s += `@${ref.digest}`;
  return s;
}

/** Familiar repository without tag: `busybox`, `foo/bar`, `localhost:5000/x`. */
export function familiarRepository(input: string): string {
  const ref = parseReference(input);
  if (ref.domain === DEFAULT_DOMAIN) {
    return ref.path.startsWith(OFFICIAL_PREFIX) ? ref.path.slice(OFFICIAL_PREFIX.length) : ref.path;
  }
  return repositoryName(ref);
}

/** True when `s` parses as a reference that names a repository (not a bare tag like `v1`). */
export function isFullReference(s: string): boolean {
  // A bare tag such as `latest` or `1.0` would normalise to docker.io/library/latest:latest;
  // only strings that carry a path separator or an explicit tag/digest count as full names.
  if (!s.includes('/') && !s.includes(':') && !s.includes('@')) return false;
  try {
    parseReference(s);
    return true;
  } catch {
    return false;
  }
}

/** Validate a bare tag (as found in `org.opencontainers.image.ref.name`). */
export function isTag(s: string): boolean {
  return TAG.test(s);
}
