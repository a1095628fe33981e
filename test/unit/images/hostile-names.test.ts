/**
 * Strings from documents used as lookup keys: "constructor", "__proto__", "toString" are
 * names like any other, never Object.prototype members (a layer media type "constructor"
 * was a layer type with a function for its compression; an architecture "constructor"
 * became Object).
 */
import { isLayerType, layerCompression, isKnownMediaType } from '../../../src/images/mediatypes';
import { normalizePlatform, formatPlatform, parsePlatform } from '../../../src/platform';
import { InvalidArgumentError } from '../../../src/errors';
import type { Platform } from '../../../src/platform';

const NAMES = ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf'];

describe('prototype names from documents', () => {
  it('are not layer media types', () => {
    for (const n of NAMES) {
      expect(isLayerType(n)).toBe(false);
      expect(layerCompression(n)).toBeUndefined();
      expect(isKnownMediaType(n)).toBe(false);
    }
  });
  it('are architectures like any other', () => {
    for (const n of NAMES) {
      const p = normalizePlatform({ os: 'linux', architecture: n });
      expect(p.architecture).toBe(n.toLowerCase());
      expect(formatPlatform({ os: 'linux', architecture: n })).toBe(`linux/${n.toLowerCase()}`);
    }
    expect(parsePlatform('linux/constructor').architecture).toBe('constructor');
  });
  it('a non-string platform field is a clear error, not "toLowerCase is not a function"', () => {
    for (const bad of [{ os: {}, architecture: 'amd64' }, { os: 'linux', architecture: 5 }, { os: 'linux', architecture: 'arm', variant: [] }]) {
      let err: unknown;
      try {
        normalizePlatform(bad as unknown as Platform);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(InvalidArgumentError);
      expect((err as Error).message).toMatch(/^invalid platform: (os|architecture|variant) must be a string, got (object|number|array)$/);
    }
  });
});
