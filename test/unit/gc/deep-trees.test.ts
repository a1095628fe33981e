/**
 * prune and fsck remove snapshot trees of any depth: a committed snapshot 1,990 directories
 * deep under a long store root (the deepest a layer may be), a stray snapshot directory and an
 * abandoned work directory 2,500 deep, all go through the iterative `removeTree` (src/tar) and
 * are measured iteratively; `fs.rmSync` recurses (stack overflow) and hands the kernel paths
 * over PATH_MAX (ENAMETOOLONG).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Store } from '../../../src/store';
import { prune, fsck } from '../../../src/gc';
import { unpackImage } from '../../../src/snapshots/ops';
import { rawTar } from '../../../src/builder/raw';
import { removeTree } from '../../../src/tar';
import { selfIdentity, tempOwnerTag } from '../../../src/leases/process';
import { tmpDir, rmrf } from '../../helpers/cli';
import { putImage } from '../snapshots/helpers';

jest.setTimeout(120_000);

let base: string;
let root: string;
let store: Store;
beforeEach(() => {
  base = tmpDir('imgtool-deep-gc-');
  root = base;
  while (root.length < 450) root = path.join(root, 'r'.repeat(50));
  fs.mkdirSync(root, { recursive: true });
  store = Store.open(root);
});
afterEach(() => {
  store.close();
  removeTree(base); // what a failed test leaves is too deep for rmrf
  rmrf(base);
});

function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(r.stdout.toString());
}

/** `dir/a/a/…/a/f` (`depth` directories, deeper than PATH_MAX), made iteratively from descriptors; returns the file's size. */
function deepTree(dir: string, depth: number): number {
  fs.mkdirSync(dir, { recursive: true });
  const fds: number[] = [];
  let anchor = dir;
  let rel = '';
  try {
    for (let i = 0; i < depth; i++) {
      rel = rel ? `${rel}/a` : 'a';
      fs.mkdirSync(path.join(anchor, rel));
      if (rel.length > 2000) {
        fds.push(fs.openSync(path.join(anchor, rel), 'r'));
        anchor = `/proc/self/fd/${fds[fds.length - 1]}`;
        rel = '';
      }
    }
    fs.writeFileSync(path.join(anchor, rel, 'f'), 'deep data');
  } finally {
    for (const fd of fds) fs.closeSync(fd);
  }
  return 'deep data'.length;
}

it('prune removes a committed snapshot 1,990 directories deep under a 450-byte store root', async () => {
  const p = Array.from({ length: 1990 }, () => 'a').join('/') + '/f';
  const name = 'example.com/deep:1';
  await putImage(store, name, [rawTar([{ name: p, data: 'deep', mode: 0o644, longNames: 'pax' }])]);
  const r = await unpackImage(store, name);
  const dir = path.dirname(store.snapshots.fsDir(r.chainId!));
  expect(fs.existsSync(dir)).toBe(true);
  store.images.delete(name);
  const res = prune(store);
  expect(res.snapshots.map((s) => s.chainId)).toEqual([r.chainId]);
  expect(fs.existsSync(dir)).toBe(false);
  expect(fs.readdirSync(path.join(root, 'snapshots')).filter((n) => n !== 'tmp')).toEqual([]);
  expect((await fsck(store)).problems).toEqual([]);
});

it('prune removes a stray snapshot directory and an abandoned work directory 2,500 deep, sized right', async () => {
  const stray = path.join(root, 'snapshots', 'e'.repeat(64));
  const strayBytes = deepTree(stray, 2500);
  const work = path.join(root, 'snapshots', 'tmp', `${tempOwnerTag({ ...selfIdentity(), pid: deadPid() })}-extract-x`);
  const workBytes = deepTree(work, 2500);
  const res = prune(store);
  // a stray snapshot directory is reported with the temp entries
  expect(res.tempFiles.sort((a, b) => (a.path < b.path ? -1 : 1))).toEqual([{ path: stray, size: strayBytes }, { path: work, size: workBytes }]);
  expect(fs.existsSync(work)).toBe(false);
  expect(fs.existsSync(stray)).toBe(false);
  expect(res.bytesFreed).toBeGreaterThanOrEqual(strayBytes + workBytes);
});

it('fsck --repair removes a stray snapshot directory and an abandoned work directory 2,500 deep', async () => {
  const stray = path.join(root, 'snapshots', 'f'.repeat(64));
  deepTree(stray, 2500);
  const work = path.join(root, 'snapshots', 'tmp', `${tempOwnerTag({ ...selfIdentity(), pid: deadPid() })}-extract-y`);
  const workBytes = deepTree(work, 2500);
  const r = await fsck(store, { repair: true });
  expect(r.problems.map((p) => [p.kind, p.repaired])).toEqual(expect.arrayContaining([['snapshot-unindexed', 'removed'], ['temp', 'removed']]));
  expect(r.problems.find((p) => p.kind === 'temp')!.message).toContain(`(${workBytes} bytes)`);
  expect(fs.existsSync(stray)).toBe(false);
  expect(fs.existsSync(work)).toBe(false);
  expect((await fsck(store)).problems).toEqual([]);
});
