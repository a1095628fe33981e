/**
 * Schema checks at every trust boundary. Every JSON document imgtool reads from an archive,
 * a registry or the store — image index, manifest, config, Docker `manifest.json`,
 * `oci-layout` — goes through `parseDocument` (JSON with a bounded nesting depth) and then
 * one of the validators here before anything uses it. Each validator returns the typed
 * value or throws one `InvalidArchiveError` line: `<what>: field <json path>: <problem>`,
 * e.g. `manifest sha256:…: field layers[1].size: must be an integer, got string "12"`.
 *
 * The shapes are JSON Schemas written from the OCI image-spec (and Docker's `manifest.json`),
 * checked by ajv, and liberal where real tools are: unknown fields are allowed, a manifest's
 * `mediaType` and `schemaVersion` are optional (2 when present), digests are
 * `algorithm:hex` (sha256 with 64 lowercase hex digits wherever imgtool hashes the blob:
 * config, layers, index entries that are manifests or indexes, diffIDs), sizes are safe
 * non-negative integers, platform fields are strings. Every field imgtool uses is typed.
 *
 * ajv is loaded and the schemas are compiled on first use, not at module load (the CLI
 * starts without paying for it: commands that read no document never load ajv).
 */
import type { ErrorObject, ValidateFunction } from 'ajv';
import { InvalidArchiveError } from '../errors';
import { Descriptor, DockerManifestEntry, ImageConfig, Index, Manifest, OciLayout } from './types';
import { MediaType } from './mediatypes';

/** Deepest nesting of arrays/objects a document may have (real documents stay under 10). */
export const MAX_JSON_DEPTH = 64;

/** Most indexes in a chain root → … → manifest (the GC marker, more liberal, refuses > 16). */
export const MAX_INDEX_NESTING = 8;

/**
 * Parse a JSON document named `what` in messages. Its nesting depth is checked on the bytes
 * first (iteratively: no recursion, no stack), so a 10-million-deep `[[[…]]]` is refused in
 * one linear pass instead of being built (JSON.parse of it takes seconds, and any later
 * recursive use such as JSON.stringify would overflow the stack).
 */
export function parseDocument(bytes: Buffer | string, what: string): unknown {
  const buf = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes;
  checkDepth(buf, what);
  try {
    return JSON.parse(buf.toString('utf8'));
  } catch (e) {
    const msg = e instanceof RangeError ? `nested too deeply` : (e as Error).message;
    throw new InvalidArchiveError(`${what} is not valid JSON: ${msg}`);
  }
}

/** Refuse documents nested deeper than MAX_JSON_DEPTH. Structural bytes are ASCII, so UTF-8 needs no decoding. */
function checkDepth(buf: Buffer, what: string): void {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i];
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      if (++depth > MAX_JSON_DEPTH) throw new InvalidArchiveError(`${what}: nested more than ${MAX_JSON_DEPTH} levels deep (arrays/objects); refusing it`);
    } else if (c === 0x5d /* ] */ || c === 0x7d /* } */) depth--;
  }
}

// ---------------------------------------------------------------------------------------
// Schemas (JSON Schema draft-07, from the OCI image-spec's schema/*.json, trimmed to the
// fields imgtool uses and made liberal where real tools are).

const ref = (name: DefName) => ({ $ref: `imgtool#/definitions/${name}` });
const STRING = { type: 'string' };

function descriptor(digest: DefName): Record<string, unknown> {
  return {
    type: 'object',
    required: ['mediaType', 'digest', 'size'],
    properties: {
      mediaType: STRING, digest: ref(digest), size: ref('size'), urls: ref('strings'), annotations: ref('stringMap'),
      platform: ref('platform'), artifactType: STRING, data: STRING,
    },
  };
}

const CONFIG_PROPERTIES = {
  architecture: STRING, os: STRING, variant: STRING, 'os.version': STRING, 'os.features': { $ref: 'imgtool#/definitions/strings' },
  created: STRING, author: STRING,
  config: { type: ['object', 'null'] },
  rootfs: { type: 'object', required: ['diff_ids'], properties: { type: STRING, diff_ids: { type: 'array', items: { $ref: 'imgtool#/definitions/sha256' } } } },
  history: { type: 'array', items: { type: 'object' } },
};

const DEFINITIONS = {
  sha256: { type: 'string', pattern: '^sha256:[a-f0-9]{64}$', description: 'a sha256 digest (sha256: and 64 lowercase hex digits)' },
  digest: {
    type: 'string',
    // image-spec descriptor.md: algorithm ":" encoded; the registered algorithms have fixed lengths.
    pattern: '^(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128}|(?!sha256:|sha512:)[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+)$',
    description: 'a digest (algorithm:hex; sha256 with 64 lowercase hex digits)',
  },
  size: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
  strings: { type: 'array', items: STRING },
  stringMap: { type: 'object', additionalProperties: STRING },
  platform: {
    type: 'object',
    required: ['architecture', 'os'],
    properties: { architecture: STRING, os: STRING, 'os.version': STRING, 'os.features': { $ref: 'imgtool#/definitions/strings' }, variant: STRING, features: { $ref: 'imgtool#/definitions/strings' } },
  },
  /** Any content descriptor (any registered digest algorithm). */
  descriptor: descriptor('digest'),
  /** A blob imgtool stores and hashes (config, layer): sha256. */
  blobDescriptor: descriptor('sha256'),
  /** An index entry: any digest, but sha256 when imgtool reads it (a manifest or an index). */
  indexEntry: {
    ...descriptor('digest'),
    if: { properties: { mediaType: { enum: [MediaType.OCI_INDEX, MediaType.DOCKER_MANIFEST_LIST, MediaType.OCI_MANIFEST, MediaType.DOCKER_MANIFEST] } }, required: ['mediaType'] },
    then: { properties: { digest: { $ref: 'imgtool#/definitions/sha256' } } },
  },
  index: {
    type: 'object',
    required: ['manifests'],
    properties: {
      schemaVersion: { const: 2 }, mediaType: STRING, manifests: { type: 'array', items: { $ref: 'imgtool#/definitions/indexEntry' } },
      annotations: { $ref: 'imgtool#/definitions/stringMap' }, subject: { $ref: 'imgtool#/definitions/descriptor' }, artifactType: STRING,
    },
  },
  manifest: {
    type: 'object',
    required: ['config', 'layers'],
    properties: {
      schemaVersion: { const: 2 }, mediaType: STRING, config: { $ref: 'imgtool#/definitions/blobDescriptor' },
      layers: { type: 'array', items: { $ref: 'imgtool#/definitions/blobDescriptor' } },
      annotations: { $ref: 'imgtool#/definitions/stringMap' }, subject: { $ref: 'imgtool#/definitions/descriptor' }, artifactType: STRING,
    },
  },
  /** An image config: rootfs is required. */
  imageConfig: { type: 'object', required: ['rootfs'], properties: CONFIG_PROPERTIES },
  /** The config of a non-image artifact (attestation): rootfs may be absent. */
  artifactConfig: { type: 'object', properties: CONFIG_PROPERTIES },
  dockerManifestJson: {
    type: 'array',
    items: {
      type: 'object',
      required: ['Config', 'Layers'],
      properties: {
        Config: STRING, RepoTags: { type: ['array', 'null'], items: STRING }, Layers: { $ref: 'imgtool#/definitions/strings' }, Parent: STRING,
        LayerSources: { type: 'object', additionalProperties: { $ref: 'imgtool#/definitions/descriptor' } },
      },
    },
  },
  ociLayout: { type: 'object', required: ['imageLayoutVersion'], properties: { imageLayoutVersion: STRING } },
};
type DefName = 'sha256' | 'digest' | 'size' | 'strings' | 'stringMap' | 'platform' | 'descriptor' | 'blobDescriptor' | 'indexEntry';
type SchemaName = 'index' | 'manifest' | 'imageConfig' | 'artifactConfig' | 'dockerManifestJson' | 'ociLayout' | 'descriptor';

// ---------------------------------------------------------------------------------------
// Compilation: at build time, not at run time. `npm run build` runs
// scripts/gen-schema-validators.js, which compiles these schemas with ajv's standalone code
// generator into dist/src/images/schema-validators.js: the CLI then validates without
// loading or running ajv's compiler (that costs ~0.3 s). When that file is absent (ts-jest
// running src/ directly), the schemas are compiled with ajv on first use.

/** Ajv options (shared by the build-time generator): first error only, with its data and schema for the message. */
export const AJV_OPTIONS = { allErrors: false, verbose: true, strict: true, allowUnionTypes: true } as const;
/** The schema document every validator is a definition of. */
export const SCHEMA_ROOT = { $id: 'imgtool', definitions: DEFINITIONS };
export const SCHEMA_NAMES: readonly SchemaName[] = ['index', 'manifest', 'imageConfig', 'artifactConfig', 'dockerManifestJson', 'ociLayout', 'descriptor'];

let validators: Partial<Record<SchemaName, ValidateFunction>> | undefined;

function validator(name: SchemaName): ValidateFunction {
  if (!validators) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      validators = require('./schema-validators') as Record<SchemaName, ValidateFunction>;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw e;
      validators = {};
    }
  }
  let v = validators[name];
  if (!v) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const Ajv = (require('ajv') as typeof import('ajv')).default;
    const ajv = new Ajv(AJV_OPTIONS);
    ajv.addSchema(SCHEMA_ROOT);
    for (const n of SCHEMA_NAMES) validators[n] = ajv.getSchema(`imgtool#/definitions/${n}`)!;
    v = validators[name]!;
  }
  return v;
}

function check<T>(name: SchemaName, doc: unknown, what: string): T {
  const v = validator(name);
  if (v(doc)) return doc as T;
  throw new InvalidArchiveError(formatError(what, v.errors ?? []));
}

// ---------------------------------------------------------------------------------------
// Messages: one line naming the document, the field and what is wrong.

/** JSON pointer `/layers/0/annotations/a.b` → `layers[0].annotations["a.b"]`. */
export function fieldPath(pointer: string, extra?: string): string {
  const segs = pointer === '' ? [] : pointer.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (extra !== undefined) segs.push(extra);
  let out = '';
  for (const s of segs) {
    if (/^\d+$/.test(s)) out += `[${s}]`;
    else if (/^[A-Za-z_$][\w$]*$/.test(s)) out += out ? `.${s}` : s;
    else out += `[${JSON.stringify(s)}]`;
  }
  return out;
}

/** A short, safe description of a value: its JSON type, and primitives' values (truncated). */
export function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'string') return `string ${JSON.stringify(v.length > 80 ? v.slice(0, 80) + '…' : v)}`;
  if (typeof v === 'number' || typeof v === 'boolean') return `${typeof v} ${String(v)}`;
  return typeof v;
}

function article(t: string): string {
  if (t === 'null') return t;
  return /^[aeiou]/.test(t) ? `an ${t}` : `a ${t}`;
}

function typeNames(t: unknown, root: boolean): string {
  const names = (Array.isArray(t) ? t : [t]).map(String).map((n) => (root && (n === 'object' || n === 'array') ? `JSON ${n}` : n));
  return names.map(article).join(' or ');
}

function formatError(what: string, errors: ErrorObject[]): string {
  // With if/then, ajv reports the inner failure first and the `if` wrapper after it.
  const e = errors.find((x) => x.keyword !== 'if') ?? errors[0];
  if (!e) return `${what}: does not match its schema`;
  const p = e.params as Record<string, unknown>;
  const got = describeValue(e.data);
  let path = fieldPath(e.instancePath);
  let problem: string;
  switch (e.keyword) {
    case 'type':
      problem = `must be ${typeNames(p.type, path === '')}, got ${got}`;
      break;
    case 'required':
      path = fieldPath(e.instancePath, String(p.missingProperty));
      problem = 'is missing';
      break;
    case 'minimum':
      problem = `must be >= ${p.limit}, got ${got}`;
      break;
    case 'maximum':
      problem = p.limit === Number.MAX_SAFE_INTEGER ? `must be a safe integer (at most ${Number.MAX_SAFE_INTEGER}), got ${got}` : `must be <= ${p.limit}, got ${got}`;
      break;
    case 'pattern': {
      const desc = (e.parentSchema as { description?: string } | undefined)?.description;
      problem = `must be ${desc ?? `a string matching ${p.pattern}`}, got ${got}`;
      break;
    }
    case 'const':
      problem = `must be ${JSON.stringify(p.allowedValue)}, got ${got}`;
      break;
    default:
      problem = `${e.message ?? 'is invalid'}, got ${got}`;
  }
  return path ? `${what}: field ${path}: ${problem}` : `${what}: ${problem}`;
}

// ---------------------------------------------------------------------------------------
// Validators.

/** An OCI image index or Docker manifest list. */
export function validateIndex(doc: unknown, what: string): Index {
  return check<Index>('index', doc, what);
}

/** An OCI image manifest or Docker schema2 manifest. */
export function validateManifest(doc: unknown, what: string): Manifest {
  return check<Manifest>('manifest', doc, what);
}

/** An image config; `image: false` for a non-image artifact's config (rootfs may be absent). */
export function validateConfig(doc: unknown, what: string, opts: { image?: boolean } = {}): ImageConfig {
  return check<ImageConfig>(opts.image === false ? 'artifactConfig' : 'imageConfig', doc, what);
}

/** Docker `manifest.json`: `[{Config, RepoTags, Layers, LayerSources?}]`. */
export function validateDockerManifestJson(doc: unknown, what = 'manifest.json'): DockerManifestEntry[] {
  return check<DockerManifestEntry[]>('dockerManifestJson', doc, what);
}

/** The `oci-layout` file (its version is checked by the caller). */
export function validateOciLayout(doc: unknown, what = 'oci-layout'): OciLayout {
  return check<OciLayout>('ociLayout', doc, what);
}

/** A content descriptor (any registered digest algorithm). */
export function validateDescriptor(doc: unknown, what: string): Descriptor {
  return check<Descriptor>('descriptor', doc, what);
}
