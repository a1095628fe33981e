/**
 * Hostile-input limits, in one place. No document declares uncompressed sizes, so what an
 * archive or a layer decompresses to is bounded here, while it streams: the first byte past
 * a bound fails the operation (memory stays flat: decoders honour backpressure).
 *
 *  - decompressed bytes of one layer (`--max-layer-size`) and of one wrapped archive
 *    (`--max-archive-size`): an absolute cap, and a ratio to the compressed size
 *    (`--max-ratio`) that only applies beyond `RATIO_FLOOR` (small layers of zeros are fine);
 *  - entries of one layer (`--max-entries`; node_modules layers hold 10^5..10^6);
 *  - in-layer names: a component of at most NAME_MAX (255) bytes, a path of at most
 *    `MAX_PATH` bytes (PATH_MAX 4096 less room for the directory a snapshot lives in), no
 *    NUL byte. These are fixed (a filesystem cannot take more).
 *  - JSON documents: `MAX_JSON_SIZE` (src/content).
 *
 * Defaults pass real images, measured with scripts/measure-limits.js: the largest real
 * layers are a few GiB to ~30 GiB uncompressed (CUDA, ML frameworks); gzip cannot exceed
 * ~1032:1 (deflate's ceiling; a zero-filled file reaches 1028:1); zstd stores a block of
 * zeros in 4 bytes, so a layer holding a zero-filled file (an empty VM disk image) reaches
 * its ceiling, ~32768:1 (measured 32480:1 for 1 GiB and 8 GiB at level 3), whatever its
 * size. No ratio below that ceiling tells a bomb from such a layer, so the default ratio is
 * above it and the absolute caps bound what a layer or archive may cost by default; a lower
 * `--max-ratio` (e.g. 2000: no gzip layer reaches it) refuses zstd zero-bombs from hosts
 * that never ship zero-filled layers.
 */
import { Transform, TransformCallback } from 'node:stream';
import { InvalidArgumentError, LimitExceededError } from '../errors';

export interface Limits {
  /** Largest decompressed size of one layer, bytes. */
  layerSize: number;
  /** Largest decompressed (tar) size of one gzip/zstd-wrapped archive, bytes. */
  archiveSize: number;
  /** Largest decompressed:compressed ratio, checked once past `RATIO_FLOOR` bytes. */
  ratio: number;
  /** Most entries in one layer. */
  entries: number;
}

const GiB = 1024 ** 3;
export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  layerSize: 64 * GiB,
  archiveSize: 256 * GiB,
  ratio: 50_000,
  entries: 4_000_000,
});

/** Decompressed bytes always allowed, whatever the ratio (small inputs of zeros). */
export const RATIO_FLOOR = 256 * 1024 * 1024;
/** Longest name component in a layer, bytes (NAME_MAX). */
export const NAME_MAX = 255;
/**
 * Longest path in a layer, bytes: PATH_MAX (4096, with its NUL) less 96 bytes for the
 * snapshot directory it is reached through (`/proc/self/fd/N/` when the store root is long).
 */
export const MAX_PATH = 4000;

/** The flag raising each limit, for messages. */
export const LIMIT_FLAGS: Record<keyof Limits, string> = {
  layerSize: '--max-layer-size',
  archiveSize: '--max-archive-size',
  ratio: '--max-ratio',
  entries: '--max-entries',
};

/** Defaults overridden by what is given (undefined fields keep the default). */
export function resolveLimits(l?: Partial<Limits>): Limits {
  const out: Limits = { ...DEFAULT_LIMITS };
  for (const k of Object.keys(DEFAULT_LIMITS) as Array<keyof Limits>) {
    const v = l?.[k];
    if (v === undefined) continue;
    if (!(typeof v === 'number' && v > 0 && Number.isSafeInteger(v))) throw new InvalidArgumentError(`${LIMIT_FLAGS[k]} must be a positive integer, got ${v}`);
    out[k] = v;
  }
  return out;
}

const UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** `4096`, `512M`, `64G`, `1T` (binary units, optional `iB`/`B`) -> bytes. */
export function parseSize(s: string, flag = 'size'): number {
  const m = /^([0-9]+)\s*([kmgt]?)(?:i?b)?$/i.exec(s.trim());
  const v = m ? Number(m[1]) * UNITS[m[2].toLowerCase()] : NaN;
  if (!Number.isSafeInteger(v) || v <= 0) throw new InvalidArgumentError(`${flag} ${JSON.stringify(s)}: expected a size such as 512M, 64G or a number of bytes`);
  return v;
}

export function fmtLimit(n: number): string {
  for (const [u, f] of [['TiB', 1024 ** 4], ['GiB', GiB], ['MiB', 1024 ** 2], ['KiB', 1024]] as const) {
    if (n >= f && n % f === 0) return `${n / f} ${u}`;
  }
  return `${n} bytes`;
}

export interface DecodeBoundOptions {
  /** For messages: "image X layer 1/2 (sha256:…)", "archive FILE"; '' when the caller prefixes its own. */
  what: string;
  /** Absolute cap and the flag that raises it. */
  max: number;
  maxFlag: string;
  ratio: number;
  /** Compressed bytes behind what has been decoded: the total when known, else read so far. */
  compressed: () => number;
}

/**
 * A pass-through that counts decoded bytes and fails at the first byte past the bound:
 * the absolute cap, or `ratio` times the compressed size once past `RATIO_FLOOR`.
 */
export class DecodeBound extends Transform {
  private n = 0;
  constructor(private readonly o: DecodeBoundOptions) {
    super({ highWaterMark: 1024 * 1024 });
  }
  get bytes(): number {
    return this.n;
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    const n = this.n + chunk.length;
    const o = this.o;
    const c = o.compressed();
    const over = decodeBoundExceeded(n, c, o.max, o.ratio, RATIO_FLOOR);
    if (over) return cb(decodeBoundError(over, o.what, n, c, o.max, o.maxFlag, o.ratio));
    this.n = n;
    cb(null, chunk);
  }
}

/**
 * Which bound `n` decoded bytes from `compressed` input bytes exceed, if any: the absolute
 * cap `max`, or `ratio` times the compressed size once past `floor`. Self-contained (no free
 * variables): the transcoding decoder thread evaluates its source (see compression/transcode.ts).
 */
export function decodeBoundExceeded(n: number, compressed: number, max: number, ratio: number, floor: number): 'size' | 'ratio' | null {
  if (n > max) return 'size';
  if (n > floor && n > Math.max(1, compressed) * ratio) return 'ratio';
  return null;
}

/** The error for a bound `decodeBoundExceeded` reported (what: "image X layer 1/2 (sha256:…)", or ''). */
export function decodeBoundError(kind: 'size' | 'ratio', what: string, n: number, compressed: number, max: number, maxFlag: string, ratio: number): LimitExceededError {
  const w = what ? `${what}: ` : '';
  if (kind === 'size') return new LimitExceededError(`${w}decompresses to more than ${fmtLimit(max)} (limit ${maxFlag}); refusing it`);
  return new LimitExceededError(`${w}${Math.max(1, compressed)} compressed bytes decompress to more than ${ratio} times that (${n} bytes so far; limit ${LIMIT_FLAGS.ratio}); refusing it as a decompression bomb`);
}
