import * as fs from 'node:fs';
import * as path from 'node:path';
import { Store, sha256 } from '../../../src';
import { acquireProcessLease, withCommandLease } from '../../../src/leases';
import { tmpDir, rmrf } from '../../helpers/cli';

const MIN = 60_000;
const BOUND = 10 * MIN; // the documented heartbeat bound

describe('process lease heartbeat, seen from its holder', () => {
  let dir: string;
  let store: Store;
  beforeEach(() => {
    dir = tmpDir();
    store = Store.open(dir);
  });
  afterEach(() => {
    jest.restoreAllMocks();
    store.close();
    rmrf(dir);
  });

  it('a holder that was silent longer than the bound fails its next commit and commits nothing', async () => {
    const lease = acquireProcessLease(store);
    await store.content.ingestBuffer(Buffer.from('before the freeze'), { lease });
    // The process was frozen (SIGSTOP, a paused container) for longer than the bound:
    // a prune in another namespace may have judged it dead meanwhile.
    const t = Date.now() + BOUND + MIN;
    jest.spyOn(Date, 'now').mockReturnValue(t);
    const data = Buffer.from('after the freeze');
    await expect(store.content.ingestBuffer(data, { lease })).rejects.toThrow(new RegExp(`lease "${lease.id}" expired: no heartbeat for \\d+ s`));
    expect(store.content.list().map((b) => b.size)).toEqual([Buffer.byteLength('before the freeze')]);
    // Not even a file at the blob's final path, and its temp file is gone.
    expect(fs.existsSync(store.content.blobPath(sha256(data)))).toBe(false);
    expect(fs.readdirSync(store.content.ingestDir)).toEqual([]);
    expect(() => store.images.put('x/y:1', { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: store.content.list()[0].digest, size: 1 }, lease)).toThrow(/expired/);
    expect(store.images.list()).toEqual([]);
    lease.release();
  });

  it('a holder whose lease was reclaimed (heartbeat file removed) fails its next commit', async () => {
    const lease = acquireProcessLease(store);
    const beat = path.join(dir, 'leases', lease.id);
    expect(fs.existsSync(beat)).toBe(true);
    fs.rmSync(beat);
    await expect(store.content.ingestBuffer(Buffer.from('x'), { lease })).rejects.toThrow(new RegExp(`lease "${lease.id}" expired: its heartbeat file was removed`));
    expect(store.content.list()).toEqual([]);
    lease.release();
  });

  it('a command whose process lease was removed fails at its next commit with a clear error', async () => {
    await expect(
      withCommandLease(store, undefined, async (holder) => {
        for (const l of store.leases.list()) store.leases.remove(l.id);
        await store.content.ingestBuffer(Buffer.from('y'), { lease: holder });
      }),
    ).rejects.toThrow(/lease "process-\d+-[0-9a-f]+" no longer exists/);
    expect(store.content.list()).toEqual([]);
  });

  it('the heartbeat file is created with the lease and removed on release', () => {
    const lease = acquireProcessLease(store);
    const beat = path.join(dir, 'leases', lease.id);
    expect(Date.now() - fs.statSync(beat).mtimeMs).toBeLessThan(MIN);
    lease.release();
    expect(fs.existsSync(beat)).toBe(false);
  });
});
