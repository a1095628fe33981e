'use strict';
/**
 * Case generator: (seed archives, PRNG) -> one hostile archive + the command to drive.
 *
 * Mutations work on the seed's tar model (./tar.js). "Consistent" mutations (a changed
 * document, a replaced layer) re-hash the blob, rename its entry and rewrite every JSON
 * document that names it (descriptor digest/size, config diff_ids, manifest.json paths),
 * recursively up to index.json, so the archive still verifies at the content level and
 * the hostile part reaches the code behind it (schema checks, layer apply, save, export).
 */
const path = require('node:path');
const zlib = require('node:zlib');
const crypto = require('node:crypto');
const { Readable } = require('node:stream');
const T = require('./tar');

const MiB = 1024 * 1024;
const pick = (rng, a) => a[Math.floor(rng() * a.length)];
const int = (rng, n) => Math.floor(rng() * n);
function weighted(rng, table) {
  const total = table.reduce((n, [w]) => n + w, 0);
  let r = rng() * total;
  for (const [w, v] of table) if ((r -= w) < 0) return v;
  return table[table.length - 1][1];
}
const sha = (b) => 'sha256:' + T.sha256hex(b);

// ---- the archive model -------------------------------------------------------------

function tryJson(buf) {
  if (!buf.length || buf.length > 4 * MiB || (buf[0] !== 0x7b && buf[0] !== 0x5b)) return undefined;
  try {
    return JSON.parse(buf.toString('utf8'));
  } catch {
    return undefined;
  }
}

function walkObjects(v, fn) {
  if (Array.isArray(v)) v.forEach((x) => walkObjects(x, fn));
  else if (v && typeof v === 'object') {
    fn(v);
    Object.values(v).forEach((x) => walkObjects(x, fn));
  }
}

/** Replace an entry's bytes and fix every reference to it (recursively). */
function setContent(model, entry, bytes, { mediaType } = {}) {
  const oldHex = T.sha256hex(entry.data);
  const newHex = T.sha256hex(bytes);
  const name = entry.name.includes(oldHex) ? entry.name.split(oldHex).join(newHex) : entry.name;
  T.setEntry(entry, { name, data: bytes });
  if (oldHex === newHex) return;
  for (const other of model) {
    if (other === entry || !other.data.includes(oldHex)) continue;
    let text = other.data.toString('utf8').split(oldHex).join(newHex);
    const doc = tryJson(Buffer.from(text));
    if (doc !== undefined) {
      walkObjects(doc, (o) => {
        if (o.digest === `sha256:${newHex}`) {
          if (typeof o.size === 'number') o.size = bytes.length;
          if (mediaType) o.mediaType = mediaType;
        }
      });
      text = JSON.stringify(doc);
    }
    setContent(model, other, Buffer.from(text));
  }
}

const byName = (model, name) => model.find((e) => e.name === name);
const blobEntry = (model, digest) => typeof digest === 'string' && byName(model, `blobs/sha256/${digest.replace(/^sha256:/, '')}`);

/** Every layer of every manifest: { entry, config, index, mediaType, docker } (looked up afresh each time). */
function layerRefs(model) {
  const out = [];
  for (const e of model) {
    const doc = tryJson(e.data);
    if (!doc) continue;
    if (Array.isArray(doc.layers) && doc.config) {
      doc.layers.forEach((l, i) => {
        const le = blobEntry(model, l.digest);
        const ce = blobEntry(model, doc.config.digest);
        if (le && ce) out.push({ entry: le, config: ce, index: i, mediaType: l.mediaType });
      });
    } else if (e.name === 'manifest.json' && Array.isArray(doc)) {
      for (const m of doc) {
        (m.Layers || []).forEach((p, i) => {
          const le = byName(model, p);
          const ce = byName(model, m.Config);
          if (le && ce && !out.some((o) => o.entry === le)) out.push({ entry: le, config: ce, index: i, docker: true });
        });
      }
    }
  }
  return out;
}

function layerMediaType(old, compression) {
  const docker = typeof old === 'string' && old.startsWith('application/vnd.docker');
  if (docker && compression === 'gzip') return 'application/vnd.docker.image.rootfs.diff.tar.gzip';
  if (docker && compression === 'none') return 'application/vnd.docker.image.rootfs.diff.tar';
  return 'application/vnd.oci.image.layer.v1.tar' + (compression === 'none' ? '' : `+${compression}`);
}

/** Replace layer `ref` by `blob` whose uncompressed digest is `diffId`, keeping the archive consistent. */
function replaceLayer(model, ref, blob, diffId, compression) {
  const cdoc = tryJson(ref.config.data);
  if (cdoc && cdoc.rootfs && Array.isArray(cdoc.rootfs.diff_ids) && diffId) {
    cdoc.rootfs.diff_ids[ref.index] = diffId;
    const layerHex = T.sha256hex(ref.entry.data);
    setContent(model, ref.config, Buffer.from(JSON.stringify(cdoc)));
    ref.entry = model.find((e) => T.sha256hex(e.data) === layerHex && e.typeflag === '0') || ref.entry;
  }
  setContent(model, ref.entry, blob, { mediaType: ref.docker ? undefined : compression ? layerMediaType(ref.mediaType, compression) : undefined });
}

// ---- codecs ------------------------------------------------------------------------

let C;
function codecs(dist) {
  if (!C) C = require(path.join(dist, 'src', 'builder', 'index.js'));
  return C;
}
async function compress(dist, buf, c) {
  if (c === 'none') return buf;
  if (c === 'gzip') return zlib.gzipSync(buf);
  return codecs(dist).compressBuffer(buf, c);
}

/** Stream `chunks` (a generator of Buffers) through a compressor, also hashing the plain bytes. */
async function compressChunks(dist, c, gen) {
  const { compressStream } = require(path.join(dist, 'src', 'compression', 'codecs.js'));
  const z = compressStream(c, c === 'gzip' ? 9 : 19);
  const h = crypto.createHash('sha256');
  const out = [];
  const done = new Promise((resolve, reject) => {
    z.on('data', (d) => out.push(d));
    z.on('end', resolve);
    z.on('error', reject);
  });
  for (const chunk of gen()) {
    h.update(chunk);
    if (!z.write(chunk)) await new Promise((r) => z.once('drain', r));
  }
  z.end();
  await done;
  return { blob: Buffer.concat(out), diffId: 'sha256:' + h.digest('hex') };
}

const bombCache = new Map();
/** A compressed tar holding one file of `size` zero bytes (kind 'tar'), or just zeros ('zeros'). */
function bomb(dist, c, size, kind) {
  const key = `${c}:${size}:${kind}`;
  if (!bombCache.has(key)) {
    bombCache.set(key, compressChunks(dist, c, function* () {
      if (kind === 'tar') yield T.fileHeader('bomb', size);
      const zero = Buffer.alloc(MiB);
      for (let n = 0; n < size; n += MiB) yield n + MiB <= size ? zero : zero.subarray(0, size - n);
      if (kind === 'tar') yield Buffer.alloc(T.roundUp(size) - size + 1024);
    }));
  }
  return bombCache.get(key);
}

// ---- hostile tar headers -------------------------------------------------------------

const BAD_NUMBERS = ['-1', '-9223372036854775808', '1e30', '99999999999999999999999', 'abc', '', ' ', '0x10', '1.5', 'NaN', 'Infinity', '+5', '1_000', '\u0000'];
const BAD_PATHS = ['..', '../escape', '/etc/evil', 'a/../../b', '', '.', '/', 'a\u0000b', 'x'.repeat(5000), 'a/'.repeat(2000) + 'f', 'dir/.wh...', '.wh..wh..opq', 'etc/.wh.', 'a\nb', '\u202e/evil'];
const NUMERIC_FIELDS = ['size', 'mtime', 'uid', 'gid', 'mode', 'devmajor', 'devminor'];

/** Raw bytes for a numeric header field: GNU base-256 (negative, huge), non-octal, unterminated. */
function badField(rng, len) {
  const v = int(rng, 8);
  const b = Buffer.alloc(len);
  switch (v) {
    case 0: b.fill(0xff); return { bytes: b, what: 'base-256 -1' };
    case 1: b[0] = 0x80; b.fill(0xff, 1); return { bytes: b, what: 'base-256 huge' };
    case 2: b[0] = 0xff; b[1] = 0x80; return { bytes: b, what: 'base-256 negative' };
    case 3: b.write('12345678z1'.slice(0, len - 1), 'latin1'); return { bytes: b, what: 'non-octal digit' };
    case 4: b.fill(0x20); return { bytes: b, what: 'all spaces' };
    case 5: b.fill(0x37); return { bytes: b, what: 'octal without terminator (max)' };
    case 6: b.write('-0000001'.slice(0, len), 'latin1'); return { bytes: b, what: 'minus sign' };
    default: b.write('8'.repeat(len - 1), 'latin1'); return { bytes: b, what: 'digit 8' };
  }
}

/** A hostile layer (or archive) tar: returns { buf, detail }. */
function hostileTar(dist, rng, baseEntries = []) {
  const { rawTar } = codecs(dist);
  const ok = [{ name: 'etc/', type: 'dir' }, { name: 'etc/ok', data: 'ok\n' }];
  const kind = int(rng, 14);
  let entries;
  let detail;
  let patch;
  const file = (name, extra = {}) => ({ name, data: 'data\n', ...extra });
  switch (kind) {
    case 0: {
      const key = pick(rng, ['size', 'mtime', 'uid', 'gid', 'atime', 'ctime', 'SCHILY.devmajor', 'SCHILY.devminor', 'GNU.sparse.size', 'GNU.sparse.numblocks']);
      const val = pick(rng, BAD_NUMBERS);
      entries = [...ok, file('etc/f', { pax: { [key]: val } })];
      detail = `PAX ${key}=${JSON.stringify(val)}`;
      break;
    }
    case 1: {
      const key = pick(rng, ['path', 'linkpath']);
      const val = pick(rng, BAD_PATHS);
      entries = [...ok, key === 'path' ? file('etc/f', { pax: { path: val } }) : { name: 'etc/l', type: pick(rng, ['symlink', 'hardlink']), linkname: 'x', pax: { linkpath: val } }];
      detail = `PAX ${key}=${JSON.stringify(val.length > 40 ? val.slice(0, 20) + `…(${val.length})` : val)}`;
      break;
    }
    case 2: {
      // malformed PAX record syntax
      const body = pick(rng, ['999 path=x\n', '-5 path=x\n', 'abc path=x\n', '10 pathx\n', '5 a=b\n', '0 \n', '18 path=etc/zzzzz', '12 =value\n', '9999999999999999999 path=a\n']);
      entries = [...ok, { name: 'PaxHeaders/f', typeflag: 'x', data: body }, file('etc/f')];
      detail = `malformed PAX record ${JSON.stringify(body)}`;
      break;
    }
    case 3: {
      const field = pick(rng, NUMERIC_FIELDS);
      const bad = badField(rng, T.FIELDS[field][1]);
      entries = [...ok, file('etc/f', { type: pick(rng, ['file', 'file', 'char', 'dir']) })];
      patch = { index: entries.length - 1, field, bytes: bad.bytes, fix: rng() < 0.85 };
      detail = `${field} field ${bad.what}${patch.fix ? '' : ', bad checksum'}`;
      break;
    }
    case 4: {
      const tf = pick(rng, ['L', 'K']);
      const size = pick(rng, [1e9, 2 ** 40, 0, 7]);
      entries = [...ok, { name: '././@LongLink', typeflag: tf, data: 'etc/long-name', size }, file('etc/f')];
      detail = `GNU ${tf} record declaring ${size} bytes`;
      break;
    }
    case 5: {
      const tf = pick(rng, ['S', 'Z', 'V', 'M', 'D', '\u0000', 'g', '7', 'A']);
      entries = [...ok, { name: 'etc/odd', typeflag: tf, data: 'zz\n', pax: tf === 'S' ? { 'GNU.sparse.map': '0,1,abc' } : undefined }];
      detail = `typeflag ${JSON.stringify(tf)}`;
      break;
    }
    case 6: {
      const v = pick(rng, ['symlink-escape', 'hardlink-missing', 'hardlink-self', 'hardlink-dir', 'file-then-dir', 'dir-then-file', 'symlink-then-file', 'hardlink-outside']);
      const E = {
        'symlink-escape': [{ name: 'etc/', type: 'dir' }, { name: 'etc/x', type: 'symlink', linkname: '/tmp' }, file('etc/x/evil')],
        'hardlink-missing': [{ name: 'etc/h', type: 'hardlink', linkname: 'no/such/file' }],
        'hardlink-self': [{ name: 'etc/h', type: 'hardlink', linkname: 'etc/h' }],
        'hardlink-dir': [{ name: 'etc/', type: 'dir' }, { name: 'etc/h', type: 'hardlink', linkname: 'etc' }],
        'file-then-dir': [file('etc'), { name: 'etc/', type: 'dir' }, file('etc/f')],
        'dir-then-file': [{ name: 'etc/', type: 'dir' }, file('etc/f'), file('etc')],
        'symlink-then-file': [{ name: 'lnk', type: 'symlink', linkname: '../../../../tmp/x' }, file('lnk')],
        'hardlink-outside': [{ name: 'etc/h', type: 'hardlink', linkname: '../../../../etc/passwd' }],
      };
      entries = E[v];
      detail = `links: ${v}`;
      break;
    }
    case 7: {
      const size = pick(rng, [1 << 20, 2 ** 33, 1]);
      entries = [...ok, { name: 'etc/big', data: 'short', size }];
      detail = `declared size ${size} > body`;
      break;
    }
    case 8: {
      const n = pick(rng, [500, 3000]);
      entries = [{ name: 'd/', type: 'dir' }];
      for (let i = 0; i < n; i++) entries.push({ name: `d/${i}`, data: '' });
      detail = `${n} empty files`;
      break;
    }
    case 9: {
      const depth = pick(rng, [200, 1500]);
      entries = [file('a/'.repeat(depth) + 'f', { longNames: 'pax' })];
      detail = `path depth ${depth}`;
      break;
    }
    case 10: {
      const w = pick(rng, ['.wh...', '.wh..wh..opq', 'etc/.wh.', 'etc/.wh...wh..opq', '.wh.etc/x', 'etc/.wh.ok/']);
      entries = [...ok, { name: w, data: '', type: w.endsWith('/') ? 'dir' : 'file' }];
      detail = `whiteout ${JSON.stringify(w)}`;
      break;
    }
    case 11: {
      entries = [...ok, { name: 'dev/', type: 'dir' }, { name: 'dev/x', type: pick(rng, ['char', 'block']), devmajor: 2097151, devminor: 2097151 }, { name: 'etc/suid', data: 'x', mode: 0o7777 }, { name: 'etc/big-id', data: 'x', uid: 2097151, gid: 2097151 }];
      detail = 'max device numbers, mode 7777, max ids';
      break;
    }
    case 12: {
      const key = pick(rng, ['SCHILY.xattr.security.capability', 'SCHILY.xattr.user.' + 'k'.repeat(300), 'SCHILY.xattr.', 'LIBARCHIVE.xattr.user.x', 'SCHILY.xattr.trusted.x', 'SCHILY.xattr.user.big']);
      const val = key.endsWith('big') ? Buffer.alloc(200000, 1) : Buffer.from([0xff, 0, 1]);
      entries = [...ok, file('etc/x', { pax: { [key]: val } })];
      detail = `xattr ${key.slice(0, 40)} (${val.length} bytes)`;
      break;
    }
    default: {
      entries = [...ok, file('etc/f'), file('etc/f', { data: 'again' }), { name: 'etc/f', type: 'dir' }];
      detail = 'same path three times (file, file, dir)';
    }
  }
  const all = [...baseEntries, ...entries];
  const endBlocks = rng() < 0.9;
  let buf;
  try {
    buf = Buffer.from(rawTar(all, { endBlocks }));
  } catch (e) {
    // The encoder refused (it validates some fields): write sane values, then patch raw.
    buf = Buffer.from(rawTar(all.map((x) => ({ ...x, devmajor: 0, devminor: 0, uid: 0, gid: 0 })), { endBlocks }));
  }
  if (patch) {
    const offs = T.headerOffsets(buf);
    const at = offs[offs.length - 1];
    T.patchField(buf, at, patch.field, patch.bytes, { fix: patch.fix });
  }
  return { buf, detail: detail + (endBlocks ? '' : ', no end blocks') };
}

// ---- JSON mutations ------------------------------------------------------------------

const ODD_VALUES = [null, -1, 0, 1e308, -1e308, 2 ** 53 + 1, 1.5, '', 'x', '-1', true, [], {}, [1, 2], { a: 1 }, 'a'.repeat(10000)];
const ODD_DIGESTS = [
  '', 'sha256:', 'sha256:abc', 'SHA256:' + 'a'.repeat(64), 'sha256:' + 'A'.repeat(64), 'sha512:' + 'a'.repeat(128), 'md5:' + 'a'.repeat(32),
  'sha256:' + 'g'.repeat(64), 'sha256:../../../../etc/passwd', 'a'.repeat(64), 'sha256:' + 'a'.repeat(63) + ' ', ' sha256:' + 'a'.repeat(64),
  'sha256:' + 'a'.repeat(65), 'sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564', 'sha256:' + '0'.repeat(64) + '\n', 'blake3:' + 'a'.repeat(64),
];
const MEDIA_TYPES = [
  'application/vnd.oci.image.index.v1+json', 'application/vnd.oci.image.manifest.v1+json', 'application/vnd.oci.image.config.v1+json',
  'application/vnd.oci.image.layer.v1.tar', 'application/vnd.oci.image.layer.v1.tar+gzip', 'application/vnd.oci.image.layer.v1.tar+zstd',
  'application/vnd.docker.distribution.manifest.v2+json', 'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.container.image.v1+json', 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  'application/vnd.docker.distribution.manifest.v1+prettyjws', 'application/vnd.in-toto+json', 'text/plain', '', 'x', 'application/vnd.oci.image.layer.v1.tar+bzip2',
];

/** Paths of every value in a JSON document: [[key, key, ...], ...]. */
function valuePaths(doc, prefix = [], out = []) {
  if (doc && typeof doc === 'object') {
    for (const [k, v] of Object.entries(doc)) {
      const p = [...prefix, Array.isArray(doc) ? Number(k) : k];
      out.push(p);
      if (out.length < 400) valuePaths(v, p, out);
    }
  }
  return out;
}
function getAt(doc, p) {
  return p.reduce((o, k) => (o == null ? undefined : o[k]), doc);
}
function setAt(doc, p, v) {
  const parent = getAt(doc, p.slice(0, -1));
  if (parent && typeof parent === 'object') {
    if (v === undefined) {
      if (Array.isArray(parent)) parent.splice(p[p.length - 1], 1);
      else delete parent[p[p.length - 1]];
    } else parent[p[p.length - 1]] = v;
  }
}

function jsonEntriesOf(model) {
  return model.filter((e) => e.typeflag === '0' && tryJson(e.data) !== undefined);
}

// ---- the mutators --------------------------------------------------------------------

/** Each: (ctx) => description string; mutates ctx.model (entries) or sets ctx.bytes (raw tar). */
const MUTATORS = {
  bitflip(ctx) {
    const buf = ctx.raw();
    const n = 1 + int(ctx.rng, 8);
    const offs = T.headerOffsets(buf);
    const at = [];
    for (let i = 0; i < n; i++) {
      const o = ctx.rng() < 0.5 && offs.length ? pick(ctx.rng, offs) + int(ctx.rng, 512) : int(ctx.rng, buf.length);
      buf[o] ^= 1 << int(ctx.rng, 8);
      at.push(o);
    }
    return `flipped ${n} bit(s) at ${at.join(',')}`;
  },
  truncate(ctx) {
    const buf = ctx.raw();
    const b = pick(ctx.rng, T.boundaries(buf));
    ctx.bytes = buf.subarray(0, b.at);
    return `truncated at ${b.at} (${b.what})`;
  },
  reorder(ctx) {
    const m = ctx.model;
    const how = int(ctx.rng, 3);
    if (how === 0) {
      for (let i = m.length - 1; i > 0; i--) {
        const j = int(ctx.rng, i + 1);
        [m[i], m[j]] = [m[j], m[i]];
      }
      return 'shuffled all entries';
    }
    const i = int(ctx.rng, m.length);
    const [e] = m.splice(i, 1);
    if (how === 1) m.unshift(e);
    else m.push(e);
    return `moved ${e.name} to the ${how === 1 ? 'front' : 'end'}`;
  },
  duplicate(ctx) {
    const m = ctx.model;
    const i = int(ctx.rng, m.length);
    const e = m[i];
    const copy = { ...e, ext: [...e.ext], header: Buffer.from(e.header) };
    const how = int(ctx.rng, 3);
    if (how === 1 && e.data.length) T.setEntry(copy, { data: Buffer.concat([e.data.subarray(0, e.data.length - 1), Buffer.from([e.data[e.data.length - 1] ^ 1])]) });
    if (how === 2) copy.typeflag = e.typeflag === '5' ? '0' : '5', T.setEntry(copy, { data: Buffer.alloc(0) });
    m.splice(int(ctx.rng, m.length + 1), 0, copy);
    return `duplicated ${e.name}${['', ' with other bytes', ' with another type'][how]}`;
  },
  json(ctx) {
    const docs = jsonEntriesOf(ctx.model);
    if (!docs.length) return undefined;
    const e = pick(ctx.rng, docs);
    const doc = tryJson(e.data);
    const how = int(ctx.rng, 6);
    let text;
    let what;
    if (how === 0) {
      text = e.data.toString('utf8').slice(0, int(ctx.rng, e.data.length));
      what = `cut to ${text.length} chars`;
    } else if (how === 1) {
      const depth = pick(ctx.rng, [1000, 100000]);
      text = '['.repeat(depth) + ']'.repeat(depth);
      what = `nested ${depth} deep`;
    } else if (how === 2) {
      text = JSON.stringify(pick(ctx.rng, [null, 1, 'x', [], {}, [null], { manifests: null }, { schemaVersion: 2, manifests: [{}] }, [{ Config: null, Layers: [null] }]]));
      what = `replaced by ${text}`;
    } else {
      const paths = valuePaths(doc);
      if (!paths.length) return undefined;
      const p = pick(ctx.rng, paths);
      const v = how === 3 ? undefined : pick(ctx.rng, ODD_VALUES);
      setAt(doc, p, v);
      if (how === 5) doc['\u0000'] = 'x', doc.__proto__x = 1;
      text = JSON.stringify(doc);
      what = how === 3 ? `deleted ${p.join('.')}` : `set ${p.join('.')} = ${JSON.stringify(v)?.slice(0, 30)}`;
    }
    if (ctx.rng() < 0.6) setContent(ctx.model, e, Buffer.from(text));
    else T.setEntry(e, { data: Buffer.from(text) });
    return `${e.name.replace(/[0-9a-f]{64}/, (h) => h.slice(0, 12))}: ${what}`;
  },
  'json-oversize'(ctx) {
    const docs = jsonEntriesOf(ctx.model);
    const e = pick(ctx.rng, docs);
    const doc = tryJson(e.data);
    const pad = 'x'.repeat(20 * MiB + 16);
    if (Array.isArray(doc)) doc.push(pad);
    else doc.padding = pad;
    setContent(ctx.model, e, Buffer.from(JSON.stringify(doc)));
    return `${e.name.replace(/[0-9a-f]{64}/, (h) => h.slice(0, 12))} padded past 20 MiB`;
  },
  descriptor(ctx) {
    // a descriptor's mediaType / size / digest changed (and its parents re-hashed)
    const docs = jsonEntriesOf(ctx.model).filter((e) => e.data.includes('"digest"'));
    if (!docs.length) return undefined;
    const e = pick(ctx.rng, docs);
    const doc = tryJson(e.data);
    const descs = [];
    walkObjects(doc, (o) => typeof o.digest === 'string' && descs.push(o));
    if (!descs.length) return undefined;
    const d = pick(ctx.rng, descs);
    const field = pick(ctx.rng, ['mediaType', 'size', 'digest', 'platform', 'urls']);
    let v;
    if (field === 'mediaType') v = pick(ctx.rng, [...MEDIA_TYPES, undefined]);
    else if (field === 'size') v = pick(ctx.rng, [d.size + 1, d.size - 1, 0, -1, 2 ** 53, 1e300, 1.5, '5', null, undefined, 21 * MiB]);
    else if (field === 'digest') v = pick(ctx.rng, [...ODD_DIGESTS, undefined, 7, null]);
    else if (field === 'platform') v = pick(ctx.rng, [{ os: '', architecture: '' }, { os: 'linux', architecture: 'amd64', variant: 7 }, { os: 'linux' }, 'linux/amd64', null, { os: '../x', architecture: 'a/b/c/d' }]);
    else v = pick(ctx.rng, [['http://127.0.0.1:1/x'], 'http://x', [7], []]);
    if (v === undefined) delete d[field];
    else d[field] = v;
    setContent(ctx.model, e, Buffer.from(JSON.stringify(doc)));
    return `${e.name.replace(/[0-9a-f]{64}/, (h) => h.slice(0, 12))}: descriptor ${String(d.digest).slice(0, 19)} ${field} = ${JSON.stringify(v)?.slice(0, 40)}`;
  },
  'outer-header'(ctx) {
    const buf = ctx.raw();
    const offs = T.headerOffsets(buf);
    const at = pick(ctx.rng, offs);
    const field = pick(ctx.rng, NUMERIC_FIELDS);
    const bad = badField(ctx.rng, T.FIELDS[field][1]);
    T.patchField(buf, at, field, bad.bytes, { fix: ctx.rng() < 0.85 });
    return `archive header at ${at}: ${field} field ${bad.what}`;
  },
  'outer-pax'(ctx) {
    const { rawTar } = codecs(ctx.dist);
    const i = int(ctx.rng, ctx.model.length);
    const e = ctx.model[i];
    const key = pick(ctx.rng, ['size', 'path', 'mtime', 'uid', 'linkpath', 'size']);
    const val = key.endsWith('path') ? pick(ctx.rng, BAD_PATHS) : pick(ctx.rng, BAD_NUMBERS);
    const pax = Buffer.from(rawTar([{ name: 'PaxHeaders/x', data: '' , pax: { [key]: val } }], { endBlocks: false }));
    // the PAX record(s) of rawTar come before its own (empty) file entry: keep only the x record
    const recs = T.parseTar(Buffer.concat([pax, Buffer.alloc(1024)]));
    e.ext = [...recs[0].ext, ...e.ext];
    return `PAX ${key}=${JSON.stringify(val.slice(0, 30))} before ${e.name.replace(/[0-9a-f]{64}/, (h) => h.slice(0, 12))}`;
  },
  'layer-hostile'(ctx) {
    const refs = layerRefs(ctx.model);
    if (!refs.length) return undefined;
    const ref = pick(ctx.rng, refs);
    const { buf, detail } = hostileTar(ctx.dist, ctx.rng);
    const c = ref.docker ? 'none' : pick(ctx.rng, ['gzip', 'zstd', 'none']);
    ctx.pending = compress(ctx.dist, buf, c).then((blob) => replaceLayer(ctx.model, ref, blob, sha(buf), c));
    return `layer ${ref.index + 1} replaced (${c}): ${detail}`;
  },
  'layer-bomb'(ctx) {
    const refs = layerRefs(ctx.model);
    if (!refs.length) return undefined;
    const ref = pick(ctx.rng, refs.filter((r) => !r.docker).length ? refs.filter((r) => !r.docker) : refs);
    const c = ref.docker ? 'none' : pick(ctx.rng, ['gzip', 'zstd']);
    const size = pick(ctx.rng, ctx.bombSizes);
    const kind = pick(ctx.rng, ['tar', 'tar', 'zeros']);
    if (c === 'none') {
      // an uncompressed docker layer cannot be a bomb: a tar whose one file declares `size` but has little data
      const { buf } = { buf: Buffer.concat([T.fileHeader('bomb', size), Buffer.alloc(4096)]) };
      replaceLayer(ctx.model, ref, buf, sha(buf), 'none');
      return `layer ${ref.index + 1}: uncompressed tar declaring ${size} bytes, 4 KiB present`;
    }
    const nested = ctx.rng() < 0.2;
    ctx.pending = bomb(ctx.dist, c, size, kind).then(async (b) => {
      const blob = nested ? zlib.gzipSync(b.blob) : b.blob;
      replaceLayer(ctx.model, ref, blob, b.diffId, nested ? 'gzip' : c);
    });
    return `layer ${ref.index + 1}: ${nested ? 'gzip of ' : ''}${c} bomb of ${size / MiB} MiB (${kind})`;
  },
  'layer-garbage'(ctx) {
    const refs = layerRefs(ctx.model);
    if (!refs.length) return undefined;
    const ref = pick(ctx.rng, refs);
    const how = int(ctx.rng, 5);
    const tar = codecs(ctx.dist).rawTar([{ name: 'etc/', type: 'dir' }, { name: 'etc/f', data: 'hello\n' }]);
    if (how === 0) {
      const blob = crypto.createHash('sha512').update(String(ctx.rng())).digest();
      replaceLayer(ctx.model, ref, blob, sha(blob), 'gzip');
      return `layer ${ref.index + 1}: 64 random bytes as gzip`;
    }
    if (how === 1) {
      ctx.pending = compress(ctx.dist, Buffer.from(tar), 'zstd').then((blob) => replaceLayer(ctx.model, ref, blob, sha(tar), ref.docker ? undefined : 'gzip'));
      return `layer ${ref.index + 1}: zstd data labelled gzip`;
    }
    if (how === 2) {
      const blob = zlib.gzipSync(tar);
      replaceLayer(ctx.model, ref, blob, sha(crypto.randomBytes(0)), ref.docker ? undefined : 'gzip');
      return `layer ${ref.index + 1}: diffID is the empty digest`;
    }
    if (how === 3) {
      const blob = zlib.gzipSync(tar).subarray(0, 30);
      replaceLayer(ctx.model, ref, blob, sha(tar), ref.docker ? undefined : 'gzip');
      return `layer ${ref.index + 1}: gzip stream cut short`;
    }
    const blob = Buffer.concat([zlib.gzipSync(tar), Buffer.from('trailing garbage')]);
    replaceLayer(ctx.model, ref, blob, sha(tar), ref.docker ? undefined : 'gzip');
    return `layer ${ref.index + 1}: gzip with trailing garbage`;
  },
  config(ctx) {
    const refs = layerRefs(ctx.model);
    if (!refs.length) return undefined;
    const ref = pick(ctx.rng, refs);
    const doc = tryJson(ref.config.data);
    if (!doc) return undefined;
    const how = int(ctx.rng, 6);
    let what;
    if (how === 0) doc.rootfs.diff_ids.pop(), (what = 'one diff_id fewer');
    else if (how === 1) doc.rootfs.diff_ids.push(doc.rootfs.diff_ids[0]), (what = 'one diff_id more');
    else if (how === 2) doc.rootfs.diff_ids = pick(ctx.rng, [null, 'x', [null], [7], {}]), (what = `diff_ids = ${JSON.stringify(doc.rootfs.diff_ids)}`);
    else if (how === 3) doc.rootfs.diff_ids[ref.index] = pick(ctx.rng, ODD_DIGESTS), (what = `diff_id ${ref.index} = ${JSON.stringify(doc.rootfs.diff_ids[ref.index]).slice(0, 30)}`);
    else if (how === 4) delete doc.rootfs, (what = 'no rootfs');
    else doc.architecture = pick(ctx.rng, ['', null, 7, 'arm64']), doc.os = pick(ctx.rng, ['', 'windows', null, 'linux']), (what = `os/arch ${doc.os}/${doc.architecture}`);
    setContent(ctx.model, ref.config, Buffer.from(JSON.stringify(doc)));
    return `config of layer ${ref.index + 1}: ${what}`;
  },
  'wrapper-bomb'(ctx) {
    const size = pick(ctx.rng, ctx.bombSizes);
    ctx.wrapBomb = size;
    return `archive followed by ${size / MiB} MiB of zeros inside the wrapper`;
  },
};

const TABLE = [
  [3, 'bitflip'], [3, 'truncate'], [2, 'reorder'], [2, 'duplicate'], [4, 'json'], [0.15, 'json-oversize'], [4, 'descriptor'],
  [2, 'outer-header'], [1.5, 'outer-pax'], [6, 'layer-hostile'], [1, 'layer-bomb'], [2, 'layer-garbage'], [2, 'config'], [0.4, 'wrapper-bomb'],
];
const COMMANDS = ['verify', 'ls-archive', 'load', 'load --no-unpack', 'unpack', 'export-rootfs', 'save'];
const LAYER_COMMANDS = ['verify', 'load', 'unpack', 'unpack', 'export-rootfs', 'export-rootfs', 'save'];

/**
 * Case `n` of run seed `seed`: { seed, n, seedName, mutation, detail, wrap, command, strict, bytes }.
 * A pure function of (seed, n, seeds, bombSizes).
 */
async function makeCase({ dist, seeds, seed, n, prng, bombSizes, only }) {
  const rng = prng((Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(n + 1, 0x85ebca6b)) >>> 0);
  const s = pick(rng, seeds);
  const ctx = { rng, dist, bombSizes, model: T.parseTar(s.buf), bytes: undefined };
  ctx.raw = () => {
    if (!ctx.bytes) ctx.bytes = T.writeTar(ctx.model);
    return ctx.bytes;
  };
  let mutation;
  let detail;
  for (let tries = 0; tries < 5 && !detail; tries++) {
    mutation = only ? pick(rng, only) : weighted(rng, TABLE);
    detail = MUTATORS[mutation](ctx);
  }
  if (ctx.pending) await ctx.pending;
  let bytes = ctx.bytes ?? T.writeTar(ctx.model);
  const layerish = mutation.startsWith('layer') || mutation === 'config';
  let command = pick(rng, layerish ? LAYER_COMMANDS : COMMANDS);
  const strict = command === 'verify' && rng() < 0.5;
  const wrap = ctx.wrapBomb ? pick(rng, ['gzip', 'zstd']) : weighted(rng, [[6, 'none'], [1, 'gzip'], [1, 'zstd']]);
  if (ctx.wrapBomb) {
    const b = await bomb(dist, wrap, ctx.wrapBomb, 'zeros');
    bytes = Buffer.concat([await compress(dist, bytes, wrap), b.blob]);
  } else if (wrap !== 'none') {
    bytes = await compress(dist, bytes, wrap);
    // sometimes damage the compressed stream itself
    if (rng() < 0.15) {
      bytes = rng() < 0.5 ? bytes.subarray(0, int(rng, bytes.length)) : Buffer.from(bytes).fill(0, int(rng, bytes.length), undefined);
      detail += `; ${wrap} stream damaged`;
    }
  }
  return { seed, n, seedName: s.name, mutation, detail, wrap, command: strict ? 'verify --strict' : command, bytes };
}

module.exports = { makeCase, MUTATORS, COMMANDS, hostileTar, setContent, layerRefs };
