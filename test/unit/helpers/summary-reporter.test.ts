/**
 * The closing line of a test run ("tests: N passed, N failed, N skipped") must count a test
 * that returned early because a peer tool is missing as skipped, not as passed.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO, rmrf, tmpDir } from '../../helpers/cli';

function runSample(env: Record<string, string>): string {
  const config = {
    rootDir: REPO,
    roots: ['<rootDir>/test/fixtures-jest'],
    testMatch: ['**/peer-skip.sample.ts'],
    testEnvironment: 'node',
    transform: { '^.+\\.ts$': ['ts-jest', { diagnostics: false }] },
    reporters: ['<rootDir>/test/helpers/summary-reporter.js'],
  };
  const r = spawnSync(process.execPath, [require.resolve('jest/bin/jest'), '--runInBand', '--config', JSON.stringify(config)], {
    cwd: REPO,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 90_000,
  });
  return r.stdout + r.stderr;
}

describe('test summary reporter', () => {
  it('counts a test skipped for a missing peer as skipped in the closing line', () => {
    const emptyPath = tmpDir('imgtool-nopeers-');
    try {
      const out = runSample({ PATH: emptyPath, CI: 'false' });
      const line = out.split('\n').find((l) => l.startsWith('tests: '));
      expect(line).toBe('tests: 1 passed, 0 failed, 3 skipped (2 for a missing peer tool)');
    } finally {
      rmrf(emptyPath);
    }
  });

  it('counts tests that ran with their peers as passed', () => {
    // A fake skopeo on PATH: requirePeer only checks that the binary exists.
    const dir = tmpDir('imgtool-fakepeers-');
    try {
      fs.writeFileSync(path.join(dir, 'skopeo'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
      const out = runSample({ PATH: dir, CI: 'false' });
      const line = out.split('\n').find((l) => l.startsWith('tests: '));
      expect(line).toBe('tests: 3 passed, 0 failed, 1 skipped');
    } finally {
      rmrf(dir);
    }
  });
});
