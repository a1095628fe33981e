import { parseRegistryDoc, MAX_MANIFEST_SIZE } from '../../../src/registry/docs';
import { MediaType } from '../../../src/images/mediatypes';

const d = (o: object) => Buffer.from(JSON.stringify(o));
const desc = { mediaType: MediaType.OCI_LAYER_GZIP, digest: `sha256:${'a'.repeat(64)}`, size: 3 };

describe('registry documents', () => {
  it('refuses schema1 by content type and by schemaVersion, clearly', () => {
    expect(() => parseRegistryDoc(d({ schemaVersion: 1, fsLayers: [] }), 'application/vnd.docker.distribution.manifest.v1+prettyjws', 'manifest x:1')).toThrow(/manifest x:1: Docker schema1 manifests are not supported/);
    expect(() => parseRegistryDoc(d({ schemaVersion: 1 }), 'application/json', 'manifest x:1')).toThrow(/schema1/);
  });
  it('accepts an OCI manifest and a Docker list; the document media type must agree with the header', () => {
    const m = parseRegistryDoc(d({ schemaVersion: 2, mediaType: MediaType.OCI_MANIFEST, config: { ...desc, mediaType: MediaType.OCI_CONFIG }, layers: [desc] }), MediaType.OCI_MANIFEST, 'm');
    expect(m.kind).toBe('manifest');
    const l = parseRegistryDoc(d({ schemaVersion: 2, mediaType: MediaType.DOCKER_MANIFEST_LIST, manifests: [] }), MediaType.DOCKER_MANIFEST_LIST, 'l');
    expect(l.kind).toBe('index');
    expect(() => parseRegistryDoc(d({ schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: [] }), MediaType.OCI_MANIFEST, 'x')).toThrow(/served as .* but its mediaType is/);
  });
  it.each([
    [{ schemaVersion: 2, mediaType: MediaType.OCI_MANIFEST, config: { ...desc, digest: 'sha256:zz' }, layers: [] }, /invalid or unsupported digest/],
    [{ schemaVersion: 2, mediaType: MediaType.OCI_MANIFEST, config: desc, layers: [{ ...desc, size: -1 }] }, /layers\[0\]: invalid size/],
    [{ schemaVersion: 2, mediaType: MediaType.OCI_MANIFEST, config: desc }, /without a layers array/],
    [{ schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: [{ digest: desc.digest, size: 1 }] }, /descriptor without a mediaType/],
    [{ schemaVersion: 3 }, /schemaVersion 3/],
  ])('validates descriptors before use (%#)', (doc, re) => {
    expect(() => parseRegistryDoc(d(doc), undefined, 'doc')).toThrow(re);
  });
  it('the cap is distribution\'s 4 MiB', () => {
    expect(MAX_MANIFEST_SIZE).toBe(4 * 1024 * 1024);
  });
});
