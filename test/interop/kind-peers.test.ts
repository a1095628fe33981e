import * as fs from 'node:fs';
import * as path from 'node:path';
import { rmrf, tmpDir } from '../helpers/cli';
import { ctr, requirePeer, startContainerd, stopContainerd, peerMissing } from '../helpers/peers';

describe('peer helpers', () => {
  it('requirePeer reports an absent binary (throws under CI, warns otherwise)', () => {
    // This test checks the helper itself: its own deliberate skip is recorded in a file of its own,
    // not in the run's log (where it would count this passing test as skipped for a missing peer).
    const saved = { PATH: process.env.PATH, CI: process.env.CI, LOG: process.env.IMGTOOL_PEER_SKIPS };
    const logDir = tmpDir('imgtool-skiplog-');
    process.env.IMGTOOL_PEER_SKIPS = path.join(logDir, 'skips.jsonl');
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      process.env.PATH = '/nonexistent-imgtool-path';
      expect(peerMissing('skopeo')).toMatch(/skopeo not found/);
      process.env.CI = 'true';
      expect(() => requirePeer('skopeo')).toThrow(/CI=true.*skopeo/);
      expect(warn).not.toHaveBeenCalled();
      process.env.CI = 'false';
      expect(requirePeer('skopeo')).toBe(false);
      expect(warn).toHaveBeenCalledWith(expect.stringContaining('SKIP'));
      const rec = JSON.parse(fs.readFileSync(process.env.IMGTOOL_PEER_SKIPS, 'utf8').trim());
      expect(rec).toMatchObject({ test: expect.stringContaining('requirePeer reports an absent binary'), why: expect.stringContaining('skopeo') });
    } finally {
      process.env.PATH = saved.PATH;
      if (saved.LOG === undefined) delete process.env.IMGTOOL_PEER_SKIPS; else process.env.IMGTOOL_PEER_SKIPS = saved.LOG;
      rmrf(logDir);
      if (saved.CI === undefined) delete process.env.CI; else process.env.CI = saved.CI;
      warn.mockRestore();
    }
  });

  it('starts and stops an isolated containerd', async () => {
    if (!requirePeer('containerd')) return;
    const dir = tmpDir('imgtool-ctd-');
    try {
      const sock = await startContainerd(path.join(dir, 'c'));
      expect(sock).toBe(path.join(dir, 'c', 'containerd.sock'));
      expect(fs.existsSync(sock)).toBe(true);
      const out = await ctr(sock, ['images', 'ls', '-q']);
      expect(out.trim()).toBe('');
      const pid = Number(fs.readFileSync(path.join(dir, 'c', 'pid'), 'utf8'));
      await stopContainerd(path.join(dir, 'c'));
      expect(() => process.kill(pid, 0)).toThrow();
    } finally {
      await stopContainerd(path.join(dir, 'c'));
      rmrf(dir);
    }
  });
});
