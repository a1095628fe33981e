/**
 * `kind preload -o FILE|DIR` verifies each archive as a temp file and renames only once every
 * archive verified (issue 10 item 14): a failed run leaves the files that were there before.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { rmrf, tmpDir } from '../../helpers/cli';
import { Store } from '../../../src/store';
import * as verify from '../../../src/archive/verify';
import { kindPreload } from '../../../src/kind/preload';
import { addImage } from '../archive/export-fixtures';

describe('kindPreload output files', () => {
  let dir: string;
  let store: Store;
  beforeAll(async () => {
    dir = tmpDir('imgtool-kpreload-');
    store = Store.open(path.join(dir, 'store'));
    const a = await addImage(store, { layers: [{ a: 'a' }], label: 'a' });
    const b = await addImage(store, { layers: [{ b: 'b' }], label: 'b' });
    store.images.put('docker.io/library/a:1', a.manifest);
    store.images.put('docker.io/library/b:1', b.manifest);
  });
  afterAll(() => {
    store.close();
    rmrf(dir);
  });
  afterEach(() => jest.restoreAllMocks());

  /** Make the verification of the `n`th archive (1-based) fail; record what was verified. */
  function failVerification(n: number): string[] {
    const seen: string[] = [];
    const real = verify.verifyArchive;
    jest.spyOn(verify, 'verifyArchive').mockImplementation(async (input, opts) => {
      seen.push(String(input));
      const r = await real(input, opts);
      return seen.length === n ? { ...r, problems: [...r.problems, 'injected: blob sha256:0000 is corrupt'] } : r;
    });
    return seen;
  }

  it('a failed verification leaves the file that was there before (and no temp file)', async () => {
    const sub = fs.mkdtempSync(path.join(dir, 'file-'));
    const out = path.join(sub, 'images.tar');
    fs.writeFileSync(out, 'previous archive');
    const seen = failVerification(1);
    await expect(kindPreload(store, ['a:1', 'b:1'], { output: out })).rejects.toThrow(
      new RegExp(`^preload archive ${out.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} failed verification \\(--strict\\): injected`),
    );
    expect(seen.length).toBe(1);
    expect(seen[0]).not.toBe(out); // the temp file was verified, not the target
    expect(fs.readFileSync(out, 'utf8')).toBe('previous archive');
    expect(fs.readdirSync(sub)).toEqual(['images.tar']);
  });

  it('a successful run verifies the temp file while FILE is intact, then renames it over FILE', async () => {
    const sub = fs.mkdtempSync(path.join(dir, 'ok-'));
    const out = path.join(sub, 'images.tar');
    fs.writeFileSync(out, 'previous archive');
    const inode = fs.statSync(out).ino;
    const real = verify.verifyArchive;
    const during: string[] = [];
    jest.spyOn(verify, 'verifyArchive').mockImplementation(async (input, opts) => {
      during.push(fs.readFileSync(out, 'utf8'));
      expect(path.dirname(String(input))).toBe(sub); // temp next to the target: rename is atomic
      return real(input, opts);
    });
    const r = await kindPreload(store, ['a:1', 'b:1'], { output: out });
    expect(r.archives.map((a) => a.file)).toEqual([out]);
    expect(during).toEqual(['previous archive']);
    expect(fs.statSync(out).ino).not.toBe(inode);
    expect(fs.statSync(out).size).toBe(r.archives[0].bytes);
    expect((await real(out, { strict: true })).problems).toEqual([]);
    expect(fs.readdirSync(sub)).toEqual(['images.tar']);
  });

  it('directory mode: a failure on the second archive leaves both files that were there before', async () => {
    const sub = fs.mkdtempSync(path.join(dir, 'dir-'));
    const fa = path.join(sub, 'docker.io_library_a_1.tar');
    const fb = path.join(sub, 'docker.io_library_b_1.tar');
    fs.writeFileSync(fa, 'old a');
    fs.writeFileSync(fb, 'old b');
    failVerification(2);
    await expect(kindPreload(store, ['a:1', 'b:1'], { output: sub + '/' })).rejects.toThrow(/docker\.io_library_b_1\.tar failed verification/);
    expect(fs.readFileSync(fa, 'utf8')).toBe('old a');
    expect(fs.readFileSync(fb, 'utf8')).toBe('old b');
    expect(fs.readdirSync(sub).sort()).toEqual([path.basename(fa), path.basename(fb)]);
  });
});
