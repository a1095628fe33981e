import { parsePlatform, formatPlatform } from '../../src';
import { comparePlatforms, exactMatcher, normalizePlatform, isUnknownPlatform } from '../../src/platform';

describe('platforms', () => {
  it('parses and normalises', () => {
    expect(formatPlatform(parsePlatform('linux/amd64'))).toBe('linux/amd64');
    expect(formatPlatform(parsePlatform('linux/arm64/v8'))).toBe('linux/arm64');
    expect(formatPlatform(parsePlatform('linux/arm'))).toBe('linux/arm/v7');
    expect(formatPlatform(normalizePlatform({ os: 'linux', architecture: 'x86_64' }))).toBe('linux/amd64');
    expect(() => parsePlatform('linux')).toThrow(/os\/arch/);
    expect(() => parsePlatform('linux/amd64/v1/x')).toThrow();
  });

  it('matches exactly after normalisation', () => {
    const m = exactMatcher([parsePlatform('linux/arm64/v8')]);
    expect(m.matches({ os: 'linux', architecture: 'arm64' })).toBe(true);
    expect(m.matches({ os: 'linux', architecture: 'amd64' })).toBe(false);
  });

  it('orders the host platform first, then lexicographically', () => {
    const host = parsePlatform('linux/arm64');
    const ps = ['linux/s390x', 'linux/amd64', 'linux/arm64', 'linux/arm/v7'].map(parsePlatform);
    ps.sort((a, b) => comparePlatforms(a, b, host));
    expect(ps.map(formatPlatform)).toEqual(['linux/arm64', 'linux/amd64', 'linux/arm/v7', 'linux/s390x']);
  });

  it('unknown/unknown is an attestation marker', () => {
    expect(isUnknownPlatform({ os: 'unknown', architecture: 'unknown' })).toBe(true);
    expect(isUnknownPlatform({ os: 'linux', architecture: 'amd64' })).toBe(false);
  });
});
