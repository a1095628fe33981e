'use strict';
/**
 * What counts as a clear error line (the classification `src/cli/base.ts` makes visible:
 * it prints an ImgtoolError's message and its `details`, one per line). Shared by the fuzz
 * workers and the jest tests that replay the corpus.
 *
 * A line is unclear when it is empty or spans lines, says `undefined` / `NaN` /
 * `[object …]`, carries raw Node/V8/zlib/zstd/SQLite text (errno codes, `ERR_*`, TypeError
 * phrasing, stack frames), or shows a path inside the store (its temp dirs above all) or
 * inside the process's temp dir.
 */

const RAW = [
  [/\bE(NOENT|EXIST|ACCES|PERM|ISDIR|NOTDIR|NOTEMPTY|INVAL|MFILE|NOSPC|LOOP|NAMETOOLONG|XDEV|BADF|PIPE|OVERFLOW|FBIG|ROFS|AGAIN|IO)\b/, 'errno code'],
  [/\bERR_[A-Z0-9_]{3,}\b/, 'Node ERR_ code'],
  [/\bSQLITE_[A-Z_]+\b/, 'SQLite code'],
  [/Cannot read propert|Cannot set propert|is not a function|is not iterable|is not a constructor|Cannot convert|Cannot destructure|is not defined\b/, 'TypeError text'],
  [/Maximum call stack|Invalid array length|Invalid string length|Cannot create a string longer|Array buffer allocation failed|Invalid typed array length|out of memory|heap limit/i, 'RangeError text'],
  [/incorrect header check|invalid (block type|distance|stored block|code lengths|literal|window size|bit length)|unexpected end of file|too many length or distance|header crc mismatch|incorrect data check|incorrect length check/i, 'zlib text'],
  [/Unknown frame descriptor|Corrupted block|Data corruption detected|Src size is incorrect|Restored data doesn't match checksum|Unsupported frame parameter|Frame requires too much memory|Destination buffer is too small/i, 'zstd text'],
  [/\n\s+at .+:\d+:\d+/, 'stack trace'],
  [/The "\w+" argument|The value of "\w+" is out of range|received type/i, 'Node argument validation text'],
];

/** Why `line` is not a clear one-line error (undefined when it is). */
function unclearReason(line, { storeRoot, tmpDirs = [] } = {}) {
  if (typeof line !== 'string') return `not a string (${typeof line})`;
  if (!line.trim()) return 'empty';
  if (/[\r\n]/.test(line)) return 'more than one line';
  // Untrusted strings are quoted (JSON-style) in messages: a quoted "NaN" is the input speaking.
  const unquoted = line.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  if (/\bundefined\b/.test(unquoted)) return 'says "undefined"';
  if (/\bNaN\b/.test(unquoted)) return 'says "NaN"';
  if (/\[object \w+\]/.test(line)) return 'says "[object …]"';
  for (const [re, what] of RAW) if (re.test(line)) return `raw ${what}`;
  if (storeRoot && line.includes(storeRoot + '/')) {
    const p = line.slice(line.indexOf(storeRoot + '/'));
    return /\/(ingest|tmp|quarantine)\//.test(p) || /\.tmp-/.test(p) ? 'shows a store-internal temp path' : 'shows a path inside the store';
  }
  for (const d of tmpDirs) if (d && line.includes(d)) return 'shows a temp path';
  if (/\.tmp-[\w-]+/.test(line)) return 'shows a temp file name';
  return undefined;
}

/**
 * Classify a thrown value the way a user sees it. Returns
 * { ok, name, code, message, details, problem? } where `problem` names the failure class.
 */
function classifyError(err, isImgtoolError, ctx) {
  const info = {
    name: err && err.name ? String(err.name) : typeof err,
    code: err && err.code !== undefined ? String(err.code) : undefined,
    message: err && err.message !== undefined ? String(err.message) : String(err),
    details: err && Array.isArray(err.details) ? err.details.map(String) : [],
  };
  if (!isImgtoolError(err)) return { ...info, problem: { class: 'raw-error', detail: `${info.name}${info.code ? ` (${info.code})` : ''}: ${info.message.split('\n')[0].slice(0, 300)}` } };
  if (info.code === 'INTERNAL') return { ...info, problem: { class: 'internal-error', detail: info.message.slice(0, 300) } };
  const r = unclearReason(info.message, ctx);
  if (r) return { ...info, problem: { class: 'unclear-message', detail: `${r}: ${info.message.slice(0, 300)}` } };
  for (const d of info.details) {
    const rd = unclearReason(d, ctx);
    if (rd) return { ...info, problem: { class: 'unclear-message', detail: `detail line ${rd}: ${d.slice(0, 300)}` } };
  }
  return info;
}

/** Normalised signature of a failure, to keep one corpus file per distinct failure. */
function signature(cls, detail) {
  return `${cls}|${String(detail)
    .replace(/sha256:[0-9a-f]{6,64}/g, 'sha256:H')
    .replace(/[0-9a-f]{12,64}/g, 'H')
    .replace(/\/[^\s"':]+/g, '/P')
    .replace(/\d+/g, 'N')
    .slice(0, 160)}`;
}

module.exports = { unclearReason, classifyError, signature };
