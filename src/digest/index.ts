import { createHash, Hash } from 'node:crypto';
import { Transform, TransformCallback } from 'node:stream';
import { InvalidArgumentError } from '../errors';

/** A content digest in its canonical `sha256:<64 lowercase hex>` form. */
export type Digest = string;

const SHA256_RE = /^sha256:[a-f0-9]{64}$/;
const ANY_RE = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

export function isDigest(s: unknown): s is Digest {
  return typeof s === 'string' && SHA256_RE.test(s);
}

/** Throws unless `s` is a sha256 digest (the only algorithm the store accepts). */
export function validateDigest(s: unknown, what = 'digest'): Digest {
  if (typeof s !== 'string') throw new InvalidArgumentError(`${what}: not a string`);
  if (SHA256_RE.test(s)) return s;
  if (ANY_RE.test(s)) throw new InvalidArgumentError(`${what}: unsupported digest algorithm in ${JSON.stringify(s)}`);
  throw new InvalidArgumentError(`${what}: invalid digest ${JSON.stringify(s)}`);
}

export function digestHex(d: Digest): string {
  return validateDigest(d).slice('sha256:'.length);
}

export function digestFromHex(hex: string): Digest {
  return validateDigest(`sha256:${hex}`);
}

export function sha256(data: Buffer | string): Digest {
  return 'sha256:' + createHash('sha256').update(data).digest('hex');
}

/** Short form for messages: `sha256:0123456789ab`. */
export function shortDigest(d: string): string {
  return d.startsWith('sha256:') ? d.slice(0, 7 + 12) : d;
}

/**
 * Pass-through stream that hashes and counts what flows through it.
 * Read `digest()` and `size` after 'end'/'finish'.
 */
export class DigestStream extends Transform {
  private readonly hash: Hash = createHash('sha256');
  size = 0;
  private final_: Digest | undefined;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    cb(null, chunk);
  }
  digest(): Digest {
    if (!this.final_) this.final_ = 'sha256:' + this.hash.digest('hex');
    return this.final_;
  }
}

/** Incremental hasher for code that already owns the chunks. */
export class Digester {
  private readonly hash: Hash = createHash('sha256');
  size = 0;
  update(chunk: Buffer): void {
    this.hash.update(chunk);
    this.size += chunk.length;
  }
  digest(): Digest {
    return 'sha256:' + this.hash.digest('hex');
  }
}
