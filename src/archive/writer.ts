import * as tar from 'tar-stream';
import { Readable } from 'node:stream';
import { ArchiveOutput } from './output';
import { ImgtoolError } from '../errors';

/** Fixed header fields: the same content always gives the same bytes. */
export const TAR_MTIME = new Date(0);
export const BLOB_MODE = 0o444;
export const FILE_MODE = 0o644;
export const DIR_MODE = 0o755;

/**
 * Deterministic tar writer over tar-stream's `pack`: every entry has mtime 0, uid/gid 0,
 * empty uname/gname and a fixed mode. Entries are written in the order added; the
 * packed bytes are pushed to an `ArchiveOutput` with back-pressure.
 */
export class TarWriter {
  private readonly pack = tar.pack({ highWaterMark: 8 * 1024 * 1024 } as never);
  private readonly pump: Promise<void>;
  private failed: unknown;
  /** Bytes handed to the output so far. */
  bytes = 0;

  constructor(private readonly out: ArchiveOutput) {
    this.pump = this.run();
    // Errors surface through the awaited calls; never as an unhandled 'error' event.
    this.pack.on('error', () => {});
    this.pump.catch(() => {});
  }

  private async run(): Promise<void> {
    try {
      for await (const chunk of this.pack as unknown as AsyncIterable<Buffer>) {
        await this.out.write(chunk);
        this.bytes += chunk.length;
      }
    } catch (e) {
      this.fail(e);
      throw e;
    }
  }

  private fail(e: unknown): void {
    this.failed ??= e;
    if (!this.pack.destroyed) this.pack.destroy(e instanceof Error ? e : new Error(String(e)));
  }

  private checkFailed(): void {
    if (this.failed) throw this.failed;
  }

  /** A directory entry (`name` ends with `/`). */
  async addDir(name: string): Promise<void> {
    this.checkFailed();
    await new Promise<void>((resolve, reject) => {
      const sink = this.pack.entry({ name, type: 'directory', mode: DIR_MODE, mtime: TAR_MTIME, uid: 0, gid: 0, uname: '', gname: '' }, (e) => (e ? reject(e) : resolve()));
      sink.on('error', () => {});
    }).catch((e) => this.rethrow(e));
  }

  /** A small file from memory (metadata documents). */
  async addBuffer(name: string, data: Buffer, mode = FILE_MODE): Promise<void> {
    this.checkFailed();
    await new Promise<void>((resolve, reject) => {
      const sink = this.pack.entry({ name, size: data.length, mode, mtime: TAR_MTIME, uid: 0, gid: 0, uname: '', gname: '' }, data, (e) => (e ? reject(e) : resolve()));
      sink.on('error', () => {});
    }).catch((e) => this.rethrow(e));
  }

  /**
   * A file whose size is known up front, copied from `src` (never buffered whole).
   * A source that errors (e.g. digest re-verification failing) or delivers another
   * size fails the archive.
   */
  async addStream(name: string, size: number, src: Readable, mode = BLOB_MODE, onBytes?: (n: number) => void): Promise<void> {
    this.checkFailed();
    let entryErr: unknown;
    let resolveEntry!: () => void;
    let rejectEntry!: (e: unknown) => void;
    const entryDone = new Promise<void>((res, rej) => {
      resolveEntry = res;
      rejectEntry = rej;
    });
    entryDone.catch(() => {});
    const sink = this.pack.entry({ name, size, mode, mtime: TAR_MTIME, uid: 0, gid: 0, uname: '', gname: '' }, (e) => {
      if (e) {
        entryErr ??= e;
        rejectEntry(e);
      } else resolveEntry();
    });
    sink.on('error', (e: unknown) => {
      entryErr ??= e;
    });
    let n = 0;
    try {
      for await (const chunk of src as AsyncIterable<Buffer>) {
        if (this.failed) throw this.failed;
        if (entryErr) throw entryErr;
        n += chunk.length;
        if (n > size) throw new ImgtoolError('SIZE_MISMATCH', `${name}: source is longer than the planned ${size} bytes`);
        if (!sink.write(chunk)) {
          await new Promise<void>((res) => {
            const check = () => {
              sink.off('drain', check);
              sink.off('close', check);
              res();
            };
            sink.on('drain', check);
            sink.on('close', check);
          });
        }
        onBytes?.(n);
      }
      if (n !== size) throw new ImgtoolError('SIZE_MISMATCH', `${name}: source gave ${n} bytes, planned ${size}`);
      (sink as unknown as { end(): void }).end();
      await entryDone;
    } catch (e) {
      src.destroy();
      this.fail(e);
      this.rethrow(e);
    }
  }

  private rethrow(e: unknown): never {
    // Prefer the first cause (e.g. EPIPE from the output) over "pack destroyed".
    throw this.failed ?? e;
  }

  /** Write the end-of-archive marker and wait until the output has taken every byte. */
  async finish(): Promise<void> {
    this.checkFailed();
    this.pack.finalize();
    await this.pump;
  }

  /** Stop after a failure. */
  destroy(err: unknown): void {
    this.fail(err);
  }
}
