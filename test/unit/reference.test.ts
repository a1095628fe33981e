import { normalizeReference, familiarName, parseReference } from '../../src';
import { familiarRepository, isFullReference } from '../../src/reference';

describe('reference normalisation (Docker rules)', () => {
  it.each([
    ['busybox', 'docker.io/library/busybox:latest'],
    ['busybox:1.36', 'docker.io/library/busybox:1.36'],
    ['library/busybox', 'docker.io/library/busybox:latest'],
    ['docker.io/busybox', 'docker.io/library/busybox:latest'],
    ['index.docker.io/library/busybox:1', 'docker.io/library/busybox:1'],
    ['foo/bar', 'docker.io/foo/bar:latest'],
    ['localhost/x', 'localhost/x:latest'],
    ['localhost:5000/x/y:tag', 'localhost:5000/x/y:tag'],
    ['quay.io/org/app:v1.2', 'quay.io/org/app:v1.2'],
    [`x@sha256:${'a'.repeat(64)}`, `docker.io/library/x@sha256:${'a'.repeat(64)}`],
    [`x:1@sha256:${'b'.repeat(64)}`, `docker.io/library/x:1@sha256:${'b'.repeat(64)}`],
  ])('%s -> %s', (input, want) => {
    expect(normalizeReference(input)).toBe(want);
  });

  it.each(['', 'foo/UPPER', 'a//b', 'x@sha256:short', 'x:bad tag', ':tag', 'x:-bad'])('rejects %j', (bad) => {
    expect(() => parseReference(bad)).toThrow();
  });

  it('familiar forms', () => {
    expect(familiarName('docker.io/library/busybox:latest')).toBe('busybox:latest');
    expect(familiarName('docker.io/foo/bar:1')).toBe('foo/bar:1');
    expect(familiarName('quay.io/a/b:2')).toBe('quay.io/a/b:2');
    expect(familiarRepository('busybox:1')).toBe('busybox');
    expect(familiarRepository('localhost:5000/x:1')).toBe('localhost:5000/x');
  });

  it('a bare tag is not a full reference', () => {
    expect(isFullReference('latest')).toBe(false);
    expect(isFullReference('v1.0')).toBe(false);
    expect(isFullReference('busybox:latest')).toBe(true);
    expect(isFullReference('docker.io/library/busybox:latest')).toBe(true);
  });
});
