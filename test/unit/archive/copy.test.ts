import * as fs from 'node:fs';
import * as path from 'node:path';
import * as crypto from 'node:crypto';
import * as tar from 'tar-stream';
import { encodeEntryHeader } from '../../../src/archive/writer';
import { copyFileAt, copyBuffers } from '../../../src/archive/copy';
import { tmpDir, rmrf } from '../../helpers/cli';

/** The first `want` bytes tar-stream 3's pack writes for one entry with the writer's fixed fields (its header). */
async function tarStreamHeader(name: string, size: number, mode: number, type: 'file' | 'directory', want: number): Promise<Buffer> {
  const pack = tar.pack();
  pack.on('error', () => {});
  const chunks: Buffer[] = [];
  let got = 0;
  const enough = new Promise<void>((res) => {
    pack.on('data', (c: Buffer) => {
      chunks.push(c);
      got += c.length;
      if (got >= want) res();
    });
  });
  const e = pack.entry({ name, size, mode, type, mtime: new Date(0), uid: 0, gid: 0, uname: '', gname: '' });
  e.on('error', () => {});
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([enough, new Promise((r) => (timer = setTimeout(r, 2000)))]);
  clearTimeout(timer);
  pack.destroy();
  return Buffer.concat(chunks);
}

describe('encodeEntryHeader', () => {
  const cases: Array<[string, number, number, 'file' | 'directory']> = [
    ['blobs/', 0, 0o755, 'directory'],
    ['blobs/sha256/', 0, 0o755, 'directory'],
    ['index.json', 123, 0o644, 'file'],
    ['blobs/sha256/' + 'a'.repeat(64), 537034966, 0o444, 'file'],
    ['blobs/sha256/' + 'b'.repeat(64), 0, 0o444, 'file'],
    ['blobs/sha256/' + 'c'.repeat(64), 9 * 1024 * 1024 * 1024, 0o444, 'file'], // base-256 size
    ['d'.repeat(60) + '/' + 'e'.repeat(90), 5, 0o644, 'file'], // prefix split
    ['f'.repeat(120), 5, 0o644, 'file'], // PAX path
    ['dir/ünïcode.json', 5, 0o644, 'file'], // PAX path (non-ASCII)
  ];
  it.each(cases)('%s (%d bytes) is byte-identical to tar-stream', async (name, size, mode, type) => {
    const mine = Buffer.concat(encodeEntryHeader(name, size, mode, type));
    const theirs = await tarStreamHeader(name, size, mode, type, mine.length);
    expect(mine.length % 512).toBe(0);
    expect(mine.toString('hex')).toBe(theirs.subarray(0, mine.length).toString('hex'));
    expect(theirs.length).toBeGreaterThanOrEqual(mine.length);
  });
});

describe('copyFileAt', () => {
  let dir: string;
  beforeEach(() => {
    dir = tmpDir('imgtool-copy-');
  });
  afterEach(() => rmrf(dir));

  const digestOf = (b: Buffer) => 'sha256:' + crypto.createHash('sha256').update(b).digest('hex');

  async function copy(data: Buffer, opts: { digest?: string; size?: number; pos?: number; pool?: Buffer[] } = {}) {
    const src = path.join(dir, 'src');
    fs.writeFileSync(src, data);
    const dst = path.join(dir, 'dst');
    const fd = fs.openSync(dst, 'w+');
    const seen: number[] = [];
    try {
      await copyFileAt(src, fd, opts.pos ?? 0, opts.size ?? data.length, opts.pool ?? copyBuffers(3, 4096), {
        digest: opts.digest, what: 'layer X', onBytes: (n) => seen.push(n),
      });
    } finally {
      fs.closeSync(fd);
    }
    return { out: fs.readFileSync(dst), seen };
  }

  it('copies every byte at the position, over many reused buffers, and reports progress', async () => {
    const data = crypto.randomBytes(4096 * 10 + 123);
    const { out, seen } = await copy(data, { digest: digestOf(data), pos: 1000 });
    expect(out.subarray(1000).equals(data)).toBe(true);
    expect(out.length).toBe(1000 + data.length);
    expect(seen[seen.length - 1]).toBe(data.length);
  });

  it('copies an empty file and checks its digest', async () => {
    const empty = Buffer.alloc(0);
    const { out } = await copy(empty, { digest: digestOf(empty) });
    expect(out.length).toBe(0);
    await expect(copy(empty, { digest: digestOf(Buffer.from('x')) })).rejects.toThrow(/layer X: digest mismatch/);
  });

  it('fails with DigestMismatchError naming the blob when the bytes do not hash to the digest', async () => {
    const data = crypto.randomBytes(20000);
    const want = digestOf(data);
    data[19999] ^= 1;
    const err = await copy(data, { digest: want }).catch((e) => e);
    expect(err.name).toBe('DigestMismatchError');
    expect(err.message).toContain(`layer X: digest mismatch: expected ${want}`);
  });

  it('fails on a source of another size than planned', async () => {
    const data = crypto.randomBytes(5000);
    await expect(copy(data, { size: 6000 })).rejects.toThrow(/layer X: size mismatch: expected 6000 bytes, got 5000/);
    await expect(copy(data, { size: 4000 })).rejects.toThrow(/size mismatch/);
  });

  it('fails on a missing source and leaves the pool reusable', async () => {
    const pool = copyBuffers(2, 1024);
    const fd = fs.openSync(path.join(dir, 'dst'), 'w');
    try {
      await expect(copyFileAt(path.join(dir, 'nope'), fd, 0, 10, pool, { what: 'x' })).rejects.toThrow(/ENOENT/);
    } finally {
      fs.closeSync(fd);
    }
    const data = crypto.randomBytes(3000);
    const { out } = await copy(data, { digest: digestOf(data), pool });
    expect(out.equals(data)).toBe(true);
  });

  it('settles only after every write completed (buffers may be reused right after)', async () => {
    // The module object itself (the `import * as` namespace cannot be patched).
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const nodeFs = require('node:fs') as typeof fs;
    const realWrite = nodeFs.write;
    let pending = 0;
    const spy = jest.spyOn(nodeFs, 'write').mockImplementation(((...args: unknown[]) => {
      const cb = args[args.length - 1] as (...a: unknown[]) => void;
      pending++;
      (realWrite as unknown as (...a: unknown[]) => void)(...args.slice(0, -1), (...r: unknown[]) => {
        setTimeout(() => {
          pending--;
          cb(...r);
        }, 30);
      });
    }) as never);
    try {
      for (const len of [100, 4096, 4096 * 5 + 7]) {
        const data = crypto.randomBytes(len);
        const { out } = await copy(data, { digest: digestOf(data) }).then((r) => {
          expect(pending).toBe(0);
          return r;
        });
        expect(out.equals(data)).toBe(true);
      }
    } finally {
      spy.mockRestore();
    }
  });
});
