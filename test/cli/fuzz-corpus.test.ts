/**
 * Replays the fuzz regression corpus (test/fuzz-corpus/<class>/*.{tar,tar.gz,tar.zst} with a
 * JSON sidecar naming the command, seed, mutation and what failed when it was found) through
 * the fuzz workers, asserting the post-conditions rather than the recorded failure: the case
 * ends, any error is a clear one-line ImgtoolError (message and details), nothing is
 * registered on failure, nothing is written outside the store, fsck is clean, memory is
 * bounded. A corpus file stays in the corpus after its bug is fixed.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { replayCorpus, readCorpus, CORPUS } = require('../../scripts/fuzz/run');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { unclearReason, classifyError } = require('../../scripts/fuzz/check');

interface Meta {
  file: string;
  path: string;
  class: string;
  command: string;
  mutation: string;
  detail: string;
}
interface Replayed {
  meta: Meta;
  failures: Array<{ class: string; detail: string }>;
}

const entries: Meta[] = readCorpus(CORPUS);

describe('fuzz corpus: sidecars', () => {
  it('every sidecar names an existing file, a known command and its failure class', () => {
    expect(entries.length).toBeGreaterThan(0);
    for (const m of entries) {
      expect(fs.existsSync(m.path)).toBe(true);
      expect(['verify', 'verify --strict', 'ls-archive', 'load', 'load --no-unpack', 'unpack', 'export-rootfs', 'save']).toContain(m.command);
      expect(path.basename(path.dirname(m.path))).toBe(m.class);
    }
  });
});

describe('fuzz corpus: replay', () => {
  let results: Replayed[] = [];
  beforeAll(async () => {
    results = await replayCorpus({ workers: 2 });
  }, 600000);

  // One test per corpus file so a report names each file still failing.
  for (const [i, m] of entries.entries()) {
    it(`${m.class}/${m.file} (${m.command}; ${m.mutation}: ${m.detail.slice(0, 80)})`, () => {
      const r = results[i];
      expect(r.meta.path).toBe(m.path);
      expect(r.failures.map((f) => `${f.class}: ${f.detail}`)).toEqual([]);
    });
  }
});

// The classifier itself, so the replay cannot pass by accepting everything.
describe('fuzz: the clear-error classifier', () => {
  const isImg = (e: unknown) => !!e && (e as { code?: unknown }).code === 'INVALID_ARCHIVE';
  const ctx = { storeRoot: '/s/store', tmpDirs: ['/s/tmp'] };
  it.each([
    ['archive x.tar: layer 2 sha256:ab is truncated', undefined],
    ['blob sha256:ab: size mismatch: expected undefined bytes', 'says "undefined"'],
    ["ENOENT: no such file or directory, open '/x'", 'raw errno code'],
    ['cannot open /s/store/content/ingest/abc.tmp-1', 'shows a store-internal temp path'],
    ['two\nlines', 'more than one line'],
    ['gzip stream is truncated (unexpected end of file)', 'raw zlib text'],
    ['x: Cannot read properties of null (reading "digest")', 'raw TypeError text'],
    ['file /s/tmp/x is bad', 'shows a temp path'],
  ])('%s', (line, reason) => {
    expect(unclearReason(line, ctx)).toBe(reason);
  });
  it('a non-ImgtoolError is a raw error whatever its text', () => {
    expect(classifyError(new TypeError('fine words'), isImg, ctx).problem.class).toBe('raw-error');
    const ok = Object.assign(new Error('index.json is not valid JSON'), { code: 'INVALID_ARCHIVE', details: ['one', 'two'] });
    expect(classifyError(ok, isImg, ctx).problem).toBeUndefined();
    const badDetail = Object.assign(new Error('x.tar: 1 problem(s)'), { code: 'INVALID_ARCHIVE', details: ['NaN bytes'] });
    expect(classifyError(badDetail, isImg, ctx).problem.class).toBe('unclear-message');
  });
});
