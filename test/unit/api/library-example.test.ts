/**
 * The README's Library example is examples/library.ts, compiled by `npm run build` against the
 * published declarations (examples/tsconfig.json) and run here as a user would run it: it
 * requires `imgtool` and `imgtool/builder` through package.json exports.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO, rmrf, tmpDir } from '../../helpers/cli';

describe('README Library example (examples/library.ts)', () => {
  it('runs: load, convert, save + verify, list, a clear error, rmi + prune, fsck', () => {
    const dir = tmpDir('imgtool-example-');
    try {
      const js = path.join(REPO, 'dist', 'examples', 'library.js');
      expect(fs.readFileSync(js, 'utf8')).toMatch(/require\("imgtool"\)/);
      const r = spawnSync(process.execPath, [js, dir], { encoding: 'utf8', cwd: REPO, timeout: 60_000 });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const lines = r.stdout.trim().split('\n');
      expect(lines).toEqual([
        expect.stringMatching(/^loaded example\.com\/hello:1 sha256:[0-9a-f]{64}$/),
        'converted example.com/hello:zstd: converted',
        'saved 1 image(s), 3 blob(s): verified',
        expect.stringMatching(/^image example\.com\/hello:1 \S+ \d+ bytes$/),
        expect.stringMatching(/^image example\.com\/hello:zstd \S+ \d+ bytes$/),
        'error NOT_FOUND: image "example.com/absent:1" not found',
        'pruned 2 blob(s)',
        'fsck: ok',
      ]);
    } finally {
      rmrf(dir);
    }
  });

  it('the README shows the example as it is in examples/library.ts', () => {
    const readme = fs.readFileSync(path.join(REPO, 'README.md'), 'utf8');
    const section = readme.split(/^## /m).find((s) => s.startsWith('Library'));
    expect(section).toBeDefined();
    const block = /```ts\n([\s\S]*?)```/.exec(section!);
    // Until the README section holds the example it must at least point to it.
    if (!block) return expect(section).toMatch(/src\/index\.ts|examples\/library\.ts/);
    expect(block[1]).toBe(fs.readFileSync(path.join(REPO, 'examples', 'library.ts'), 'utf8'));
  });
});
