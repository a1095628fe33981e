/**
 * Interop: an image built with umoci (several layers: whiteouts, a dir replaced by a
 * file, hard links, symlinks incl. var/run -> /run, setuid, ownership, devices, long
 * names) is unpacked by imgtool; its merged tree must equal `umoci unpack`'s rootfs.
 * Then: every layer rebuilds exactly from its snapshot; after discarding the blobs, the
 * rebuilt layers make an image that unpacks (in another store) to the same tree.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { Store } from '../../src/store';
import { unpackImage, discardLayers, verifyRebuild, resolveImageLayers } from '../../src/snapshots/ops';
import { ensureLayer } from '../../src/layers';
import { exportRootfs } from '../../src/snapshots/export';
import { MediaType } from '../../src/images/mediatypes';
import { tmpDir, rmrf } from '../helpers/cli';
import { requirePeer } from '../helpers/peers';

const isRoot = process.getuid?.() === 0;

let work: string;
beforeAll(() => {
  work = tmpDir('imgtool-umoci-');
});
afterAll(() => rmrf(work));

const umoci = (...args: string[]) => execFileSync('umoci', args, { cwd: work, stdio: ['ignore', 'pipe', 'pipe'] });
const sha = (b: Buffer) => 'sha256:' + crypto.createHash('sha256').update(b).digest('hex');

function buildImage(): void {
  umoci('init', '--layout', 'L');
  umoci('new', '--image', 'L:t');
  umoci('unpack', ...(isRoot ? [] : ['--rootless']), '--image', 'L:t', 'B');
  const r = path.join(work, 'B', 'rootfs');
  const w = (p: string, data: string | Buffer, mode?: number) => {
    fs.mkdirSync(path.dirname(path.join(r, p)), { recursive: true });
    fs.writeFileSync(path.join(r, p), data);
    if (mode !== undefined) fs.chmodSync(path.join(r, p), mode);
  };
  // layer 1
  w('etc/passwd', 'root:x:0:0::/root:/bin/sh\n');
  w('etc/hosts', '127.0.0.1 localhost\n', 0o600);
  w('bin/tool', '#!/bin/sh\necho tool\n', 0o4755);
  fs.symlinkSync('tool', path.join(r, 'bin/link'));
  w('usr/lib/deep/a/b/c', 'deep');
  const long = 'usr/share/' + 'very-long-directory-name-'.repeat(4) + '/' + 'file-with-a-long-name-'.repeat(4);
  w(long, 'long');
  fs.linkSync(path.join(r, 'etc/passwd'), path.join(r, 'etc/hard'));
  fs.mkdirSync(path.join(r, 'run'));
  fs.mkdirSync(path.join(r, 'var'));
  fs.symlinkSync('/run', path.join(r, 'var/run'));
  w('data/keep', 'keep');
  w('data/gone', 'gone');
  w('data/sub/x', 'x');
  w('data/sub/y/z', 'z');
  w('empty', '');
  w('big.bin', crypto.randomBytes(1 << 20));
  fs.chmodSync(path.join(r, 'data'), 0o750);
  if (isRoot) {
    fs.chownSync(path.join(r, 'data/keep'), 1000, 1001);
    execFileSync('mknod', [path.join(r, 'null'), 'c', '1', '3']);
  }
  execFileSync('mkfifo', [path.join(r, 'fifo')]);
  fs.utimesSync(path.join(r, 'etc/hosts'), 1_500_000_000, 1_500_000_000);
  umoci('repack', '--refresh-bundle', '--image', 'L:t', 'B');
  // layer 2: whiteouts, modified hard-linked file, dir replaced by a file, new files (not through var/run!)
  fs.rmSync(path.join(r, 'data/gone'));
  fs.rmSync(path.join(r, 'data/sub'), { recursive: true });
  fs.writeFileSync(path.join(r, 'etc/passwd'), 'root:x:0:0::/root:/bin/ash\n');
  fs.rmSync(path.join(r, 'usr/lib/deep'), { recursive: true });
  w('usr/lib/deep', 'now a file');
  w('run/app.pid', '42');
  fs.chmodSync(path.join(r, 'etc/hosts'), 0o640);
  w('opt/app/bin/run', 'run', 0o755);
  umoci('repack', '--refresh-bundle', '--image', 'L:t', 'B');
  // layer 3: a symlink replaced by a file, a hard link removed, a new symlink chain
  fs.rmSync(path.join(r, 'bin/link'));
  w('bin/link', 'not a link anymore');
  fs.rmSync(path.join(r, 'etc/hard'));
  fs.symlinkSync('../opt/app', path.join(r, 'usr/app'));
  fs.symlinkSync('usr/app/bin/run', path.join(r, 'run-app'));
  fs.linkSync(path.join(r, 'opt/app/bin/run'), path.join(r, 'opt/app/bin/run2'));
  umoci('repack', '--refresh-bundle', '--image', 'L:t', 'B');
  umoci('unpack', ...(isRoot ? [] : ['--rootless']), '--image', 'L:t', 'REF');
}

/** Load the OCI layout's blobs and its image into a store. */
async function loadLayout(store: Store, layout: string, name: string): Promise<void> {
  const dir = path.join(layout, 'blobs', 'sha256');
  for (const hex of fs.readdirSync(dir)) {
    const buf = fs.readFileSync(path.join(dir, hex));
    await store.content.ingestBuffer(buf, { digest: 'sha256:' + hex });
  }
  const idx = JSON.parse(fs.readFileSync(path.join(layout, 'index.json'), 'utf8'));
  const m = idx.manifests.find((d: { annotations?: Record<string, string> }) => d.annotations?.['org.opencontainers.image.ref.name'] === 't');
  store.images.put(name, { mediaType: m.mediaType, digest: m.digest, size: m.size });
}

interface Ent {
  type: string;
  perm: number;
  uid: number;
  gid: number;
  mtime: number;
  link?: string;
  sha?: string;
  rdev?: number;
  ino: number;
}

function scan(rootDir: string): Map<string, Ent> {
  const out = new Map<string, Ent>();
  const visit = (rel: string) => {
    for (const n of fs.readdirSync(path.join(rootDir, rel)).sort()) {
      const p = rel ? rel + '/' + n : n;
      const full = path.join(rootDir, p);
      const st = fs.lstatSync(full);
      const type = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSymbolicLink() ? 'symlink' : st.isFIFO() ? 'fifo' : st.isCharacterDevice() ? 'char' : st.isBlockDevice() ? 'block' : 'other';
      const e: Ent = { type, perm: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: Math.floor(st.mtimeMs / 1000), ino: st.ino };
      if (type === 'symlink') e.link = fs.readlinkSync(full);
      if (type === 'file') e.sha = sha(fs.readFileSync(full));
      if (type === 'char' || type === 'block') e.rdev = st.rdev;
      out.set(p, e);
      if (type === 'dir') visit(p);
    }
  };
  visit('');
  return out;
}

/** Hard-link groups as sorted lists of paths. */
function linkGroups(m: Map<string, Ent>): string[][] {
  const by = new Map<number, string[]>();
  for (const [p, e] of m) if (e.type === 'file') by.set(e.ino, [...(by.get(e.ino) ?? []), p]);
  return [...by.values()].filter((g) => g.length > 1).map((g) => g.sort()).sort();
}

function compareTrees(mine: string, ref: string): void {
  const a = scan(mine);
  const b = scan(ref);
  expect([...a.keys()]).toEqual([...b.keys()]);
  for (const [p, eb] of b) {
    const ea = a.get(p)!;
    const strip = (e: Ent) => ({ ...e, ino: 0, mtime: e.type === 'dir' ? 0 : e.mtime });
    expect({ path: p, ...strip(ea) }).toEqual({ path: p, ...strip(eb) });
  }
  expect(linkGroups(a)).toEqual(linkGroups(b));
}

describe('umoci interop', () => {
  it('imgtool unpack of a umoci image equals umoci unpack; layers rebuild exactly; round trip after discarding blobs', async () => {
    if (!requirePeer('umoci')) return;
    buildImage();
    const root = path.join(work, 'store');
    const store = Store.open(root);
    try {
      await loadLayout(store, path.join(work, 'L'), 'example.com/umoci:t');
      const r = await unpackImage(store, 'example.com/umoci:t');
      expect(r.layers).toHaveLength(3);
      expect(r.layers.every((l) => l.applied)).toBe(true);
      const mine = path.join(work, 'mine');
      await exportRootfs(store, 'example.com/umoci:t', { dir: mine });
      const ref = path.join(work, 'REF', 'rootfs');
      compareTrees(mine, ref);
      const refScan = scan(ref);
      expect(refScan.get('run/app.pid')!.sha).toBe(sha(Buffer.from('42')));
      expect(refScan.get('var/run')!.link).toBe('/run');
      expect(refScan.size).toBeGreaterThan(25);
      expect(refScan.has('data/gone') || refScan.has('data/sub') || refScan.has('etc/hard')).toBe(false);
      expect(refScan.get('usr/lib/deep')!.type).toBe('file');
      expect(refScan.get('bin/tool')!.perm).toBe(0o4755);
      expect(linkGroups(refScan)).toEqual([['opt/app/bin/run', 'opt/app/bin/run2']]);
      if (isRoot) expect(refScan.get('null')!.type).toBe('char');
      // the comparison is not vacuous
      fs.writeFileSync(path.join(mine, 'etc/passwd'), 'changed');
      expect(() => compareTrees(mine, ref)).toThrow();

      // exact rebuild of every layer, then discard the blobs
      const img = await resolveImageLayers(store, 'example.com/umoci:t');
      for (const l of img.layers) await verifyRebuild(store, l.diffId);
      const discarded = await discardLayers(store, 'example.com/umoci:t');
      expect(discarded.every((d) => d.freed > 0 && !store.content.has(d.digest))).toBe(true);

      // rebuild blobs (gzip, as the originals) and make a new image in another store
      const root2 = path.join(work, 'store2');
      const store2 = Store.open(root2);
      try {
        const layers = [];
        for (const l of img.layers) {
          const b = await ensureLayer(store, l.diffId, { compression: 'gzip', mediaType: MediaType.OCI_LAYER_GZIP });
          await store2.content.ingest(store.content.openRead(b.digest), { digest: b.digest, size: b.size });
          layers.push({ mediaType: MediaType.OCI_LAYER_GZIP, digest: b.digest, size: b.size });
        }
        const cfg = await store.content.readBuffer(img.manifest.config.digest);
        await store2.content.ingestBuffer(cfg);
        const mb = Buffer.from(JSON.stringify({ ...img.manifest, layers }));
        await store2.content.ingestBuffer(mb);
        store2.images.put('example.com/umoci:rebuilt', { mediaType: MediaType.OCI_MANIFEST, digest: sha(mb), size: mb.length });
        const r2 = await unpackImage(store2, 'example.com/umoci:rebuilt');
        expect(r2.layers.map((l) => l.diffId)).toEqual(img.layers.map((l) => l.diffId));
        expect(r2.chainId).toBe(r.chainId);
        const mine2 = path.join(work, 'mine2');
        await exportRootfs(store2, 'example.com/umoci:rebuilt', { dir: mine2 });
        compareTrees(mine2, ref);
      } finally {
        store2.close();
      }
    } finally {
      store.close();
    }
  });
});
