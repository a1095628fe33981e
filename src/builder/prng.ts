/**
 * Deterministic generated content for layers: pseudo-random incompressible bytes
 * (AES-256-CTR keystream keyed by the seed: native speed, identical on every platform
 * and Node version) and compressible text (words from a fixed list chosen by that
 * keystream). Generated in chunks; memory stays flat whatever the size.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { InvalidArgumentError } from '../errors';

export const CHUNK = 256 * 1024;

function keystream(seed: string | number, salt: string) {
  const key = createHash('sha256').update(`imgtool-builder:${salt}:${String(seed)}`).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(CHUNK);
  return (n: number): Buffer => cipher.update(n === CHUNK ? zeros : zeros.subarray(0, n));
}

function checkSize(size: number): void {
  if (!Number.isSafeInteger(size) || size < 0) throw new InvalidArgumentError(`generated content: bad size ${size}`);
}

/** `size` pseudo-random bytes determined by `seed`. */
export function* randomBytes(size: number, seed: string | number = 0): Generator<Buffer> {
  checkSize(size);
  const next = keystream(seed, 'random');
  let left = size;
  while (left > 0) {
    const n = Math.min(CHUNK, left);
    yield next(n);
    left -= n;
  }
}

const WORDS = (
  'the of and to in is was for on that with as by at from his it an were are which be this has also ' +
  'or had not first one their its new after but who they have her she two been other when there all ' +
  'during into school time may years more most only over city some world would where later up such ' +
  'used many can state about national out known university united then made three image layer blob ' +
  'digest manifest index config container registry archive compress stream snapshot content label ' +
  'lease platform export import store tag reference deterministic builder fixture whiteout opaque ' +
  'directory symlink hardlink device fifo xattr capability kernel network volume mount process signal'
)
  .split(/\s+/)
  .filter(Boolean)
  .map((w) => Buffer.from(w, 'latin1'));

let PHRASES: Buffer[] | undefined;
const PHRASE_COUNT = 16384;

/** PHRASE_COUNT fixed phrases of 6-14 words (seed-independent), built once (~1 MiB). */
function phrases(): Buffer[] {
  if (PHRASES) return PHRASES;
  const next = keystream('phrases', 'text-table');
  const out: Buffer[] = [];
  let rnd = next(CHUNK);
  let r = 0;
  const byte = (): number => {
    if (r >= rnd.length) {
      rnd = next(CHUNK);
      r = 0;
    }
    return rnd[r++];
  };
  const buf = Buffer.allocUnsafe(256);
  for (let i = 0; i < PHRASE_COUNT; i++) {
    const n = 6 + (byte() % 9);
    let o = 0;
    for (let k = 0; k < n; k++) {
      if (k > 0) buf[o++] = 0x20;
      const w = WORDS[byte() % WORDS.length];
      w.copy(buf, o);
      o += w.length;
    }
    out.push(Buffer.from(buf.subarray(0, o)));
  }
  PHRASES = out;
  return out;
}

/**
 * `size` bytes of compressible ASCII text determined by `seed`: lines of phrases picked
 * by the seeded keystream from a fixed table, roughly 3-4x compressible by gzip.
 */
export function* textBytes(size: number, seed: string | number = 0): Generator<Buffer> {
  checkSize(size);
  const table = phrases();
  const next = keystream(seed, 'text');
  let left = size;
  let col = 0;
  while (left > 0) {
    const n = Math.min(CHUNK, left);
    const out = Buffer.allocUnsafe(n);
    const rnd = next(CHUNK);
    let r = 0;
    let o = 0;
    while (o < n) {
      if (r + 1 >= rnd.length) r = 0; // a chunk holds far more indices than phrases fit; never reached in practice
      const p = table[(rnd[r] | (rnd[r + 1] << 8)) & (PHRASE_COUNT - 1)];
      r += 2;
      const take = Math.min(p.length, n - o);
      if (take === p.length) out.set(p, o);
      else out.set(p.subarray(0, take), o);
      o += take;
      col += take;
      if (o < n) {
        const nl = col > 72;
        out[o++] = nl ? 0x0a : 0x20;
        col = nl ? 0 : col + 1;
      }
    }
    yield out;
    left -= n;
  }
}

/** Generated content spec for a regular file. */
export interface GeneratedContent {
  size: number;
  seed?: string | number;
  /** Compressible text instead of incompressible bytes. */
  text?: boolean;
}

export function generated(spec: GeneratedContent): Generator<Buffer> {
  return spec.text ? textBytes(spec.size, spec.seed ?? 0) : randomBytes(spec.size, spec.seed ?? 0);
}
