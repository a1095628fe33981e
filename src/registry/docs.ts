/**
 * Registry documents: what pull and push accept, and how a fetched document is checked before
 * anything uses it. A manifest or index is at most 4 MiB (distribution's limit, refused on push
 * too); schema1 is refused with a clear message; every descriptor has a media type, a sha256
 * digest and a non-negative integer size.
 */
import { isDigest } from '../digest';
import { InvalidArchiveError, InvalidArgumentError } from '../errors';
import { MediaType, isIndexType, isManifestType } from '../images/mediatypes';
import { Descriptor, Index, Manifest } from '../images/types';

/** distribution refuses manifests over 4 MiB; imgtool never reads more. */
export const MAX_MANIFEST_SIZE = 4 * 1024 * 1024;

export const MANIFEST_ACCEPT = [MediaType.OCI_INDEX, MediaType.OCI_MANIFEST, MediaType.DOCKER_MANIFEST_LIST, MediaType.DOCKER_MANIFEST].join(', ');

const SCHEMA1 = new Set([
  'application/vnd.docker.distribution.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v1+prettyjws',
]);

export type RegistryDoc = { kind: 'index'; mediaType: string; doc: Index } | { kind: 'manifest'; mediaType: string; doc: Manifest };

function checkDescriptor(d: unknown, what: string): asserts d is Descriptor {
  const x = d as Descriptor;
  if (!x || typeof x !== 'object') throw new InvalidArchiveError(`${what}: not a descriptor`);
  if (typeof x.mediaType !== 'string' || !x.mediaType) throw new InvalidArchiveError(`${what}: descriptor without a mediaType`);
  if (typeof x.digest !== 'string' || !isDigest(x.digest)) throw new InvalidArchiveError(`${what}: invalid or unsupported digest ${JSON.stringify(String(x.digest)).slice(0, 90)}`);
  if (typeof x.size !== 'number' || !Number.isSafeInteger(x.size) || x.size < 0) throw new InvalidArchiveError(`${what}: invalid size for ${x.digest}`);
}

/** Parse and validate a manifest or index fetched as `contentType` (header). */
export function parseRegistryDoc(bytes: Buffer, contentType: string | undefined, what: string): RegistryDoc {
  const ct = (contentType ?? '').split(';')[0].trim();
  if (SCHEMA1.has(ct)) throw new InvalidArgumentError(`${what}: Docker schema1 manifests are not supported (deprecated since 2017); push the image again with a current client`);
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new InvalidArchiveError(`${what}: not valid JSON`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new InvalidArchiveError(`${what}: not a JSON object`);
  if (v.schemaVersion === 1) throw new InvalidArgumentError(`${what}: Docker schema1 manifests are not supported (deprecated since 2017); push the image again with a current client`);
  if (v.schemaVersion !== 2) throw new InvalidArchiveError(`${what}: schemaVersion ${JSON.stringify(v.schemaVersion)} (expected 2)`);
  const declared = typeof v.mediaType === 'string' ? v.mediaType : undefined;
  const known = (t: string | undefined) => isIndexType(t) || isManifestType(t);
  if (declared && known(ct) && declared !== ct) throw new InvalidArchiveError(`${what}: served as ${ct} but its mediaType is ${declared}`);
  let mt = declared ?? (known(ct) ? ct : undefined);
  if (!mt) mt = Array.isArray(v.manifests) ? MediaType.OCI_INDEX : v.config ? MediaType.OCI_MANIFEST : undefined;
  if (isIndexType(mt)) {
    if (!Array.isArray(v.manifests)) throw new InvalidArchiveError(`${what}: index without a manifests array`);
    v.manifests.forEach((m, i) => checkDescriptor(m, `${what}: manifests[${i}]`));
    return { kind: 'index', mediaType: mt!, doc: v as unknown as Index };
  }
  if (isManifestType(mt)) {
    checkDescriptor(v.config, `${what}: config`);
    if (!Array.isArray(v.layers)) throw new InvalidArchiveError(`${what}: manifest without a layers array`);
    v.layers.forEach((l, i) => checkDescriptor(l, `${what}: layers[${i}]`));
    return { kind: 'manifest', mediaType: mt!, doc: v as unknown as Manifest };
  }
  throw new InvalidArchiveError(`${what}: unsupported media type ${JSON.stringify(mt ?? ct)}`);
}
