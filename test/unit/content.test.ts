import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import * as crypto from 'node:crypto';
import { Store, sha256, ImgtoolError } from '../../src';
import { tmpDir, rmrf } from '../helpers/cli';

describe('content store', () => {
  let dir: string;
  let store: Store;
  beforeEach(() => {
    dir = tmpDir();
    store = Store.open(dir);
  });
  afterEach(() => {
    store.close();
    rmrf(dir);
  });

  it('ingests, verifies and reads back a blob', async () => {
    const data = Buffer.from('hello world');
    const info = await store.content.ingestBuffer(data, { digest: sha256(data), size: data.length });
    expect(info.digest).toBe(sha256(data));
    expect(store.content.has(info.digest)).toBe(true);
    expect((await store.content.readBuffer(info.digest)).toString()).toBe('hello world');
    expect(fs.readdirSync(store.content.ingestDir)).toEqual([]);
  });

  it('rejects a digest mismatch and leaves nothing behind', async () => {
    const data = Buffer.from('abc');
    const wrong = sha256('abd');
    await expect(store.content.ingestBuffer(data, { digest: wrong })).rejects.toThrow(/digest mismatch.*expected sha256:/);
    expect(store.content.has(wrong)).toBe(false);
    expect(store.content.has(sha256(data))).toBe(false);
    expect(fs.readdirSync(store.content.ingestDir)).toEqual([]);
  });

  it('rejects a size mismatch (too long and too short)', async () => {
    const data = Buffer.from('abcdef');
    await expect(store.content.ingestBuffer(data, { size: 3 })).rejects.toThrow(/size mismatch/);
    await expect(store.content.ingestBuffer(data, { size: 10 })).rejects.toThrow(/size mismatch/);
    expect(store.content.list()).toEqual([]);
  });

  it('two concurrent ingests of the same digest both succeed with one blob', async () => {
    const chunks = Array.from({ length: 64 }, (_, i) => Buffer.alloc(64 * 1024, i));
    const all = Buffer.concat(chunks);
    const d = sha256(all);
    const other = Store.open(dir);
    try {
      const [a, b] = await Promise.all([
        store.content.ingest(Readable.from(chunks), { digest: d }),
        other.content.ingest(Readable.from(chunks), { digest: d }),
      ]);
      expect(a.digest).toBe(d);
      expect(b.digest).toBe(d);
    } finally {
      other.close();
    }
    expect(store.content.list().map((x) => x.digest)).toEqual([d]);
    expect(fs.readdirSync(path.dirname(store.content.blobPath(d)))).toEqual([d.slice(7)]);
  });

  it('streams a verified read and detects corruption on disk', async () => {
    const data = Buffer.from('payload');
    const { digest } = await store.content.ingestBuffer(data);
    fs.chmodSync(store.content.blobPath(digest), 0o644);
    fs.writeFileSync(store.content.blobPath(digest), 'paylaod');
    const rs = store.content.openRead(digest, { verify: true });
    await expect((async () => { for await (const _ of rs) { /* drain */ } })()).rejects.toThrow(/digest mismatch/);
  });

  it('end(chunk) hashes and counts the last chunk like write() does', async () => {
    const data = Buffer.from('first part, last part');
    const w = store.content.writer();
    w.write(data.subarray(0, 11));
    w.end(data.subarray(11));
    await new Promise<void>((res, rej) => w.once('finish', () => res()).once('error', rej));
    const info = await w.commit();
    expect(info).toMatchObject({ digest: sha256(data), size: data.length });
    expect(fs.readFileSync(store.content.blobPath(info.digest)).equals(data)).toBe(true);
  });


  it('absorb() copies: the caller reuses its buffer at once, the blob is still exact; slabs stay bounded; write() after absorb() keeps the order', async () => {
    const data = crypto.randomBytes(9 * 1024 * 1024 + 333);
    const w = store.content.writer({ digest: sha256(Buffer.concat([data, Buffer.from('tail')])), size: data.length + 4 });
    const reused = Buffer.alloc(200 * 1024);
    let waits = 0;
    for (let off = 0; off < data.length; off += reused.length) {
      const n = data.copy(reused, 0, off, off + reused.length);
      const more = w.absorb(reused.subarray(0, n));
      reused.fill(0xee); // the writer must not have kept a reference
      if (!more) {
        waits++;
        await w.ready();
      }
    }
    w.end(Buffer.from('tail'));
    await new Promise<void>((res, rej) => w.once('finish', () => res()).once('error', rej));
    const info = await w.commit();
    expect(info.size).toBe(data.length + 4);
    expect(waits).toBeGreaterThan(0);
    expect((w as unknown as { slabCount: number }).slabCount).toBeLessThanOrEqual(4);
  });

  it('absorb() past the expected size fails the writer, and ready() then rejects instead of hanging', async () => {
    const w = store.content.writer({ size: 10 });
    w.on('error', () => undefined);
    w.absorb(Buffer.alloc(20));
    w.end();
    await new Promise((r) => w.once('close', r));
    await expect(w.ready()).rejects.toThrow(/size mismatch/);
    await w.abort();
    expect(fs.readdirSync(store.content.ingestDir)).toEqual([]);
  });
  it('the already-present fast path rewrites a stored file whose size is wrong (or that is gone)', async () => {
    const data = Buffer.from('x'.repeat(5000));
    const d = sha256(data);
    await store.content.ingestBuffer(data, { digest: d, size: data.length });
    const p = store.content.blobPath(d);
    fs.chmodSync(p, 0o644);
    fs.truncateSync(p, 100);
    await store.content.ingestBuffer(data, { digest: d, size: data.length });
    expect(fs.readFileSync(p).equals(data)).toBe(true);
    fs.rmSync(p);
    const lease = { attached: [] as string[], attach(_k: string, ref: string) { this.attached.push(ref); } };
    await store.content.ingestBuffer(data, { digest: d, size: data.length, lease });
    expect(fs.readFileSync(p).equals(data)).toBe(true);
    expect(lease.attached).toEqual([d]);
    expect(store.content.list().map((b) => b.digest)).toEqual([d]);
    expect(fs.readdirSync(store.content.ingestDir)).toEqual([]);
  });

  it('removes crash-safely: rows first, then the file unless the blob was recorded again', async () => {
    const data = Buffer.from('to be removed');
    const { digest } = await store.content.ingestBuffer(data);
    store.meta.write(() => store.content.forgetLocked(digest));
    // A crash here leaves an orphan file, never a row without a file.
    expect(store.content.has(digest)).toBe(false);
    expect(fs.existsSync(store.content.blobPath(digest))).toBe(true);
    // Recorded again before step 2: the file stays.
    await store.content.ingestBuffer(data);
    store.content.removeFileIfUnrecorded(digest);
    expect(fs.existsSync(store.content.blobPath(digest))).toBe(true);
    store.meta.write(() => store.content.forgetLocked(digest));
    store.content.removeFileIfUnrecorded(digest);
    expect(fs.existsSync(store.content.blobPath(digest))).toBe(false);
  });
});

/**
 * Issue 10 item 4: a writer must not close its descriptor while a write on it is still
 * in flight; otherwise the write lands in whatever file reuses the fd number.
 */
describe('content writer: close only after in-flight writes settle', () => {
  // The module object itself (the `import * as` namespace cannot be patched).
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const nodeFs = require('node:fs') as typeof fs;
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

  /** Hold the first write issued by a ContentWriter of this store until `release()`; log fd events. */
  function holdFirstWrite() {
    const realWritev = nodeFs.writev;
    const realClose = nodeFs.close;
    const log: string[] = [];
    let release!: () => void;
    const held = new Promise<void>((res) => (release = res));
    let heldFd = -1;
    let issued!: () => void;
    const writeIssued = new Promise<void>((res) => (issued = res));
    jest.spyOn(nodeFs, 'writev').mockImplementation(((fd: number, bufs: Buffer[], ...rest: unknown[]) => {
      const cb = rest[rest.length - 1] as (...a: unknown[]) => void;
      const args = rest.slice(0, -1);
      if (heldFd < 0) {
        heldFd = fd;
        log.push(`writev-start ${fd}`);
        issued();
        // The request sits in the thread pool: it runs (on whatever `fd` is then) only later.
        void held.then(() =>
          (realWritev as unknown as (...a: unknown[]) => void)(fd, bufs, ...args, (...r: unknown[]) => {
            log.push(`writev-done ${fd}`);
            cb(...r);
          }),
        );
        return;
      }
      (realWritev as unknown as (...a: unknown[]) => void)(fd, bufs, ...args, cb);
    }) as never);
    jest.spyOn(nodeFs, 'close').mockImplementation(((fd: number, cb?: (e: unknown) => void) => {
      log.push(`close ${fd}`);
      return realClose(fd, cb ?? (() => {}));
    }) as never);
    return { log, release, writeIssued, heldFd: () => heldFd };
  }

  for (const how of ['destroy', 'abort'] as const) {
    it(`${how} mid-write: the fd is closed after the write callback; a writer opened meanwhile gets no foreign bytes`, async () => {
      const h = holdFirstWrite();
      const victimData = Buffer.alloc(64 * 1024, 'v');
      const a = store.content.writer({ what: 'writer A' });
      a.on('error', () => {});
      a.write(Buffer.alloc(64 * 1024, 'A'));
      await h.writeIssued;
      const closedA = new Promise<void>((res) => a.once('close', () => res()));
      if (how === 'destroy') a.destroy(new Error('aborted'));
      const aborted = how === 'abort' ? a.abort() : closedA;
      // Let the close (if it is going to happen now) run, then open a second writer.
      await new Promise((r) => setTimeout(r, 50));
      const b = store.content.writer({ what: 'writer B' });
      // B's first half is on disk (its file is open) before A's held write runs.
      await new Promise<void>((res, rej) => b.write(victimData.subarray(0, 1000), (e) => (e ? rej(e) : res())));
      h.release();
      await aborted;
      b.write(victimData.subarray(1000));
      b.end();
      await new Promise<void>((res, rej) => b.once('finish', () => res()).once('error', rej));
      const info = await b.commit();
      expect(info.digest).toBe(sha256(victimData));
      // The stored file holds exactly B's bytes.
      expect(fs.readFileSync(store.content.blobPath(info.digest)).equals(victimData)).toBe(true);
      const fdA = h.heldFd();
      expect(h.log.indexOf(`writev-done ${fdA}`)).toBeGreaterThanOrEqual(0);
      expect(h.log.indexOf(`close ${fdA}`)).toBeGreaterThan(h.log.indexOf(`writev-done ${fdA}`));
      expect(fs.readdirSync(store.content.ingestDir)).toEqual([]);
    }, 15_000);
  }

  it('abort during the final fsync closes the descriptor once, after the fsync', async () => {
    const realFsync = nodeFs.fsync;
    const realClose = nodeFs.close;
    const log: string[] = [];
    let release!: () => void;
    const held = new Promise<void>((res) => (release = res));
    let issued!: () => void;
    const fsyncIssued = new Promise<void>((res) => (issued = res));
    let syncFd = -1;
    jest.spyOn(nodeFs, 'fsync').mockImplementation(((fd: number, cb: (e: unknown) => void) => {
      syncFd = fd;
      log.push('fsync-start');
      issued();
      void held.then(() => realFsync(fd, (e) => {
        log.push('fsync-done');
        cb(e);
      }));
    }) as never);
    jest.spyOn(nodeFs, 'close').mockImplementation(((fd: number, cb?: (e: unknown) => void) => {
      if (fd === syncFd) log.push('close');
      return realClose(fd, cb ?? (() => {}));
    }) as never);
    const w = store.content.writer();
    w.on('error', () => {});
    w.write(Buffer.from('some bytes'));
    w.end();
    await fsyncIssued;
    const aborted = w.abort();
    await new Promise((r) => setTimeout(r, 50));
    release();
    await aborted;
    await new Promise((r) => setTimeout(r, 50));
    expect(log).toEqual(['fsync-start', 'fsync-done', 'close']);
    expect(fs.readdirSync(store.content.ingestDir)).toEqual([]);
  }, 15_000);
});

/** Issue 10 item 8: durability order and errors. */
describe('content store durability', () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const nodeFs = require('node:fs') as typeof fs;
  let dir: string;
  let store: Store;
  beforeEach(() => {
    dir = tmpDir();
    store = Store.open(dir);
    fs.mkdirSync(store.content.blobsDir, { recursive: true });
  });
  afterEach(() => {
    jest.restoreAllMocks();
    store.close();
    rmrf(dir);
  });

  const errno = (code: string) => Object.assign(new Error(`${code}: injected`), { code });

  /** Make fsync of the blobs directory fail with `code`. */
  function failDirFsync(code: string): void {
    const realOpen = nodeFs.openSync;
    const realFsync = nodeFs.fsyncSync;
    const dirFds = new Set<number>();
    jest.spyOn(nodeFs, 'openSync').mockImplementation(((p: fs.PathLike, ...rest: unknown[]) => {
      const fd = (realOpen as unknown as (...a: unknown[]) => number)(p, ...rest);
      if (String(p) === store.content.blobsDir) dirFds.add(fd);
      return fd;
    }) as never);
    jest.spyOn(nodeFs, 'fsyncSync').mockImplementation(((fd: number) => {
      if (dirFds.has(fd)) throw errno(code);
      return realFsync(fd);
    }) as never);
  }

  it.each(['EINVAL', 'ENOTSUP'])('syncDir ignores %s (directories cannot be fsynced everywhere)', async (code) => {
    failDirFsync(code);
    expect(() => store.content.syncDir()).not.toThrow();
    const data = Buffer.from(`ok with ${code}`);
    await store.content.ingestBuffer(data);
    expect(store.content.has(sha256(data))).toBe(true);
  });

  it('syncDir throws EIO as an ImgtoolError naming the directory; the blob is not recorded', async () => {
    failDirFsync('EIO');
    expect(() => store.content.syncDir()).toThrow(ImgtoolError);
    expect(() => store.content.syncDir()).toThrow(new RegExp(`${store.content.blobsDir}.*EIO`));
    const data = Buffer.from('lost on EIO');
    const err = await store.content.ingestBuffer(data, { what: 'layer 1 of x/y:1' }).catch((e) => e);
    expect(err).toBeInstanceOf(ImgtoolError);
    expect(err.message).toMatch(/layer 1 of x\/y:1/);
    expect(err.message).toMatch(/EIO/);
    expect(store.content.has(sha256(data))).toBe(false);
    expect(fs.readdirSync(store.content.ingestDir)).toEqual([]);
  });

  it('fsyncs the blobs directory before the row commits', async () => {
    const realOpen = nodeFs.openSync;
    const realFsync = nodeFs.fsyncSync;
    const dirFds = new Set<number>();
    const seen: Array<{ inTransaction: boolean; visibleToOthers: boolean }> = [];
    const data = Buffer.from('durable before visible');
    const other = Store.open(dir);
    try {
      jest.spyOn(nodeFs, 'openSync').mockImplementation(((p: fs.PathLike, ...rest: unknown[]) => {
        const fd = (realOpen as unknown as (...a: unknown[]) => number)(p, ...rest);
        if (String(p) === store.content.blobsDir) dirFds.add(fd);
        return fd;
      }) as never);
      jest.spyOn(nodeFs, 'fsyncSync').mockImplementation(((fd: number) => {
        if (dirFds.has(fd)) seen.push({ inTransaction: store.meta.db.inTransaction, visibleToOthers: other.content.has(sha256(data)) });
        return realFsync(fd);
      }) as never);
      await store.content.ingestBuffer(data);
      expect(seen).toEqual([{ inTransaction: true, visibleToOthers: false }]);
      expect(other.content.has(sha256(data))).toBe(true);
    } finally {
      other.close();
    }
  });

  it('commits with synchronous=FULL (a load that reported success survives power loss)', () => {
    expect(store.meta.db.pragma('synchronous', { simple: true })).toBe(2);
  });
});
