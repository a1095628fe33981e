import * as fs from 'node:fs';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { rmrf, tmpDir } from '../../helpers/cli';
import { Store } from '../../../src/store';
import { planSave, saveImages } from '../../../src/archive/export';
import { archiveBytes, tarEntryBytes } from '../../../src/kind/plan';
import { Fixtures } from '../../interop/kind-fixtures';

/** A sink that counts bytes. */
function counter(): Writable & { n: number } {
  const w = new Writable({
    write(chunk: Buffer, _e, cb) {
      w.n += chunk.length;
      cb();
    },
  }) as Writable & { n: number };
  w.n = 0;
  return w;
}

describe('archive size from a save plan', () => {
  let dir: string;
  let store: Store;
  let fx: Fixtures;

  beforeAll(async () => {
    dir = tmpDir('imgtool-kplan-');
    store = Store.open(path.join(dir, 'store'));
    fx = new Fixtures(dir, store);
    await fx.put(await fx.twoPlatformApp('v1', 100_000), ['docker.io/library/app:1']);
    await fx.put(await fx.simple(['a', 'b'], 1000), ['docker.io/library/tool:1', 'example.com/x/tool:2']);
  });
  afterAll(() => {
    store.close();
    rmrf(dir);
  });

  it('tar entries are a header plus data padded to 512', () => {
    expect(tarEntryBytes(0)).toBe(512);
    expect(tarEntryBytes(1)).toBe(1024);
    expect(tarEntryBytes(512)).toBe(1024);
    expect(tarEntryBytes(513)).toBe(1536);
  });

  it.each([
    [['app:1']],
    [['app:1', 'tool:1', 'example.com/x/tool:2']],
    [['tool:1']],
  ])('equals the bytes saveImages writes for %j, whole and with blobs left out', async (refs: string[]) => {
    const plan = await planSave(store, refs);
    const full = counter();
    const r = await saveImages(store, refs, { output: full });
    expect(archiveBytes(plan)).toBe(r.bytes);
    expect(full.n).toBe(r.bytes);
    // Leave out every other blob, then all of them.
    const some = new Set(plan.blobs.filter((_, i) => i % 2 === 0).map((b) => b.digest));
    const all = new Set(plan.blobs.map((b) => b.digest));
    for (const omit of [some, all]) {
      const sink = counter();
      const rr = await saveImages(store, refs, { output: sink, omitBlobs: omit });
      expect(archiveBytes(plan, omit)).toBe(rr.bytes);
      expect(sink.n).toBe(rr.bytes);
    }
    // And the file on disk has exactly that size.
    const f = path.join(dir, 'x.tar');
    await saveImages(store, refs, { output: f });
    expect(fs.statSync(f).size).toBe(archiveBytes(plan));
  });
});
