/**
 * Outer archives with hostile tar numbers (issue 10 item 3): a negative PAX size used to
 * rewind the tar reader (one header read twice, or an endless loop for `verify` and
 * `load`). Now: a prompt non-zero exit with one clear line naming the entry.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { rawTar, RawEntry } from '../../src/builder/raw';
import { runCli, tmpDir, rmrf } from '../helpers/cli';
import { ownStderr } from '../unit/archive/import-fixtures';

const blob = 'blobs/sha256/' + 'a'.repeat(64);
const archive = (pax: Record<string, string>): Buffer => {
  const entries: RawEntry[] = [
    { name: 'oci-layout', data: '{"imageLayoutVersion":"1.0.0"}' },
    { name: blob, data: 'x'.repeat(700), pax },
    { name: 'index.json', data: '{"schemaVersion":2,"manifests":[]}' },
  ];
  return rawTar(entries);
};

describe('hostile tar numbers in an outer archive (CLI)', () => {
  let dir: string;
  beforeAll(() => {
    dir = tmpDir('imgtool-tarnum-cli-');
  });
  afterAll(() => rmrf(dir));

  const cases: Array<[string, Record<string, string>, RegExp]> = [
    ['PAX size=-1536 (used to loop forever)', { size: '-1536' }, /invalid PAX size "-1536"/],
    ['PAX size=-512 (used to read a header twice)', { size: '-512' }, /invalid PAX size "-512"/],
    ['PAX size=1e3', { size: '1e3' }, /invalid PAX size "1e3"/],
    ['PAX uid=-1', { uid: '-1' }, /invalid PAX uid "-1"/],
  ];

  for (const cmd of ['verify', 'load']) {
    it.each(cases)(`${cmd}: %s exits non-zero quickly with one line naming the entry`, async (_n, pax, re) => {
      const f = path.join(dir, `in-${cmd}-${pax.size ?? pax.uid}.tar`);
      fs.writeFileSync(f, archive(pax));
      const t0 = Date.now();
      const r = await runCli(cmd === 'verify' ? ['verify', f] : ['load', '-i', f], { root: path.join(dir, 'store-' + cmd), timeoutMs: 20000 });
      expect(Date.now() - t0).toBeLessThan(15000);
      expect(r.code).toBeGreaterThan(0); // exited by itself (not killed by the timeout)
      const lines = ownStderr(r.stderr).trimEnd().split('\n').filter((l) => !l.startsWith('imgtool: warning:'));
      // load: one error line; verify: its "N problem(s)" line, then exactly one problem
      if (cmd === 'verify') {
        expect(lines).toHaveLength(2);
        expect(lines[0]).toMatch(/^imgtool: error: .*: 1 problem\(s\)$/);
      } else {
        expect(lines).toHaveLength(1);
        expect(lines[0]).toMatch(/^imgtool: error: /);
      }
      const line = lines[lines.length - 1];
      expect(line).toContain(`entry ${JSON.stringify(blob)}`);
      expect(line).toMatch(re);
      expect(line).not.toMatch(/RangeError|set-aside|expected -/);
    }, 30000);
  }
});
