/**
 * `imgtool load` and `imgtool verify` on hostile or broken archives: a clear one-line
 * error, a non-zero exit, and nothing registered.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { sha256 } from '../../src';
import { runCli, tmpDir, rmrf } from '../helpers/cli';
import { makeImage, makeLayer, ociImageArchive, ociArchive, blobEntry, tar, tarHeader, OCI_LAYOUT, ownStderr } from '../unit/archive/import-fixtures';

const img = makeImage({ layers: [makeLayer({ f: 'x'.repeat(3000) }, 'none')] });
const good = ociImageArchive(img, 'x.io/a:1');
const wrong = sha256('other');

const cases: Array<[string, Buffer, RegExp]> = [
  ['truncated inside a blob', good.subarray(0, good.indexOf(Buffer.from(`blobs/sha256/${img.layers[0].digest.slice(7)}`)) + 512 + 1000), /is truncated: entry "blobs\/sha256\/[0-9a-f]{64}" declares \d+ bytes but the input ends after \d+/],
  ['truncated inside a header', good.subarray(0, 1100), /is truncated/],
  ['truncated before the end marker', good.subarray(0, good.length - 1024), /is truncated: it ends after entry "index.json" without the end-of-archive marker/],
  ['blob bytes do not match the name', tar([OCI_LAYOUT, blobEntry(img.config.bytes, wrong)]), new RegExp(`digest mismatch: expected ${wrong}, got ${img.config.digest}`)],
  ['manifest references a missing blob', ociArchive([{ ...img.manifest.desc, annotations: { 'io.containerd.image.name': 'x.io/a:1' } }], [blobEntry(img.manifest.bytes), blobEntry(img.layers[0].blob)]), new RegExp(`x.io/a:1: config ${img.config.digest} of manifest sha256:[0-9a-f]{12} is not in the archive`)],
  ['manifest.json names an absent file', tar([{ name: 'manifest.json', data: JSON.stringify([{ Config: 'c.json', RepoTags: ['a:1'], Layers: [] }]) }]), /a:1: config "c.json" named in manifest.json is not in the archive/],
  ['../ path', tar([{ name: '../../etc/cron.d/x', data: 'x' }]), /escapes the archive with ".."/],
  ['absolute path', tar([{ name: '/etc/passwd', data: 'x' }]), /has an absolute path/],
  ['huge declared size', Buffer.concat([tarHeader({ name: 'blobs/sha256/' + 'b'.repeat(64) }, 8 * 1024 ** 3 - 1), Buffer.alloc(2048)]), /declares 8589934591 bytes but the input ends after 2048/],
  ['invalid JSON', tar([OCI_LAYOUT, { name: 'index.json', data: '{"manifests":' }]), /index.json is not valid JSON/],
  ['a non-tar file', Buffer.from('#!/bin/sh\necho this is not an archive\n'.repeat(40)), /is not a tar archive/],
  ['zero-length input', Buffer.alloc(0), /is empty/],
  ['gzip-wrapped, truncated', zlib.gzipSync(good).subarray(0, 200), /gzip stream is truncated/],
];

describe('hostile archives (CLI)', () => {
  let dir: string;
  let root: string;
  // A fresh store per case: content ingested before a failure stays (prune removes it) and
  // would legitimately satisfy a later archive's references.
  beforeEach(() => {
    dir = tmpDir('imgtool-bad-cli-');
    root = path.join(dir, 'store');
  });
  afterEach(() => rmrf(dir));

  it.each(cases)('load: %s', async (_name, buf, re) => {
    const f = path.join(dir, 'in.tar');
    fs.writeFileSync(f, buf);
    const r = await runCli(['load', '-i', f], { root });
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('');
    const lines = ownStderr(r.stderr).trimEnd().split('\n').filter((l) => !l.startsWith('imgtool: warning:'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^imgtool: error: /);
    expect(lines[0]).toMatch(re);
    const imgs = await runCli(['images', '--json'], { root });
    expect(JSON.parse(imgs.stdout)).toEqual([]);
  });

  it('verify lists every problem of a broken archive and exits non-zero', async () => {
    const f = path.join(dir, 'multi.tar');
    fs.writeFileSync(f, tar([OCI_LAYOUT, blobEntry(img.config.bytes, wrong), { name: '/abs', data: 'x' }, { name: 'index.json', data: JSON.stringify({ schemaVersion: 2, manifests: [{ ...img.manifest.desc, annotations: { 'io.containerd.image.name': 'x.io/a:1' } }] }) }]));
    const r = await runCli(['verify', f], { root });
    expect(r.code).not.toBe(0);
    expect(r.stdout).toMatch(/FAILED: 3 problem\(s\)/);
    expect(ownStderr(r.stderr)).toMatch(/^imgtool: error: .*multi.tar: 3 problem\(s\)\n  .*digest mismatch.*\n  .*absolute path.*\n  x.io\/a:1: manifest sha256:[0-9a-f]{64} listed in the index is not in the archive\n$/);
  });
});
