import * as fs from 'node:fs';
import * as path from 'node:path';
import * as crypto from 'node:crypto';
import * as zlib from 'node:zlib';
import { MessageChannel, Worker } from 'node:worker_threads';
import { BATCH_BYTES, DECODER_SOURCE, ENCODER_SOURCE } from '../../../src/compression/transcode';
import { tmpDir, rmrf } from '../../helpers/cli';

/**
 * Prepended to the transcode encoder's source: delays every file write of the temp file
 * (the request sits in the thread pool) and reports writes and closes of its descriptor.
 */
const PATCH = String.raw`
{
  const { parentPort: pp, workerData: wd } = require('node:worker_threads');
  const fs = require('node:fs');
  const log = (e) => pp.postMessage({ type: 'log', e });
  let tmpFd = -1;
  const openSync = fs.openSync;
  fs.openSync = (p, ...a) => { const fd = openSync(p, ...a); if (p === wd.tmp) { tmpFd = fd; log('open'); } return fd; };
  const writev = fs.writev;
  fs.writev = (fd, bufs, ...rest) => {
    const cb = rest.pop();
    if (fd !== tmpFd) return writev(fd, bufs, ...rest, cb);
    log('writev-start');
    setTimeout(() => writev(fd, bufs, ...rest, (...r) => { log('writev-done' + (r[0] ? ' ' + r[0].code : '')); cb(...r); }), 300);
  };
  const closeSync = fs.closeSync;
  fs.closeSync = (fd) => { if (fd === tmpFd) log('close'); return closeSync(fd); };
  const close = fs.close;
  fs.close = (fd, cb) => { if (fd === tmpFd) log('close'); return close(fd, cb); };
}
`;

describe('transcode worker', () => {
  let dir: string;
  beforeEach(() => {
    dir = tmpDir();
  });
  afterEach(() => rmrf(dir));

  it('a decoding error mid-write closes the temp file only after the write in flight settled', async () => {
    // A truncated gzip stream: its data decodes (and is written) before the decoder fails at the end.
    const gz = zlib.gzipSync(crypto.randomBytes(100 * 1024));
    const src = path.join(dir, 'src.gz');
    fs.writeFileSync(src, gz.subarray(0, gz.length - 16));
    const tmp = path.join(dir, 'out.tmp');
    const { port1, port2 } = new MessageChannel();
    const zstdPath = require.resolve('zstd-napi');
    const events: string[] = [];
    const decoder = new Worker(DECODER_SOURCE, { eval: true, transferList: [port1], workerData: { src, inC: 'gzip', zstdPath, port: port1, batch: 16 * 1024, credits: 4, chunk: BATCH_BYTES } });
    const encoder = new Worker(PATCH + ENCODER_SOURCE, { eval: true, transferList: [port2], workerData: { outC: 'none', level: undefined, tmp, gzipOs: 3, zstd: undefined, zstdPath, port: port2 } });
    const exited = (w: Worker, who: string) => new Promise<void>((resolve, reject) => {
      w.on('message', (m: { type: string; e?: string; message?: string }) => {
        if (m.type === 'log') events.push(m.e!);
        else events.push(`${who} ${m.type}`);
      });
      w.on('error', reject);
      w.on('exit', () => resolve());
    });
    await Promise.all([exited(decoder, 'decoder'), exited(encoder, 'encoder')]);
    expect(events).toContain('decoder error'); // the decoder failed
    expect(events).toContain('encoder error'); // and stopped the encoder
    expect(events).toContain('writev-start'); // while a write was issued
    const firstClose = events.indexOf('close');
    expect(firstClose).toBeGreaterThan(0);
    // Every write of the temp file settled before its descriptor was closed.
    const starts = events.filter((e) => e === 'writev-start').length;
    const dones = events.slice(0, firstClose).filter((e) => e.startsWith('writev-done')).length;
    expect(dones).toBe(starts);
    expect(events.filter((e) => e === 'close')).toHaveLength(1);
    expect(events.slice(firstClose).filter((e) => e.startsWith('writev'))).toEqual([]);
    expect(fs.existsSync(tmp)).toBe(false);
  }, 20_000);
});
