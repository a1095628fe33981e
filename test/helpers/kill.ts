/**
 * Killing imgtool mid-unpack (SIGKILL: no cleanup can run) and checking it left nothing behind;
 * shared by the load and pull kill tests.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { spawn } from 'node:child_process';
import { BIN, runCli } from './cli';
import { tar } from '../unit/archive/import-fixtures';
import { sha256 } from '../../src';
import { MediaType } from '../../src/images/mediatypes';

/** A gzip layer of 40,000 small files: its unpack lasts long enough to be caught mid-way. */
export function slowUnpackLayer() {
  const files = Array.from({ length: 40000 }, (_, i) => ({ name: `d${i % 100}/f${i}`, data: `file ${i}\n`.repeat(40) }));
  const t = tar(files);
  const blob = zlib.gzipSync(t, { level: 1 });
  const digest = sha256(blob);
  return { tar: t, blob, digest, diffId: sha256(t), compression: 'gzip' as const, desc: { mediaType: MediaType.OCI_LAYER_GZIP, digest, size: blob.length } };
}

/** The store's snapshot work directory (where an unpack's `-extract-` directories live). */
export const snapshotTmp = (root: string) => path.join(root, 'snapshots', 'tmp');

/**
 * Run `imgtool ARGS` on the store `root` and SIGKILL it as soon as an unpack work directory
 * appears. Resolves once the process has exited; `killed` is false when it never unpacked.
 */
export async function killWhileUnpacking(args: string[], root: string, timeoutMs = 60_000): Promise<{ killed: boolean; pid: number }> {
  const tmp = snapshotTmp(root);
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, IMGTOOL_ROOT: root }, stdio: 'ignore' });
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  let killed = false;
  for (const end = Date.now() + timeoutMs; Date.now() < end && !killed && child.exitCode === null; ) {
    await new Promise((r) => setTimeout(r, 10));
    if (fs.existsSync(tmp) && fs.readdirSync(tmp).some((n) => n.includes('-extract-'))) {
      child.kill('SIGKILL');
      killed = true;
    }
  }
  await exited;
  return { killed, pid: child.pid! };
}

/** What a killed load or pull must leave: no name, a clean fsck, no work directory of the dead process. */
export async function expectKilledLeftNothing(root: string, pid: number): Promise<void> {
  const images = await runCli(['images', '--json'], { root });
  expect(images.code).toBe(0);
  expect(JSON.parse(images.stdout)).toEqual([]);
  const fsck = await runCli(['fsck'], { root });
  expect(fsck.code).toBe(0);
  expect(fs.readdirSync(snapshotTmp(root)).filter((n) => n.includes(`${pid}`))).toEqual([]);
}
