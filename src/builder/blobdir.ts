import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Digest, DigestStream, digestHex, sha256 } from '../digest';
import { Descriptor } from '../images/types';
import { MAX_JSON_SIZE } from '../content';
import { InvalidArgumentError, NotFoundError } from '../errors';

/** Digest and size of a written blob. */
export interface BlobRef {
  digest: Digest;
  size: number;
}

/**
 * An OCI-layout-style blob directory: blobs live at `<root>/blobs/sha256/<hex>`, so
 * large layers stay on disk. Writes go to a temp file in the same directory and are
 * renamed into place once hashed; an existing blob is left as is.
 */
export class BlobDir {
  readonly root: string;
  constructor(root: string) {
    this.root = path.resolve(root);
    fs.mkdirSync(path.join(this.root, 'blobs', 'sha256'), { recursive: true });
  }

  /** Path of a blob (whether or not it exists). */
  path(digest: Digest): string {
    return path.join(this.root, 'blobs', 'sha256', digestHex(digest));
  }

  has(digest: Digest): boolean {
    return fs.existsSync(this.path(digest));
  }

  size(digest: Digest): number {
    try {
      return fs.statSync(this.path(digest)).size;
    } catch {
      throw new NotFoundError(`blob ${digest} not found in ${this.root}`);
    }
  }

  open(digest: Digest): fs.ReadStream {
    if (!this.has(digest)) throw new NotFoundError(`blob ${digest} not found in ${this.root}`);
    return fs.createReadStream(this.path(digest), { highWaterMark: 1 << 20 });
  }

  /** Write bytes (deduplicated by digest). */
  putBytes(data: Buffer | string): BlobRef {
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    const digest = sha256(buf);
    const p = this.path(digest);
    if (!fs.existsSync(p)) {
      const tmp = `${p}.tmp-${randomBytes(6).toString('hex')}`;
      fs.writeFileSync(tmp, buf);
      fs.renameSync(tmp, p);
    }
    return { digest, size: buf.length };
  }

  /** Serialise `obj` compactly (key order as given) and store it. */
  putJson(obj: unknown): BlobRef & { bytes: Buffer } {
    const bytes = Buffer.from(JSON.stringify(obj), 'utf8');
    return { ...this.putBytes(bytes), bytes };
  }

  /**
   * Stream `source` through optional `transforms` into a blob, hashing while writing.
   * Returns the digest/size of what was written.
   */
  async putStream(source: Readable | AsyncIterable<Buffer>, ...transforms: Transform[]): Promise<BlobRef> {
    const dir = path.join(this.root, 'blobs', 'sha256');
    const tmp = path.join(dir, `.ingest.tmp-${randomBytes(6).toString('hex')}`);
    const hash = new DigestStream();
    try {
      await pipeline([source, ...transforms, hash, fs.createWriteStream(tmp, { highWaterMark: 1 << 20 })] as unknown as ReadonlyArray<NodeJS.ReadableStream | NodeJS.WritableStream>);
      const digest = hash.digest();
      const p = this.path(digest);
      if (fs.existsSync(p)) fs.unlinkSync(tmp);
      else fs.renameSync(tmp, p);
      return { digest, size: hash.size };
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      throw e;
    }
  }

  /** Read and parse a JSON blob (capped at MAX_JSON_SIZE). */
  readJson<T = unknown>(digest: Digest): T {
    const size = this.size(digest);
    if (size > MAX_JSON_SIZE) throw new InvalidArgumentError(`blob ${digest}: ${size} bytes is too large for JSON`);
    return JSON.parse(fs.readFileSync(this.path(digest), 'utf8')) as T;
  }

  /** Descriptor helper. */
  descriptor(mediaType: string, ref: BlobRef, extra: Partial<Descriptor> = {}): Descriptor {
    return { mediaType, digest: ref.digest, size: ref.size, ...extra };
  }
}
