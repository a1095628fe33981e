/**
 * FileBody (src/registry/filebody.ts): a file range sent from recycled buffers. The bytes arrive
 * exactly once and in order even when the receiver is slow (buffers are reused only after the
 * receiver took them); a file shorter than its range, a failing beforeEnd, or a missing file
 * destroy the receiver instead of ending it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as crypto from 'node:crypto';
import { Writable } from 'node:stream';
import { FileBody } from '../../../src/registry/filebody';
import { tmpDir, rmrf } from '../../helpers/cli';

/** A receiver that copies what it gets, taking `delayMs` per write. */
function receiver(delayMs = 0) {
  const parts: Buffer[] = [];
  let ended = false;
  let error: Error | undefined;
  const w = new Writable({
    highWaterMark: 1,
    write(chunk: Buffer, _e, cb) {
      const copy = Buffer.from(chunk);
      setTimeout(() => {
        parts.push(copy);
        cb();
      }, delayMs);
    },
    final(cb) {
      ended = true;
      cb();
    },
  });
  const done = new Promise<void>((res) => {
    w.on('finish', () => res());
    w.on('error', (e) => ((error = e), res()));
    w.on('close', () => res());
  });
  return { w, done, data: () => Buffer.concat(parts), ended: () => ended, error: () => error };
}

describe('FileBody', () => {
  let dir: string;
  let file: string;
  const data = crypto.randomBytes(5 * 1024 * 1024 + 123);
  beforeAll(() => {
    dir = tmpDir();
    file = path.join(dir, 'blob');
    fs.writeFileSync(file, data);
  });
  afterAll(() => rmrf(dir));

  it('sends a range exactly once, in order, to a slow receiver; onChunk sees the same bytes first', async () => {
    const r = receiver(1);
    const seen = crypto.createHash('sha256');
    let ends = 0;
    const b = new FileBody(file, 1000, data.length - 7, { what: 'blob x', onChunk: (c) => seen.update(c), beforeEnd: () => void ends++ });
    expect(b.length).toBe(data.length - 1007);
    b.pipeTo(r.w);
    await r.done;
    expect(r.error()).toBeUndefined();
    expect(r.data().equals(data.subarray(1000, data.length - 7))).toBe(true);
    expect(seen.digest('hex')).toBe(crypto.createHash('sha256').update(data.subarray(1000, data.length - 7)).digest('hex'));
    expect(ends).toBe(1);
  });

  it('a file shorter than its range destroys the receiver (never a short body), naming the blob', async () => {
    const r = receiver();
    new FileBody(file, 0, data.length + 10, { what: 'blob sha256:ab' }).pipeTo(r.w);
    await r.done;
    expect(r.ended()).toBe(false);
    expect(r.error()?.message).toMatch(/^blob sha256:ab: .* ended at byte \d+, before \d+/);
  });

  it('beforeEnd throwing (a digest that does not match) destroys the receiver instead of ending it', async () => {
    const r = receiver();
    new FileBody(file, 0, data.length, { what: 'blob y', beforeEnd: () => { throw new Error('digest mismatch'); } }).pipeTo(r.w);
    await r.done;
    expect(r.ended()).toBe(false);
    expect(r.error()?.message).toBe('digest mismatch');
    expect(r.data().length).toBe(data.length); // every byte went, but the body was never ended
  });

  it('a missing file is one clear error', async () => {
    const r = receiver();
    new FileBody(path.join(dir, 'gone'), 0, 10, { what: 'blob z' }).pipeTo(r.w);
    await r.done;
    expect(r.error()?.message).toMatch(/^blob z: opening .*gone: ENOENT/);
  });

  it('refuses a nonsense range', () => {
    expect(() => new FileBody(file, 10, 5, { what: 'b' })).toThrow(/bad file range/);
    expect(() => new FileBody(file, -1, 5, { what: 'b' })).toThrow(/bad file range/);
  });
});
