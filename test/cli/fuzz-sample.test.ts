/**
 * A seeded sample of the fuzz harness (scripts/fuzz/, `npm run fuzz`): a fixed seed, a few
 * hundred cases over every command, on the built library (`npm run build` first; `npm test`
 * does). Every case must end, fail (if it fails) with a clear one-line ImgtoolError, register
 * nothing on failure, write nothing outside the store, leave fsck clean and stay within the
 * memory bound. Failures are not filed in the corpus from here: run `npm run fuzz` for that.
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { runFuzz } = require('../../scripts/fuzz/run');

const CASES = Number(process.env.IMGTOOL_FUZZ_SAMPLE ?? 240);

interface Failed {
  n: number;
  command: string;
  mutation: string;
  detail: string;
  failures: Array<{ class: string; detail: string }>;
}

describe('fuzz sample (seed 7)', () => {
  it(`${CASES} cases: every post-condition holds`, async () => {
    const r = await runFuzz({ cases: CASES, seed: 7, workers: 2, timeoutMs: 20000, bombMiB: 32, corpus: false });
    expect(r.cases).toBe(CASES);
    // every command was driven
    for (const c of ['verify', 'ls-archive', 'load', 'load --no-unpack', 'unpack', 'export-rootfs', 'save']) expect(r.byCommand[c]).toBeGreaterThan(0);
    const lines = (r.failures as Failed[]).map((f) => `#${f.n} ${f.command} [${f.mutation}] ${f.detail}\n    ${f.failures.map((x) => `${x.class}: ${x.detail}`).join('\n    ')}`);
    expect(lines).toEqual([]);
  }, 180000);
});
