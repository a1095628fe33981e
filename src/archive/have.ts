/**
 * Delta archives. The receiving side describes what its store holds (`imgtool have`: an
 * inventory of blob digests and sizes); the sending side leaves every such blob out of the
 * archive (`save --have FILE`, `save --exclude IMAGE`), and records on `index.json` that the
 * archive is a delta and which digests it expects the receiver to hold:
 *
 *   "annotations": { "io.imgtool.delta.version": "1", "io.imgtool.delta.expects": "sha256:…,sha256:…" }
 *
 * (sorted, comma-separated). Trust: an inventory is only a claim about the receiver, and the
 * annotation is only a list of "digests to expect". `load` never takes either for a fact:
 * every blob the archive's manifests reference must be in the archive or already in the store
 * with the digest and size the manifest names; `verify` uses the annotation to report a delta
 * as such (what it holds, what it expects) instead of as broken. Containerd (`ctr images
 * import`) ignores index annotations and completes the closure from its own content store.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Store } from '../store';
import { Descriptor } from '../images/types';
import { isIndexType } from '../images/mediatypes';
import { walkImage } from '../images/walk';
import { contentSource } from '../images/source';
import { isDigest } from '../digest';
import { ImgtoolError, InvalidArgumentError } from '../errors';
import { writeFileAtomic } from '../fsutil';

export const INVENTORY_FORMAT = 'imgtool-have';
export const INVENTORY_VERSION = 1;
export const DELTA_VERSION_ANNOTATION = 'io.imgtool.delta.version';
export const DELTA_EXPECTS_ANNOTATION = 'io.imgtool.delta.expects';
export const DELTA_VERSION = '1';

export interface InventoryBlob {
  digest: string;
  size: number;
}

/** What a store holds (`imgtool have`). Blobs sorted by digest; images by name. */
export interface Inventory {
  format: typeof INVENTORY_FORMAT;
  formatVersion: number;
  /** imgtool version of the store that made it. */
  imgtool: string;
  /** Images whose blobs are listed (name and target digest). */
  images: Array<{ name: string; digest: string }>;
  blobs: InventoryBlob[];
}

export interface InventoryOptions {
  /** Called for each warning (a named image that is not complete). */
  warn?: (m: string) => void;
}

let version: string | undefined;
/** This imgtool's version (from its package.json). */
export function imgtoolVersion(): string {
  if (version) return version;
  let dir = __dirname;
  for (let i = 0; i < 6; i++) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'imgtool' && pkg.version) return (version = pkg.version);
    } catch {
      /* not here */
    }
    dir = path.dirname(dir);
  }
  return (version = 'unknown');
}

/**
 * The inventory of `refs` (every image of the store when empty): the blobs of each image's
 * closure that are present with the size their descriptor names. With no `refs`, only
 * complete images count (no config or layer missing: after `--discard-layers` an image is
 * not); a named image that is not complete lists what it has, with a warning.
 */
export async function buildInventory(store: Store, refs: string[] = [], opts: InventoryOptions = {}): Promise<Inventory> {
  const recs = refs.length ? refs.map((r) => store.images.resolve(r)) : store.images.list();
  const src = contentSource(store.content);
  const blobs = new Map<string, number>();
  const images = new Map<string, string>();
  for (const rec of recs) {
    const root: Descriptor = rec.target;
    const present = (d: Descriptor) => store.content.info(d.digest)?.size === d.size;
    if (!present(root)) {
      if (refs.length) opts.warn?.(`image ${rec.name}: its ${isIndexType(root.mediaType) ? 'index' : 'manifest'} ${root.digest} is not in the store; nothing of it listed`);
      continue;
    }
    const walk = await walkImage(src, root);
    const held = [root, ...walk.blobs].filter(present);
    if (walk.missing.length) {
      if (!refs.length) continue;
      opts.warn?.(`image ${rec.name}: ${walk.missing.length} blob(s) of it are not in the store (first: ${walk.missing[0].role} ${walk.missing[0].desc.digest}); listing the ${held.length} it has`);
    }
    images.set(rec.name, root.digest);
    for (const d of held) blobs.set(d.digest, d.size);
  }
  const byKey = <T>(a: [string, T], b: [string, T]) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);
  return {
    format: INVENTORY_FORMAT,
    formatVersion: INVENTORY_VERSION,
    imgtool: imgtoolVersion(),
    images: [...images.entries()].sort(byKey).map(([name, digest]) => ({ name, digest })),
    blobs: [...blobs.entries()].sort(byKey).map(([digest, size]) => ({ digest, size })),
  };
}

/** The inventory's canonical bytes (pretty JSON, newline-terminated: the same store gives the same file). */
export function inventoryBytes(inv: Inventory): Buffer {
  return Buffer.from(JSON.stringify(inv, null, 2) + '\n', 'utf8');
}

/** Parse and validate an inventory (`label` names it in errors). */
export function parseInventory(bytes: Buffer | string, label: string): Inventory {
  const bad = (why: string) => new InvalidArgumentError(`inventory ${label}: ${why}`);
  let v: unknown;
  try {
    v = JSON.parse(bytes.toString());
  } catch (e) {
    throw bad(`not valid JSON: ${(e as Error).message}`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw bad('not a JSON object');
  const o = v as Record<string, unknown>;
  if (o.format !== INVENTORY_FORMAT) throw bad(`format is ${JSON.stringify(o.format)}, expected ${JSON.stringify(INVENTORY_FORMAT)} (made by imgtool have)`);
  if (o.formatVersion !== INVENTORY_VERSION) throw bad(`format version ${JSON.stringify(o.formatVersion)} is not supported (this imgtool reads version ${INVENTORY_VERSION})`);
  if (!Array.isArray(o.blobs)) throw bad('"blobs" is not a list');
  const seen = new Map<string, number>();
  o.blobs.forEach((b, i) => {
    const e = b as Record<string, unknown>;
    if (!e || typeof e !== 'object' || typeof e.digest !== 'string' || !isDigest(e.digest)) throw bad(`blob ${i}: digest is not a sha256 digest: ${JSON.stringify(e?.digest)}`);
    if (typeof e.size !== 'number' || !Number.isSafeInteger(e.size) || e.size < 0) throw bad(`blob ${i} (${e.digest}): size is not a non-negative integer: ${JSON.stringify(e.size)}`);
    const prev = seen.get(e.digest);
    if (prev !== undefined && prev !== e.size) throw bad(`blob ${e.digest} is listed with two sizes (${prev} and ${e.size})`);
    seen.set(e.digest, e.size);
  });
  const images = Array.isArray(o.images)
    ? (o.images as Array<Record<string, unknown>>).filter((x) => x && typeof x.name === 'string' && typeof x.digest === 'string').map((x) => ({ name: x.name as string, digest: x.digest as string }))
    : [];
  return {
    format: INVENTORY_FORMAT, formatVersion: INVENTORY_VERSION, imgtool: typeof o.imgtool === 'string' ? o.imgtool : 'unknown', images,
    blobs: [...seen.entries()].map(([digest, size]) => ({ digest, size })),
  };
}

/** Read an inventory file (`-` for stdin is not supported: the archive may be on stdin). */
export function readInventory(file: string): Inventory {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw new InvalidArgumentError(`inventory ${file}: cannot read it: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return parseInventory(bytes, file);
}

/**
 * Every blob of the closure of each image in `refs` as the sending store describes it (every
 * platform; absent layers too: their digests are what the manifests name), digest -> size.
 */
export async function closureBlobs(store: Store, refs: string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const src = contentSource(store.content);
  for (const r of refs) {
    let rec;
    try {
      rec = store.images.resolve(r);
    } catch (e) {
      if (e instanceof ImgtoolError) throw new ImgtoolError(e.code, `--exclude ${r}: ${e.message}`, e.details);
      throw e;
    }
    if (!store.content.has(rec.target.digest)) throw new ImgtoolError('MISSING_CONTENT', `--exclude ${r}: its root ${rec.target.digest} is not in the store`);
    const walk = await walkImage(src, rec.target);
    for (const d of [rec.target, ...walk.blobs, ...walk.missing.map((m) => m.desc)]) out.set(d.digest, d.size);
  }
  return out;
}

/** The delta annotations for index.json (none when nothing is expected). */
export function deltaAnnotations(expects: string[]): Record<string, string> | undefined {
  if (!expects.length) return undefined;
  return { [DELTA_VERSION_ANNOTATION]: DELTA_VERSION, [DELTA_EXPECTS_ANNOTATION]: [...expects].sort().join(',') };
}

/**
 * The digests a delta archive says it expects the receiver to hold, from index.json's
 * bytes; undefined when it is not a delta. Malformed entries are ignored (the list is only a
 * hint for messages: presence and sizes are always checked against the manifests).
 */
export function deltaExpects(indexBytes: Buffer | undefined): string[] | undefined {
  if (!indexBytes?.length) return undefined;
  let doc: { annotations?: Record<string, unknown> };
  try {
    doc = JSON.parse(indexBytes.toString('utf8'));
  } catch {
    return undefined;
  }
  const a = doc?.annotations;
  if (!a || typeof a !== 'object' || typeof a[DELTA_EXPECTS_ANNOTATION] !== 'string') return undefined;
  return [...new Set((a[DELTA_EXPECTS_ANNOTATION] as string).split(',').map((s) => s.trim()).filter(isDigest))].sort();
}

/** Write an inventory file atomically (temp in the same directory, fsync, rename). */
export function writeInventoryFile(inv: Inventory, file: string): void {
  try {
    writeFileAtomic(file, inventoryBytes(inv));
  } catch (e) {
    throw new InvalidArgumentError(`cannot write inventory ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}
