import { namesForImage, defaultDigestBase, checkBaseName } from '../../../src/archive/naming';

const D = 'sha256:' + 'ab'.repeat(32);
const CN = 'io.containerd.image.name';
const RN = 'org.opencontainers.image.ref.name';

describe('naming on load', () => {
  it('io.containerd.image.name comes first, normalised', () => {
    expect(namesForImage({ digest: D, annotations: { [CN]: 'busybox', [RN]: 'quay.io/other:1' } }).names).toEqual(['docker.io/library/busybox:latest']);
  });

  it('ref.name when it is a full reference', () => {
    expect(namesForImage({ digest: D, annotations: { [RN]: 'quay.io/a/b:2' } }).names).toEqual(['quay.io/a/b:2']);
    expect(namesForImage({ digest: D, annotations: { [RN]: 'nginx:1.25' } }).names).toEqual(['docker.io/library/nginx:1.25']);
  });

  it('a bare-tag ref.name needs --base-name; never docker.io/library/<tag>', () => {
    const r = namesForImage({ digest: D, annotations: { [RN]: 'latest' } });
    expect(r.names).toEqual([]);
    expect(r.warnings.join()).toMatch(/only a tag .*--base-name.*skipped/);
    expect(namesForImage({ digest: D, annotations: { [RN]: 'v1.2' } }, { baseName: 'registry.local:5000/team/app' }).names).toEqual(['registry.local:5000/team/app:v1.2']);
    expect(namesForImage({ digest: D, annotations: { [RN]: '1.0' } }, { baseName: 'app' }).names).toEqual(['docker.io/library/app:1.0']);
  });

  it('Docker RepoTags, all of them, normalised; invalid ones warned', () => {
    const r = namesForImage({ digest: D, repoTags: ['alpine:3', 'example.com/x:y', 'Bad Tag'] });
    expect(r.names).toEqual(['docker.io/library/alpine:3', 'example.com/x:y']);
    expect(r.warnings.join()).toMatch(/invalid RepoTag "Bad Tag"/);
  });

  it('annotations win over RepoTags', () => {
    expect(namesForImage({ digest: D, annotations: { [CN]: 'x.io/a:1' }, repoTags: ['b:2'] }).names).toEqual(['x.io/a:1']);
  });

  it('--digests adds NAME@DIGEST per repository, or BASE@DIGEST', () => {
    expect(namesForImage({ digest: D, repoTags: ['alpine:3', 'alpine:latest'] }, { digests: true }).names).toEqual([
      'docker.io/library/alpine:3', 'docker.io/library/alpine:latest', `docker.io/library/alpine@${D}`,
    ]);
    expect(namesForImage({ digest: D }, { digests: true, date: new Date(2025, 11, 31) }).names).toEqual([`docker.io/library/import-2025-12-31@${D}`]);
    expect(namesForImage({ digest: D }, { digests: true, baseName: 'x.io/base' }).names).toEqual([`x.io/base@${D}`]);
  });

  it('no usable name and no --digests: skipped with a warning', () => {
    const r = namesForImage({ digest: D, annotations: {} });
    expect(r.names).toEqual([]);
    expect(r.warnings).toEqual([`image ${D} has no usable name; skipped (use --digests to load it by digest)`]);
    expect(namesForImage({ digest: D, annotations: { [CN]: 'NOT VALID' } }).warnings[0]).toMatch(/invalid io.containerd.image.name/);
  });

  it('default digest base and base-name validation', () => {
    expect(defaultDigestBase(new Date(2024, 1, 3))).toBe('import-2024-02-03');
    expect(checkBaseName('localhost:5000/x')).toBe('localhost:5000/x');
    expect(() => checkBaseName('x:1')).toThrow(/without tag or digest/);
    expect(() => checkBaseName('UPPER')).toThrow(/--base-name/);
  });
});
