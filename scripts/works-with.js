#!/usr/bin/env node
/**
 * Render the README's "Works with" table from test/interop/works-with.json — the outcomes the
 * interop tests (test/interop/docker-load.test.ts, podman-load.test.ts) assert for every save case:
 * `loads: one+two` (each loaded image's ID, diffIDs and /app tree checked) or `fails: <message>`.
 *
 *   node scripts/works-with.js            # markdown on stdout
 *
 * To update the data after a peer changes: IMGTOOL_WORKS_WITH_RECORD=1 npx jest
 * test/interop/docker-load.test.ts test/interop/podman-load.test.ts writes what the engines did
 * to .cache/works-with.<peer>.json; review it and copy the results into works-with.json.
 */
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const data = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'test', 'interop', 'works-with.json'), 'utf8'));
const FORMATS = ['oci+docker', 'oci', 'docker'];
const COLUMNS = [
  ['keep-one', 'one image, keep'],
  ['gzip-one', 'gzip'],
  ['zstd-one', 'zstd'],
  ['none-one', 'uncompressed'],
  ['keep-two', 'two images'],
  ['keep-multi', 'multi-platform'],
  ['keep-subset', '`--platform` subset'],
  ['keep-two-one+zst', 'gzip + zstd image'],
];

function cell(peer, format, col) {
  if (format === 'docker' && col === 'zstd-one') return 'refused by imgtool';
  const v = data.table[peer]?.[`${format}-${col}`];
  if (v === undefined) return '—';
  if (v.startsWith('fails: ')) return `✗${format === 'oci+docker' && /zst/.test(col) ? ' (imgtool warns)' : ''} \`${v.slice(7)}\``;
  const loads = v.replace(/^loads: /, '');
  const named = / \(named localhost\/NAME\)$/.test(loads);
  const keys = loads.replace(/ \(.*\)$/, '').split('+');
  const expected = col.startsWith('keep-two-one+zst') ? ['one', 'zst'] : col.endsWith('-two') ? ['one', 'two'] : [col.endsWith('-one') ? 'one' : 'multi'];
  const missing = expected.filter((k) => !keys.includes(k));
  let s = missing.length ? `✓ only ${keys.join(', ')} (${missing.join(', ')} left out, warned)` : '✓';
  if (col === 'keep-multi' || col === 'keep-subset') s += ' (host platform)';
  if (named) s += ' as `localhost/NAME`';
  return s;
}

const out = [];
out.push('| client | `save --format` | ' + COLUMNS.map((c) => c[1]).join(' | ') + ' |');
out.push('|' + ' --- |'.repeat(COLUMNS.length + 2));
for (const peer of Object.keys(data.table)) {
  const p = data.peers[peer];
  for (const f of FORMATS) {
    out.push(`| ${peer} ${p.version} | ${f} | ` + COLUMNS.map(([c]) => cell(peer, f, c)).join(' | ') + ' |');
  }
}
out.push('');
out.push('✓: loaded, and each image\'s ID (config digest), diffIDs and file tree checked; ✗: the client fails loudly (its message); —: not tested.');
for (const peer of Object.keys(data.notes ?? {})) for (const n of data.notes[peer]) out.push(`- ${peer}: ${n}`);
process.stdout.write(out.join('\n') + '\n');
