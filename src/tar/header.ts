/**
 * Tar header encoding for archives imgtool writes from its own data (export-rootfs):
 * ustar headers with PAX records for whatever ustar cannot hold (long names and link
 * names, big or negative numbers, fractional mtimes, xattrs). See `index.ts` for the rules.
 */
import { BLOCK, TarType, roundUp } from './parse';

export interface EncodeHeader {
  name: string;
  type: TarType;
  mode: number;
  uid?: number;
  gid?: number;
  uname?: string;
  gname?: string;
  size?: number;
  mtime?: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** Values written as `SCHILY.xattr.KEY` PAX records. */
  xattrs?: Record<string, Buffer>;
  /** Extra PAX records. */
  pax?: Record<string, string | Buffer>;
}

const TYPEFLAG: Record<TarType, string> = { file: '0', link: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6' };

function writeStr(b: Buffer, s: string, off: number, len: number): boolean {
  const bytes = Buffer.from(s, 'latin1');
  if (bytes.length > len) return false;
  bytes.copy(b, off);
  return true;
}

function writeOctal(b: Buffer, v: number, off: number, len: number): boolean {
  if (v < 0 || !Number.isInteger(v)) return false;
  const s = v.toString(8);
  if (s.length > len - 1) return false;
  b.write(s.padStart(len - 1, '0') + '\0', off, len, 'latin1');
  return true;
}

function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(' ' + key + '=', 'latin1'), value, Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len), 'latin1'), body]);
}

function ustarBlock(h: EncodeHeader, name: string, typeflag: string, size: number, pax: Map<string, Buffer>, linkname: string): Buffer {
  const b = Buffer.alloc(BLOCK);
  if (!writeStr(b, name, 0, 100)) {
    // try the ustar prefix split
    const bytes = Buffer.from(name, 'latin1');
    let ok = false;
    for (let i = bytes.length - 1; i > 0; i--) {
      if (bytes[i] !== 0x2f) continue;
      if (i <= 155 && bytes.length - i - 1 <= 100 && bytes.length - i - 1 > 0) {
        bytes.copy(b, 345, 0, i);
        bytes.copy(b, 0, i + 1);
        ok = true;
        break;
      }
    }
    if (!ok) {
      pax.set('path', Buffer.from(name, 'latin1'));
      writeStr(b, Buffer.from(name, 'latin1').subarray(0, 99).toString('latin1'), 0, 100);
    }
  }
  writeOctal(b, h.mode & 0o7777, 100, 8);
  for (const [v, off, key] of [[h.uid ?? 0, 108, 'uid'], [h.gid ?? 0, 116, 'gid']] as Array<[number, number, string]>) {
    if (!writeOctal(b, v, off, 8)) {
      pax.set(key, Buffer.from(String(v)));
      writeOctal(b, 0, off, 8);
    }
  }
  if (!writeOctal(b, size, 124, 12)) {
    pax.set('size', Buffer.from(String(size)));
    writeOctal(b, 0, 124, 12);
  }
  // fractional, negative or too large for octal: a PAX record, the octal field 0
  const mt = h.mtime ?? 0;
  const mti = Math.floor(mt);
  if (mt !== mti || !writeOctal(b, mti, 136, 12)) {
    pax.set('mtime', Buffer.from(formatPaxTime(mt)));
    writeOctal(b, mti >= 0 && mti <= 0o77777777777 ? mti : 0, 136, 12);
  }
  b.write(typeflag, 156, 1, 'latin1');
  if (!writeStr(b, linkname, 157, 100)) {
    pax.set('linkpath', Buffer.from(linkname, 'latin1'));
    writeStr(b, Buffer.from(linkname, 'latin1').subarray(0, 99).toString('latin1'), 157, 100);
  }
  b.write('ustar\0' + '00', 257, 8, 'latin1');
  for (const [s, off, key] of [[h.uname ?? '', 265, 'uname'], [h.gname ?? '', 297, 'gname']] as Array<[string, number, string]>) {
    if (!writeStr(b, s, off, 32)) pax.set(key, Buffer.from(s, 'latin1'));
  }
  writeOctal(b, h.devmajor ?? 0, 329, 8);
  writeOctal(b, h.devminor ?? 0, 337, 8);
  return b;
}

function formatPaxTime(t: number): string {
  const s = t.toFixed(9).replace(/\.?0+$/, '');
  return s;
}

function setChecksum(b: Buffer): void {
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i];
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
}

/**
 * Header block(s) for an entry: a PAX `x` header first when needed (long names,
 * xattrs, big ids, fractional mtime), then the ustar block. Payload + padding follow.
 */
export function encodeHeader(h: EncodeHeader): Buffer {
  const size = h.type === 'file' ? h.size ?? 0 : 0;
  const pax = new Map<string, Buffer>();
  const typeflag = TYPEFLAG[h.type];
  const main = ustarBlock(h, h.name, typeflag, size, pax, h.linkname ?? '');
  for (const [k, v] of Object.entries(h.xattrs ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) pax.set('SCHILY.xattr.' + k, v);
  for (const [k, v] of Object.entries(h.pax ?? {})) pax.set(k, typeof v === 'string' ? Buffer.from(v, 'latin1') : v);
  setChecksum(main);
  if (pax.size === 0) return main;
  const body = Buffer.concat([...pax.entries()].map(([k, v]) => paxRecord(k, v)));
  const xh = Buffer.alloc(BLOCK);
  const base = Buffer.from(h.name, 'latin1');
  const short = 'PaxHeaders/' + base.subarray(Math.max(0, base.length - 80)).toString('latin1').replace(/\//g, '_');
  writeStr(xh, short.slice(0, 99), 0, 100);
  writeOctal(xh, 0o644, 100, 8);
  writeOctal(xh, 0, 108, 8);
  writeOctal(xh, 0, 116, 8);
  writeOctal(xh, body.length, 124, 12);
  writeOctal(xh, Math.max(0, Math.floor(h.mtime ?? 0)), 136, 12);
  xh.write('x', 156, 1, 'latin1');
  xh.write('ustar\0' + '00', 257, 8, 'latin1');
  setChecksum(xh);
  return Buffer.concat([xh, body, Buffer.alloc(roundUp(body.length) - body.length), main]);
}

/** Padding after a payload of `size` bytes. */
export function padding(size: number): Buffer {
  return Buffer.alloc(roundUp(size) - size);
}

/** Two zero blocks. */
export const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK);
