/**
 * Progress bars on a terminal (a pseudo-terminal via `script`): the line printed after the bars
 * starts on its own line, intact, and every bar shows throughput and an ETA (or, once done, its
 * average rate and how long it took).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ImageBuilder } from '../../src/builder';
import { BIN, rmrf, tmpDir } from '../helpers/cli';
import { renderScreen } from '../helpers/terminal';
import { formatBar, fmtDuration, RateMeter } from '../../src/cli/progress';

const haveScript = spawnSync('script', ['--version']).status === 0;
const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

describe('progress bars on a TTY', () => {
  let dir: string;
  let archive: string;
  beforeAll(async () => {
    dir = tmpDir('imgtool-tty-');
    const b = new ImageBuilder(path.join(dir, 'blobs'));
    const l1 = await b.layer([{ path: 'a.bin', content: { size: 6 << 20, seed: 'tty-a' } }]);
    const l2 = await b.layer([{ path: 'b.txt', content: { size: 4 << 20, seed: 'tty-b', text: true } }]);
    const img = b.image({ layers: [l1, l2], format: 'oci' });
    archive = path.join(dir, 'big.tar');
    await b.ociArchive(archive, { images: [{ target: img, names: ['example.com/tty/big:1'] }] });
  });
  afterAll(() => rmrf(dir));

  // Without `script` (util-linux) there is no pseudo-terminal here: skipped loudly locally, a failure under CI.
  if (!haveScript && process.env.CI !== 'true') console.warn('\n!!! SKIP progress TTY test: `script` not found on PATH\n');
  (haveScript || process.env.CI === 'true' ? it : it.skip)('the summary after the bars is printed on its own line, not over the last bar', () => {
    const root = path.join(dir, 'store');
    const cmd = `${q(process.execPath)} ${q(BIN)} load -i ${q(archive)}`;
    const r = spawnSync('script', ['-q', '-e', '-c', cmd, '/dev/null'], {
      encoding: 'utf8',
      env: { ...process.env, IMGTOOL_ROOT: root, COLUMNS: '160', LINES: '50', TERM: 'xterm' },
      timeout: 60_000,
    });
    expect(r.status).toBe(0);
    const screen = renderScreen(r.stdout);
    const loaded = screen.filter((l) => l.includes('loaded example.com/tty/big:1'));
    expect(loaded).toHaveLength(1);
    expect(loaded[0]).toMatch(/^loaded example\.com\/tty\/big:1 sha256:[0-9a-f]{12} linux\/amd64$/);
    expect(screen.find((l) => l.startsWith('unpacked '))).toMatch(/^unpacked example\.com\/tty\/big:1 linux\/amd64: 2 layer\(s\), 2 applied/);
    const bars = screen.filter((l) => l.includes('|'));
    expect(bars.length).toBeGreaterThan(0);
    // Finished bars: 100%, average throughput, duration.
    for (const b of bars) expect(b).toMatch(/\| 100% [0-9.]+ (B|KiB|MiB|GiB)(\/[0-9.]+ (B|KiB|MiB|GiB))? ([0-9.]+ (B|KiB|MiB|GiB)\/s )?in (\d+\.\ds|\d+:\d\d)$/);
    expect(fs.readdirSync(root).length).toBeGreaterThan(0);
  });
});

describe('bar line', () => {
  it('shows done/total, percentage, throughput and ETA while running', () => {
    const line = formatBar({ label: 'layer 1/2', done: 50 << 20, total: 200 << 20, rate: 25 << 20 });
    expect(line).toMatch(/^ layer 1\/2 +\|█{8}░{22}\|  25% 50\.0 MiB\/200\.0 MiB 25\.0 MiB\/s ETA 0:06$/);
  });
  it('shows the average rate and the time taken once finished', () => {
    expect(formatBar({ label: 'x', done: 10 << 20, total: 10 << 20, elapsed: 4 })).toMatch(/\| 100% 10\.0 MiB\/10\.0 MiB 2\.5 MiB\/s in 4\.0s$/);
  });
  it('without a total: bytes and rate, no percentage or ETA', () => {
    expect(formatBar({ label: 'x', done: 1536, rate: 1024 })).toMatch(/\| 1\.5 KiB 1\.0 KiB\/s$/);
  });
  it('cuts long labels with an ellipsis', () => {
    expect(formatBar({ label: 'a'.repeat(40), done: 0 })).toMatch(/^ a{23}… \|/);
  });
  it('durations and the sliding-window rate', () => {
    expect([fmtDuration(0), fmtDuration(61.4), fmtDuration(3725)]).toEqual(['0:00', '1:01', '1:02:05']);
    const m = new RateMeter(0);
    m.add(1000, 1000);
    m.add(2000, 2000);
    expect(m.rate(2000)).toBe(1000);
    m.add(2000, 10_000); // stalled: the window drops the old samples
    expect(m.rate(12_000)).toBeLessThan(300);
  });
});
