import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { Store, sha256 } from '../../src';
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
