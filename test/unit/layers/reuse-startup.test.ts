/**
 * Issue 16: a second `convert` of the same image reuses every layer, and its cost is start-up.
 * Fingerprinting the codec (`codecVersion`: compressing a 192 KiB probe at two levels, tens of
 * milliseconds) is needed only to make a blob or to rank several candidates — never to reuse
 * the one variant present.
 */
import * as fs from 'node:fs';
import * as codecs from '../../../src/compression/codecs';
import { ensureLayer } from '../../../src/layers';
import { env, entries } from '../compression/fixture';
import type { Env } from '../compression/fixture';

describe('ensureLayer start-up cost', () => {
  let e: Env;
  beforeEach(() => { e = env(); });
  afterEach(() => { e.cleanup(); jest.restoreAllMocks(); });

  it('reusing the one variant present does not fingerprint the codec; making one does', async () => {
    const l = await e.b.layer(entries(7), { compression: 'none' });
    const tar = fs.readFileSync(e.b.blobs.path(l.digest));
    const z = await e.store.content.ingestBuffer(codecs.compressBufferSync('zstd', tar));
    e.store.variants.recordProof({ digest: z.digest, diffId: l.diffId, compression: 'zstd', size: z.size, level: 3, codecVersion: 'zstd-x+000000000000' });
    const spy = jest.spyOn(codecs, 'codecVersion');
    const r = await ensureLayer(e.store, l.diffId, { compression: 'zstd' });
    expect(r).toMatchObject({ digest: z.digest, source: 'existing' });
    expect(spy).not.toHaveBeenCalled();
    // a new blob records the codec's version
    const g = await ensureLayer(e.store, l.diffId, { compression: 'gzip' });
    expect(g.source).toBe('converted');
    expect(spy).toHaveBeenCalledWith('gzip');
    expect(e.store.variants.get(g.digest)!.codecVersion).toBe(codecs.codecVersion('gzip'));
  });
});
