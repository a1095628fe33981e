import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { rawTar } from '../../../src/builder/raw';
import { TarParser, TarHeader, parseNumeric, encodeHeader, padding, END_OF_ARCHIVE } from '../../../src/tar';
import { chainId, chainIds } from '../../../src/snapshots/store';

async function parse(buf: Buffer, chunk = 7): Promise<{ headers: TarHeader[]; raw: Buffer; payloads: Buffer[] }> {
  const headers: TarHeader[] = [];
  const raw: Buffer[] = [];
  const all: Buffer[] = [];
  const payloads: Buffer[] = [];
  const p = new TarParser({
    raw: (b) => {
      raw.push(b);
      all.push(b);
    },
    entry: (h) => {
      headers.push(h);
      const parts: Buffer[] = [];
      return { write: (c) => { parts.push(Buffer.from(c)); all.push(Buffer.from(c)); }, end: () => { payloads.push(Buffer.concat(parts)); } };
    },
  });
  const chunks: Buffer[] = [];
  for (let i = 0; i < buf.length; i += chunk) chunks.push(buf.subarray(i, i + chunk));
  await pipeline(Readable.from(chunks), p);
  expect(Buffer.concat(all).equals(buf)).toBe(true); // every byte accounted for, in order
  return { headers, raw: Buffer.concat(raw), payloads };
}

describe('block-level tar reader', () => {
  it('reads entries, payloads and raw bytes in order, in small chunks', async () => {
    const tar = rawTar([
      { name: 'a', data: 'hello' },
      { name: 'l', type: 'hardlink', linkname: 'a', size: 1024 }, // header-only type: size ignored, no payload follows
      { name: 'd/', type: 'dir' },
      { name: 'x', typeflag: '\0', data: 'old-style' },
      { name: 'y/', typeflag: '\0' },
    ]);
    const { headers, payloads } = await parse(tar);
    expect(headers.map((h) => [h.name, h.type, h.size])).toEqual([['a', 'file', 5], ['l', 'link', 0], ['d/', 'dir', 0], ['x', 'file', 9], ['y/', 'dir', 0]]);
    expect(payloads.map(String)).toEqual(['hello', '', '', 'old-style', '']);
  });

  it('PAX records override the header; GNU L/K long names', async () => {
    const tar = rawTar([
      { name: 'short', data: 'p', pax: { path: 'a/very/long/' + 'n'.repeat(200), uid: '4000000', mtime: '12.5', 'SCHILY.xattr.user.bin': Buffer.from([0, 255, 1]) } },
      { name: 'g'.repeat(150), type: 'symlink', linkname: 'k'.repeat(150), longNames: 'gnu' },
    ]);
    const { headers } = await parse(tar, 100);
    expect(headers[0].name).toBe('a/very/long/' + 'n'.repeat(200));
    expect(headers[0].uid).toBe(4000000);
    expect(headers[0].mtime).toBe(12.5);
    expect(headers[0].xattrs['user.bin']).toEqual(Buffer.from([0, 255, 1]));
    expect(headers[1].name).toBe('g'.repeat(150));
    expect(headers[1].linkname).toBe('k'.repeat(150));
  });

  it('base-256 numbers', () => {
    const b = Buffer.alloc(12);
    b[0] = 0x80;
    b.writeUIntBE(2 ** 40 + 5, 6, 6);
    expect(parseNumeric(b, 0, 12)).toBe(2 ** 40 + 5);
    const neg = Buffer.alloc(12, 0xff);
    neg[11] = 0xfe; // -2
    expect(parseNumeric(neg, 0, 12)).toBe(-2);
    expect(parseNumeric(Buffer.from('0000644 \0'), 0, 9)).toBe(0o644);
  });

  it('rejects truncated archives, bad checksums, a zero block followed by data', async () => {
    const tar = rawTar([{ name: 'a', data: 'x'.repeat(1000) }]);
    await expect(parse(tar.subarray(0, 700))).rejects.toThrow(/unexpected end of archive/);
    await expect(parse(tar.subarray(0, 300))).rejects.toThrow(/unexpected end of archive/);
    const bad = Buffer.from(tar);
    bad[10] ^= 1;
    await expect(parse(bad)).rejects.toThrow(/checksum/);
    const z = Buffer.concat([Buffer.alloc(512), rawTar([{ name: 'b', data: 'b' }])]);
    await expect(parse(z)).rejects.toThrow(/after a zero block/);
    await expect(parse(rawTar([{ name: 's', typeflag: 'S', data: 'x' }]))).rejects.toThrow(/unsupported GNU entry type/);
  });

  it('accepts EOF at a header boundary and a single zero block', async () => {
    expect((await parse(rawTar([{ name: 'a', data: 'a' }], { endBlocks: false }))).headers).toHaveLength(1);
    const one = Buffer.concat([rawTar([{ name: 'a', data: 'a' }], { endBlocks: false }), Buffer.alloc(512)]);
    expect((await parse(one)).headers).toHaveLength(1);
  });

  it('encodeHeader output reads back (long names via PAX, xattrs, devices)', async () => {
    const parts = [
      encodeHeader({ name: 'f/' + 'z'.repeat(300), type: 'file', mode: 0o755, size: 3, uid: 5, gid: 6, uname: 'u', gname: 'g', mtime: 99, xattrs: { 'user.a': Buffer.from('b') } }),
      Buffer.from('abc'), padding(3),
      encodeHeader({ name: 'dev/null', type: 'char', mode: 0o666, devmajor: 1, devminor: 3 }),
      encodeHeader({ name: 'l', type: 'symlink', mode: 0o777, linkname: 't'.repeat(120) }),
      END_OF_ARCHIVE,
    ];
    const { headers, payloads } = await parse(Buffer.concat(parts), 512);
    expect(headers[0]).toMatchObject({ name: 'f/' + 'z'.repeat(300), mode: 0o755, size: 3, uid: 5, gid: 6, uname: 'u', gname: 'g', mtime: 99 });
    expect(headers[0].xattrs['user.a'].toString()).toBe('b');
    expect(payloads[0].toString()).toBe('abc');
    expect(headers[1]).toMatchObject({ type: 'char', devmajor: 1, devminor: 3 });
    expect(headers[2].linkname).toBe('t'.repeat(120));
  });
});

describe('chainID', () => {
  const h = (s: string) => 'sha256:' + createHash('sha256').update(s).digest('hex');
  it('ChainID(L0) = DiffID(L0); ChainID(L0..Ln) = sha256(ChainID(L0..Ln-1) + " " + DiffID(Ln))', () => {
    const d = [h('layer0'), h('layer1'), h('layer2')];
    const c1 = 'sha256:' + createHash('sha256').update(`${d[0]} ${d[1]}`).digest('hex');
    const c2 = 'sha256:' + createHash('sha256').update(`${c1} ${d[2]}`).digest('hex');
    expect(chainIds(d)).toEqual([d[0], c1, c2]);
    expect(chainId(d)).toBe(c2);
    expect(chainId([d[0]])).toBe(d[0]);
  });
  it('known vector (busybox-like two layers from the image-spec style)', () => {
    // Independent computation of a fixed vector.
    const a = 'sha256:' + 'a'.repeat(64);
    const b = 'sha256:' + 'b'.repeat(64);
    expect(chainId([a, b])).toBe('sha256:' + createHash('sha256').update(a + ' ' + b).digest('hex'));
    expect(() => chainIds(['md5:abc'])).toThrow(/diffID/);
  });
});
