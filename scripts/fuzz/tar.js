'use strict';
/**
 * Byte-level tar model for the fuzzer: split an archive into records (header block + body,
 * PAX/GNU extension records grouped with the entry they describe), write it back, and
 * patch raw header fields (with or without fixing the checksum). Deliberately lenient: it
 * only has to understand the fixtures the fuzzer builds, never hostile input.
 */
const crypto = require('node:crypto');

const BLOCK = 512;
/** Header field offsets/lengths (ustar). */
const FIELDS = {
  name: [0, 100], mode: [100, 8], uid: [108, 8], gid: [116, 8], size: [124, 12], mtime: [136, 12],
  chksum: [148, 8], typeflag: [156, 1], linkname: [157, 100], magic: [257, 6], version: [263, 2],
  uname: [265, 32], gname: [297, 32], devmajor: [329, 8], devminor: [337, 8], prefix: [345, 155],
};
const EXTENSION = new Set(['x', 'g', 'L', 'K']);

const sha256hex = (b) => crypto.createHash('sha256').update(b).digest('hex');
const roundUp = (n) => Math.ceil(n / BLOCK) * BLOCK;

function cstr(buf) {
  const z = buf.indexOf(0);
  return buf.subarray(0, z < 0 ? buf.length : z).toString('utf8');
}

function parseSize(field) {
  if (field[0] & 0x80) {
    let n = 0;
    for (let i = 1; i < field.length; i++) n = n * 256 + field[i];
    return n;
  }
  const s = cstr(field).trim();
  return s ? parseInt(s, 8) : 0;
}

/** Split a (well-formed) tar into entries: { name, typeflag, header, data, ext: [{header, data}] }. */
function parseTar(buf) {
  const entries = [];
  let off = 0;
  let ext = [];
  let paxPath;
  while (off + BLOCK <= buf.length) {
    const header = buf.subarray(off, off + BLOCK);
    if (header.every((b) => b === 0)) break;
    const size = parseSize(header.subarray(124, 136));
    const typeflag = String.fromCharCode(header[156] || 48);
    const data = buf.subarray(off + BLOCK, off + BLOCK + size);
    off += BLOCK + roundUp(size);
    if (EXTENSION.has(typeflag)) {
      ext.push({ header: Buffer.from(header), data: Buffer.from(data), typeflag });
      if (typeflag === 'x') {
        const m = /\d+ path=([^\n]*)\n/.exec(data.toString('utf8'));
        if (m) paxPath = m[1];
      } else if (typeflag === 'L') paxPath = cstr(data);
      continue;
    }
    const prefix = cstr(header.subarray(345, 500));
    const name = paxPath ?? (prefix ? `${prefix}/${cstr(header.subarray(0, 100))}` : cstr(header.subarray(0, 100)));
    entries.push({ name, typeflag, header: Buffer.from(header), data: Buffer.from(data), ext });
    ext = [];
    paxPath = undefined;
  }
  return entries;
}

function checksum(header) {
  let s = 0;
  for (let i = 0; i < BLOCK; i++) s += i >= 148 && i < 156 ? 32 : header[i];
  return s;
}

function fixChecksum(header) {
  header.write(checksum(header).toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
  return header;
}

/** A fresh ustar header for a plain file (names here are short fixture paths). */
function fileHeader(name, size, typeflag = '0') {
  const h = Buffer.alloc(BLOCK);
  h.write(name.slice(0, 100), 0, 'utf8');
  h.write('0000644\0', 100, 'latin1');
  h.write('0000000\0', 108, 'latin1');
  h.write('0000000\0', 116, 'latin1');
  h.write(size.toString(8).padStart(11, '0') + '\0', 124, 'latin1');
  h.write('00000000000\0', 136, 'latin1');
  h.write(typeflag, 156, 'latin1');
  h.write('ustar\0' + '00', 257, 'latin1');
  return fixChecksum(h);
}

/** Give an entry new content/name: its header is rebuilt (size, name, checksum). */
function setEntry(e, { name = e.name, data = e.data } = {}) {
  e.name = name;
  e.data = data;
  e.header = fileHeader(name, data.length, e.typeflag === '5' ? '5' : e.typeflag);
  e.ext = e.ext.filter((x) => x.typeflag !== 'x' && x.typeflag !== 'L');
}

function writeRecord(header, data) {
  return [header, data, Buffer.alloc(roundUp(data.length) - data.length)];
}

/** Serialize entries back to a tar (two zero end blocks unless endBlocks is false). */
function writeTar(entries, { endBlocks = true } = {}) {
  const parts = [];
  for (const e of entries) {
    for (const x of e.ext) parts.push(...writeRecord(x.header, x.data));
    parts.push(...writeRecord(e.header, e.data));
  }
  if (endBlocks) parts.push(Buffer.alloc(2 * BLOCK));
  return Buffer.concat(parts);
}

/** Byte offsets where a header (or an interesting header field) starts, and where bodies start. */
function boundaries(buf) {
  const out = [];
  let off = 0;
  while (off + BLOCK <= buf.length) {
    const header = buf.subarray(off, off + BLOCK);
    if (header.every((b) => b === 0)) {
      out.push({ at: off, what: 'end-blocks' });
      out.push({ at: off + BLOCK, what: 'between-end-blocks' });
      break;
    }
    const name = cstr(header.subarray(0, 100));
    out.push({ at: off, what: `header of ${name}` });
    for (const f of ['mode', 'size', 'mtime', 'chksum', 'typeflag', 'linkname', 'magic', 'prefix']) out.push({ at: off + FIELDS[f][0], what: `${f} field of ${name}` });
    const size = parseSize(header.subarray(124, 136));
    out.push({ at: off + BLOCK, what: `body of ${name}` });
    if (size > 1) out.push({ at: off + BLOCK + Math.floor(size / 2), what: `middle of body of ${name}` });
    if (size > 0) out.push({ at: off + BLOCK + size, what: `end of body of ${name} (before padding)` });
    off += BLOCK + roundUp(size);
  }
  return out;
}

/** Header block offsets of every record (extension records included). */
function headerOffsets(buf) {
  return boundaries(buf).filter((b) => b.what.startsWith('header of ')).map((b) => b.at);
}

/** Overwrite a header field with raw bytes (padded with NULs to the field length). */
function patchField(buf, headerAt, field, bytes, { fix = true } = {}) {
  const [o, len] = FIELDS[field];
  const b = Buffer.alloc(len);
  Buffer.from(bytes).copy(b, 0, 0, len);
  b.copy(buf, headerAt + o);
  if (fix) fixChecksum(buf.subarray(headerAt, headerAt + BLOCK));
  return buf;
}

module.exports = { BLOCK, FIELDS, sha256hex, roundUp, parseTar, writeTar, setEntry, fileHeader, fixChecksum, boundaries, headerOffsets, patchField, cstr };
