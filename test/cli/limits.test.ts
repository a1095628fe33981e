/**
 * Hostile-input limits through the CLI: a zstd bomb of a few KB is refused by `verify` and
 * `load` at --max-ratio 2000 with one line naming the archive and the flag; at the default
 * ratio (above zstd's ceiling: zero-filled zstd layers are real) it streams with flat memory.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { runCli, tmpDir, rmrf, BIN } from '../helpers/cli';
import { ownStderr } from '../unit/archive/import-fixtures';
import { zstdZeroArchive } from '../unit/archive/bomb-fixtures';

let dir: string;
let root: string;
let bomb: string;
beforeAll(async () => {
  dir = tmpDir('imgtool-limits-cli-');
  root = path.join(dir, 'store');
  bomb = path.join(dir, 'bomb.tar.zst');
  await zstdZeroArchive(bomb, 512 * 1024 * 1024);
});
afterAll(() => rmrf(dir));

function oneLine(stderr: string): string {
  const lines = ownStderr(stderr).trimEnd().split('\n').filter((l) => !l.startsWith('imgtool: warning:'));
  expect(lines).toHaveLength(1);
  return lines[0];
}

describe('decompression bombs', () => {
  it('verify and load --max-ratio 2000 refuse a 512 MiB zstd bomb naming the archive and --max-ratio', async () => {
    expect(fs.statSync(bomb).size).toBeLessThan(64 * 1024);
    for (const args of [['verify', bomb], ['load', '-i', bomb]]) {
      const r = await runCli([...args, '--max-ratio', '2000'], { root });
      expect(r.code).not.toBe(0);
      const re = new RegExp(`archive ${bomb}: \\d+ compressed bytes decompress to more than 2000 times that .*--max-ratio`);
      // verify lists its problems after the summary line; load fails with one line
      if (args[0] === 'load') expect(oneLine(r.stderr)).toMatch(re);
      else expect(ownStderr(r.stderr)).toMatch(re);
    }
    const images = await runCli(['images', '--json'], { root });
    expect(JSON.parse(images.stdout)).toEqual([]);
  });

  it('at the default ratio, verify streams it with flat memory', () => {
    if (!fs.existsSync('/usr/bin/time')) return;
    const r = spawnSync('/usr/bin/time', ['-f', 'maxrss=%M', process.execPath, BIN, 'verify', bomb], { encoding: 'utf8', env: { ...process.env, IMGTOOL_ROOT: root } });
    const rss = Number(/maxrss=(\d+)/.exec(r.stderr)![1]) * 1024;
    // the archive holds no image: verify reports that (after reading all 512 MiB)
    expect(r.stderr).not.toMatch(/decompress to more than/);
    expect(rss).toBeLessThan(300 * 1024 * 1024);
  });

  it('a bad limit value is a clear usage error', async () => {
    const r = await runCli(['verify', bomb, '--max-archive-size', '12 parsecs'], { root });
    expect(r.code).not.toBe(0);
    expect(oneLine(r.stderr)).toMatch(/--max-archive-size "12 parsecs": expected a size/);
  });
});
