/**
 * The document validators (src/images/schema.ts): hostile shapes give one line naming the
 * document and the field; real-world liberties (unknown fields, no mediaType, Docker null
 * RepoTags, attestation configs without rootfs) pass.
 */
import {
  parseDocument, validateIndex, validateManifest, validateConfig, validateDockerManifestJson, validateOciLayout,
  validateDescriptor, fieldPath, MAX_JSON_DEPTH,
} from '../../../src/images/schema';
import { InvalidArchiveError } from '../../../src/errors';
import { MediaType } from '../../../src/images/mediatypes';

const D = 'sha256:' + 'a'.repeat(64);
const layer = { mediaType: MediaType.OCI_LAYER_GZIP, digest: D, size: 10 };
const manifest = { schemaVersion: 2, mediaType: MediaType.OCI_MANIFEST, config: { mediaType: MediaType.OCI_CONFIG, digest: D, size: 2 }, layers: [layer] };
const config = { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [D] } };

function err(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidArchiveError);
    const m = (e as Error).message;
    expect(m).not.toMatch(/\n|undefined/);
    return m;
  }
  throw new Error('expected a refusal');
}

describe('validators accept real documents', () => {
  it('liberal where real tools are', () => {
    expect(validateManifest({ ...manifest, mediaType: undefined, extra: { x: [1] } }, 'm')).toBeTruthy();
    expect(validateManifest({ config: manifest.config, layers: [] }, 'm')).toBeTruthy();
    expect(validateIndex({ schemaVersion: 2, manifests: [{ mediaType: 'application/x-artifact', digest: 'sha512:' + 'b'.repeat(128), size: 0 }, { mediaType: 'application/x-other', digest: 'blake3:' + 'c'.repeat(64), size: 1 }] }, 'i')).toBeTruthy();
    expect(validateIndex({ manifests: [{ ...layer, mediaType: MediaType.OCI_MANIFEST, platform: { os: 'linux', architecture: 'arm64', variant: 'v8', 'os.features': ['x'], features: ['y'] }, annotations: { a: 'b' }, urls: ['http://x'] }] }, 'i')).toBeTruthy();
    expect(validateConfig({ ...config, history: [{ created_by: 'x' }], config: null, 'os.version': '10.0' }, 'c')).toBeTruthy();
    expect(validateConfig({ architecture: 'unknown', os: 'unknown' }, 'c', { image: false })).toBeTruthy();
    expect(validateDockerManifestJson([{ Config: 'c.json', RepoTags: null, Layers: ['l.tar'] }, { Config: 'd.json', Layers: [], LayerSources: { [D]: layer } }])).toBeTruthy();
    expect(validateOciLayout({ imageLayoutVersion: '1.0.0', x: 1 })).toBeTruthy();
    expect(validateDescriptor(layer, 'd')).toBe(layer);
  });
});

describe('validators refuse hostile shapes with one line naming document and field', () => {
  const cases: Array<[string, () => unknown, string]> = [
    ['layer is a string', () => validateManifest({ ...manifest, layers: ['x'] }, 'manifest M'), 'manifest M: field layers[0]: must be an object, got string "x"'],
    ['size -1', () => validateManifest({ ...manifest, layers: [{ ...layer, size: -1 }] }, 'M'), 'M: field layers[0].size: must be >= 0, got number -1'],
    ['size 1.5', () => validateManifest({ ...manifest, layers: [{ ...layer, size: 1.5 }] }, 'M'), 'M: field layers[0].size: must be an integer, got number 1.5'],
    ['size "12"', () => validateManifest({ ...manifest, layers: [{ ...layer, size: '12' }] }, 'M'), 'M: field layers[0].size: must be an integer, got string "12"'],
    ['size 2^60', () => validateManifest({ ...manifest, layers: [{ ...layer, size: 2 ** 60 }] }, 'M'), `M: field layers[0].size: must be a safe integer (at most ${Number.MAX_SAFE_INTEGER}), got number ${2 ** 60}`],
    ['digest sha256:xyz', () => validateManifest({ ...manifest, layers: [{ ...layer, digest: 'sha256:xyz' }] }, 'M'), 'M: field layers[0].digest: must be a sha256 digest (sha256: and 64 lowercase hex digits), got string "sha256:xyz"'],
    ['config sha512', () => validateManifest({ ...manifest, config: { ...manifest.config, digest: 'sha512:' + 'b'.repeat(128) } }, 'M'), 'M: field config.digest: must be a sha256 digest'],
    ['no digest', () => validateManifest({ ...manifest, config: { mediaType: 'x', size: 1 } }, 'M'), 'M: field config.digest: is missing'],
    ['config = []', () => validateManifest({ ...manifest, config: [] }, 'M'), 'M: field config: must be an object, got array'],
    ['doc = []', () => validateManifest([], 'M'), 'M: must be a JSON object, got array'],
    ['doc = null', () => validateConfig(null, 'C'), 'C: must be a JSON object, got null'],
    ['architecture = {}', () => validateConfig({ ...config, architecture: {} }, 'C'), 'C: field architecture: must be a string, got object'],
    ['os.features', () => validateConfig({ ...config, 'os.features': [1] }, 'C'), 'C: field ["os.features"][0]: must be a string, got number 1'],
    ['rootfs missing', () => validateConfig({ os: 'linux' }, 'C'), 'C: field rootfs: is missing'],
    ['diff_ids entry', () => validateConfig({ ...config, rootfs: { diff_ids: [5] } }, 'C'), 'C: field rootfs.diff_ids[0]: must be a string, got number 5'],
    ['history entry', () => validateConfig({ ...config, history: ['x'] }, 'C'), 'C: field history[0]: must be an object, got string "x"'],
    ['manifests = {}', () => validateIndex({ manifests: {} }, 'index.json'), 'index.json: field manifests: must be an array, got object'],
    ['platform.os = {}', () => validateIndex({ manifests: [{ ...layer, platform: { os: {}, architecture: 'amd64' } }] }, 'index.json'), 'index.json: field manifests[0].platform.os: must be a string, got object'],
    ['platform without os', () => validateIndex({ manifests: [{ ...layer, platform: { architecture: 'amd64' } }] }, 'I'), 'I: field manifests[0].platform.os: is missing'],
    ['manifest entry with sha512', () => validateIndex({ manifests: [{ ...layer, mediaType: MediaType.OCI_MANIFEST, digest: 'sha512:' + 'b'.repeat(128) }] }, 'I'), 'I: field manifests[0].digest: must be a sha256 digest'],
    ['annotation value', () => validateIndex({ manifests: [{ ...layer, annotations: { 'org.opencontainers.image.ref.name': 1 } }] }, 'I'), 'I: field manifests[0].annotations["org.opencontainers.image.ref.name"]: must be a string, got number 1'],
    ['schemaVersion "2"', () => validateIndex({ schemaVersion: '2', manifests: [] }, 'I'), 'I: field schemaVersion: must be 2, got string "2"'],
    ['manifest.json object', () => validateDockerManifestJson({}), 'manifest.json: must be a JSON array, got object'],
    ['RepoTags string', () => validateDockerManifestJson([{ Config: 'c', RepoTags: 'a:1', Layers: [] }]), 'manifest.json: field [0].RepoTags: must be an array or null, got string "a:1"'],
    ['LayerSources value', () => validateDockerManifestJson([{ Config: 'c', Layers: [], LayerSources: { [D]: { digest: D } } }]), `manifest.json: field [0].LayerSources["${D}"].mediaType: is missing`],
    ['oci-layout version', () => validateOciLayout({ imageLayoutVersion: 1 }), 'oci-layout: field imageLayoutVersion: must be a string, got number 1'],
    ['long string truncated', () => validateConfig({ ...config, rootfs: { diff_ids: ['x'.repeat(500)] } }, 'C'), 'C: field rootfs.diff_ids[0]: must be a sha256 digest'],
  ];
  for (const [label, fn, msg] of cases) {
    it(label, () => {
      const m = err(fn);
      expect(m.startsWith(msg)).toBe(true);
      expect(m.length).toBeLessThan(400);
    });
  }
});

describe('parseDocument', () => {
  it('refuses deep nesting without recursion or a long parse, and names the document', () => {
    for (const n of [MAX_JSON_DEPTH + 1, 100_000, 5_000_000]) {
      const t = Date.now();
      expect(err(() => parseDocument(Buffer.from('['.repeat(n) + ']'.repeat(n)), 'index.json'))).toBe(`index.json: nested more than ${MAX_JSON_DEPTH} levels deep (arrays/objects); refusing it`);
      expect(Date.now() - t).toBeLessThan(2000);
    }
    expect(err(() => parseDocument('{"a":' + '{"a":'.repeat(100) + '1' + '}'.repeat(101), 'C'))).toMatch(/^C: nested more than/);
  });
  it('brackets inside strings do not count; MAX_JSON_DEPTH itself is fine', () => {
    expect(parseDocument(JSON.stringify({ s: '['.repeat(1000) + '\\"[' }), 'x')).toEqual({ s: '['.repeat(1000) + '\\"[' });
    const n = MAX_JSON_DEPTH;
    expect(parseDocument('['.repeat(n) + ']'.repeat(n), 'x')).toBeTruthy();
  });
  it('invalid JSON is one line', () => {
    expect(err(() => parseDocument('{"manifests":', 'index.json'))).toMatch(/^index\.json is not valid JSON: /);
  });
});

describe('fieldPath', () => {
  it('formats JSON pointers', () => {
    expect(fieldPath('/layers/0/digest')).toBe('layers[0].digest');
    expect(fieldPath('/0/RepoTags/1')).toBe('[0].RepoTags[1]');
    expect(fieldPath('/a~1b/c~0d')).toBe('["a/b"]["c~d"]');
    expect(fieldPath('', 'rootfs')).toBe('rootfs');
  });
});
