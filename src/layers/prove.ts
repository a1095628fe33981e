/**
 * Checking passes: the one way a blob <-> diffID link that nobody has hashed yet becomes a
 * proof. A claim (an archive config's `rootfs.diff_ids`, a registry's config, a row of a
 * store written before proofs) is believed only after the blob's decompressed bytes were
 * hashed here (or while unpacking / converting, which hash the same bytes on the way).
 * Decoding is bounded as unpack's is (src/limits: the per-layer decompressed cap and the
 * ratio to the blob's size): a bomb stops at the first byte past the bound, memory flat.
 */
import { Transform, TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Store } from '../store';
import { Digest, Digester } from '../digest';
import { DigestMismatchError } from '../errors';
import { AutoDecompressStream, Compression } from '../compression/codecs';
import { DecodeBound, LIMIT_FLAGS, Limits, resolveLimits } from '../limits';

export interface DecodedDigest {
  /** sha256 of the decompressed bytes. */
  diffId: Digest;
  /** Compression found by magic. */
  compression: Compression;
  /** Decompressed size. */
  size: number;
}

/** Hashes what flows through (without keeping it). */
class HashSink extends Transform {
  readonly d = new Digester();
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.d.update(chunk);
    cb();
  }
}

/**
 * Stream a stored blob (its own digest verified on the way) through the decoder its magic
 * bytes name and hash the output. Memory stays flat whatever the blob decompresses to; the
 * output is bounded by `limits` (defaults: src/limits), a LimitExceededError naming `what`.
 */
export async function hashDecompressed(store: Store, digest: Digest, what: string, limits?: Partial<Limits>): Promise<DecodedDigest> {
  const l = resolveLimits(limits);
  const input = store.content.openRead(digest, { verify: true, what });
  // The ratio's base: the blob's recorded size (openRead fails for a blob not in the store).
  const compressed = store.content.info(digest)?.size ?? 0;
  const dec = new AutoDecompressStream();
  const bound = new DecodeBound({ what, max: l.layerSize, maxFlag: LIMIT_FLAGS.layerSize, ratio: l.ratio, compressed: () => compressed });
  const sink = new HashSink();
  await pipeline(input, dec, bound, sink);
  return { diffId: sink.d.digest(), compression: dec.detected ?? 'none', size: sink.d.size };
}

export interface ProveOptions {
  /** Media type to record with the proof. */
  mediaType?: string;
  /** Context for messages. */
  what?: string;
  /** Hostile-input limits for the decoding (src/limits). */
  limits?: Partial<Limits>;
}

/**
 * Prove (or refute) that stored blob `digest` decompresses to `diffId`. On success the
 * link is recorded as a variant (a proof) and returned; on a mismatch any claim of that
 * link is dropped and a DigestMismatchError naming both diffIDs is thrown. A blob that is
 * already proven costs nothing.
 */
export async function proveVariant(store: Store, digest: Digest, diffId: Digest, opts: ProveOptions = {}): Promise<void> {
  const row = store.variants.get(digest);
  if (row) {
    if (row.diffId === diffId) return;
    throw new DigestMismatchError(diffId, row.diffId, `${opts.what ?? `blob ${digest}`}: blob ${digest} is proven to decompress to another layer; uncompressed layer (diffID)`);
  }
  const what = opts.what ?? `blob ${digest}`;
  const got = await hashDecompressed(store, digest, what, opts.limits);
  if (got.diffId !== diffId) {
    store.variants.dropClaim(digest, diffId);
    throw new DigestMismatchError(diffId, got.diffId, `${what}: blob ${digest} does not decompress to the layer's diffID; uncompressed layer (diffID)`);
  }
  const info = store.content.info(digest);
  if (!info) return; // removed meanwhile: nothing to record
  store.variants.recordProof({ digest, diffId, compression: got.compression, size: info.size, mediaType: opts.mediaType });
}
