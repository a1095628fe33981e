// Not a test of imgtool: run by test/unit/helpers/summary-reporter.test.ts in a child jest, with
// a PATH on which no peer exists, to check how the closing summary line counts peer skips.
import { requirePeer } from '../helpers/peers';

const HAVE = () => requirePeer('skopeo');

describe('sample', () => {
  it('needs skopeo (checked in the test)', () => {
    if (!requirePeer('skopeo')) return;
    expect(1).toBe(1);
  });
  it('needs skopeo (module-level check)', () => {
    if (!HAVE()) return;
    expect(1).toBe(1);
  });
  it('needs nothing', () => {
    expect(1).toBe(1);
  });
  it.skip('is skipped by jest', () => {});
});
