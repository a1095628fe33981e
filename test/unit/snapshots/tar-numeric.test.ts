/**
 * Hostile numeric fields for the block-level tar parser (issue 10 item 3): sizes and
 * ids must be integers >= 0 within bounds whatever their encoding (PAX, octal,
 * base-256); a bad one is a header error naming the entry, and the parser never moves
 * backwards. mtimes may be negative or fractional and are kept verbatim.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { rawTar, RawEntry } from '../../../src/builder/raw';
import { TarParser, TarHeader, encodeHeader, END_OF_ARCHIVE } from '../../../src/tar';
import { ImgtoolError } from '../../../src/errors';
import { patchHeader as patch, base256 as b256 } from './helpers';

const BLOCK = 512;
const SIZE = 124;
const UID = 108;
const GID = 116;
const MTIME = 136;

/**
 * Parse `buf` with guards that turn a rewinding parser into a prompt failure instead
 * of an endless loop: the bytes handed out (raw + payload) may never exceed the input,
 * and there cannot be more entries than input blocks.
 */
async function parse(buf: Buffer, chunk = buf.length): Promise<{ headers: TarHeader[]; out: Buffer }> {
  const headers: TarHeader[] = [];
  const all: Buffer[] = [];
  let seen = 0;
  const take = (b: Buffer) => {
    seen += b.length;
    if (seen > buf.length) throw new Error(`REWIND: parser handed out ${seen} bytes of a ${buf.length}-byte input`);
    all.push(Buffer.from(b));
  };
  const p = new TarParser({
    raw: take,
    entry: (h) => {
      headers.push(h);
      if (headers.length > buf.length / BLOCK) throw new Error(`REWIND: ${headers.length} entries in ${buf.length} bytes`);
      return { write: take, end: () => {} };
    },
  });
  const chunks: Buffer[] = [];
  for (let i = 0; i < buf.length; i += chunk) chunks.push(buf.subarray(i, i + chunk));
  await pipeline(Readable.from(chunks), p);
  return { headers, out: Buffer.concat(all) };
}

async function rejects(buf: Buffer, re: RegExp): Promise<ImgtoolError> {
  let err: unknown;
  try {
    await parse(buf);
  } catch (e) {
    err = e;
  }
  expect(err).toBeDefined();
  expect((err as Error).message).not.toMatch(/REWIND|RangeError/);
  expect(err).toBeInstanceOf(ImgtoolError);
  expect((err as Error).message).toMatch(re);
  expect((err as Error).message).not.toMatch(/\n/);
  return err as ImgtoolError;
}

const one = (e: Partial<RawEntry> & { name?: string }) => rawTar([{ name: 'victim', data: 'payload!', ...e }, { name: 'after', data: 'z' }]);

describe('tar numeric fields (hostile)', () => {
  it('PAX size=-512 is a header error naming the entry (not the same header twice)', async () => {
    await rejects(one({ pax: { size: '-512' } }), /entry "victim".*size.*-512/);
  }, 5000);

  it('PAX size=-(512+n) errors promptly instead of looping forever', async () => {
    for (const s of ['-1024', '-1536', String(-(512 + 7)), '-1']) {
      await rejects(one({ pax: { size: s } }), new RegExp(`entry "victim".*size.*${s}`));
    }
  }, 5000);

  it('non-numeric PAX values are header errors: abc, 1e3, empty, leading +, spaces, fractions', async () => {
    for (const k of ['size', 'uid', 'gid']) {
      for (const v of ['abc', '1e3', '', '+5', ' 5', '5 ', '0x10', '1.5', '-0']) {
        await rejects(one({ pax: { [k]: v } }), new RegExp(`entry "victim".*${k}`));
      }
    }
  }, 10000);

  it('PAX bounds: size <= 2^53-1, uid/gid <= 2^32-2; the PAX path names the entry', async () => {
    await rejects(one({ pax: { size: String(2 ** 53) } }), /entry "victim".*size/);
    await rejects(one({ pax: { size: '9'.repeat(400) } }), /entry "victim".*size/);
    await rejects(one({ pax: { uid: String(2 ** 32 - 1) } }), /entry "victim".*uid/);
    await rejects(one({ pax: { gid: String(2 ** 32) } }), /entry "victim".*gid/);
    await rejects(one({ pax: { uid: '-1', path: 'long/' + 'n'.repeat(150) } }), new RegExp(`entry "long/${'n'.repeat(150)}".*uid`));
    const ok = await parse(one({ pax: { uid: String(2 ** 32 - 2), gid: '0007' } }));
    expect(ok.headers[0]).toMatchObject({ name: 'victim', uid: 2 ** 32 - 2, gid: 7, size: 8 });
  });

  it('base-256 negative or huge size, uid, gid are header errors naming the entry', async () => {
    const t = one({});
    await rejects(patch(t, 0, SIZE, 12, b256(-512n, 12)), /entry "victim".*size/);
    await rejects(patch(t, 0, SIZE, 12, b256(-1n, 12)), /entry "victim".*size/);
    await rejects(patch(t, 0, SIZE, 12, b256(2n ** 53n, 12)), /entry "victim".*size/);
    await rejects(patch(t, 0, SIZE, 12, b256(2n ** 80n, 12)), /entry "victim".*size/);
    await rejects(patch(t, 0, UID, 8, b256(-1n, 8)), /entry "victim".*uid/);
    await rejects(patch(t, 0, GID, 8, b256(-2n, 8)), /entry "victim".*gid/);
    await rejects(patch(t, 0, UID, 8, b256(2n ** 32n - 1n, 8)), /entry "victim".*uid/);
    await rejects(patch(t, 0, GID, 8, b256(2n ** 40n, 8)), /entry "victim".*gid/);
    // a negative size on a header-only type, and on a PAX header itself
    await rejects(patch(rawTar([{ name: 'l', type: 'hardlink', linkname: 'x' }]), 0, SIZE, 12, b256(-512n, 12)), /entry "l".*size/);
    const px = rawTar([{ name: 'p', data: 'x', pax: { uid: '5' } }]);
    await rejects(patch(px, 0, SIZE, 12, b256(-512n, 12)), /entry "PaxHeaders[^"]*".*size/);
    // in range: base-256 size/uid accepted
    const big = await parse(patch(t, 0, UID, 8, b256(2n ** 32n - 2n, 8)));
    expect(big.headers[0].uid).toBe(2 ** 32 - 2);
  });

  it('octal: a sign or garbage is a header error naming the entry', async () => {
    const t = one({});
    await rejects(patch(t, 0, SIZE, 12, '-0000001000'), /entry "victim".*size/);
    await rejects(patch(t, 0, UID, 8, '-000001'), /entry "victim".*uid/);
    await rejects(patch(t, 0, GID, 8, '00000x1'), /entry "victim".*gid/);
    // the largest octal values fit the bounds
    const ok = await parse(patch(patch(t, 0, UID, 8, '77777777'), 0, GID, 8, '7777777\0'));
    expect(ok.headers[0]).toMatchObject({ uid: 0o77777777, gid: 0o7777777 });
  });

  it('mtime may be negative or fractional (PAX, base-256) and is reported verbatim', async () => {
    const r = await parse(rawTar([
      { name: 'a', data: 'a', pax: { mtime: '-1.5' } },
      { name: 'b', data: 'b', pax: { mtime: '1700000000.25' } },
      { name: 'c', data: 'c', pax: { mtime: '-86400' } },
    ]));
    expect(r.headers.map((h) => h.mtime)).toEqual([-1.5, 1700000000.25, -86400]);
    const t = rawTar([{ name: 'n', data: 'n' }]);
    const neg = await parse(patch(t, 0, MTIME, 12, b256(-3600n, 12)));
    expect(neg.headers[0].mtime).toBe(-3600);
    expect(neg.out.equals(patch(t, 0, MTIME, 12, b256(-3600n, 12)))).toBe(true);
    const huge = await parse(patch(t, 0, MTIME, 12, b256(10n ** 15n, 12)));
    expect(huge.headers[0].mtime).toBe(1e15);
    // beyond 64 bits (as Go reads it) and non-numbers are header errors
    await rejects(patch(t, 0, MTIME, 12, b256(2n ** 70n, 12)), /entry "n".*mtime/);
    for (const v of ['abc', '', '+5', '1e3', '1.', '.5', '9'.repeat(30)]) {
      await rejects(rawTar([{ name: 'm', data: 'm', pax: { mtime: v } }]), /entry "m".*mtime/);
    }
  });

  it('fed in small chunks the errors are the same (no RangeError from a negative offset)', async () => {
    for (const chunk of [1, 7, 100, 511, 513]) {
      await expect(parse(one({ pax: { size: '-1024' } }), chunk)).rejects.toThrow(/entry "victim".*size/);
    }
  }, 10000);

  it('encodeHeader keeps a negative or huge mtime (PAX) instead of writing 0', async () => {
    const t = Buffer.concat([
      encodeHeader({ name: 'neg', type: 'dir', mode: 0o755, mtime: -86400 }),
      encodeHeader({ name: 'negfrac', type: 'dir', mode: 0o755, mtime: -1.5 }),
      encodeHeader({ name: 'big', type: 'dir', mode: 0o755, mtime: 9223372036 }),
      END_OF_ARCHIVE,
    ]);
    expect((await parse(t)).headers.map((h) => [h.name, h.mtime])).toEqual([['neg', -86400], ['negfrac', -1.5], ['big', 9223372036]]);
  });
});
