/**
 * fsck's layer check: every blob <-> diffID link the store relies on or has been told about
 * (a proven variant row, an unproven claim, an image config's `rootfs.diff_ids`) is checked
 * by hashing the blob's decompressed bytes, in the same read that re-hashes the blob itself.
 * A link that holds becomes (or stays) a proof; one that does not is damage: a wrong variant
 * row or claim is dropped by `--repair`; an image whose layer is not what its config says
 * cannot be repaired (the image itself is inconsistent) and is reported as such.
 */
import * as fs from 'node:fs';
import * as crypto from 'node:crypto';
import { Transform, TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Store } from '../store';
import { walkImage } from '../images/walk';
import { contentSource } from '../images/source';
import { isLayerType } from '../images/mediatypes';
import { AutoDecompressStream, CodecError, Compression, describeCodecError } from '../compression/codecs';
import { Digester } from '../digest';

export interface LayerClaim {
  diffId: string;
  source: 'variant' | 'claim' | 'image';
  /** For messages: which image and layer, or which row. */
  what: string;
  mediaType?: string;
}

/** Every link to check, by blob digest. Images that cannot be walked are skipped (fsck reports them). */
export async function layerClaims(store: Store): Promise<Map<string, LayerClaim[]>> {
  const out = new Map<string, LayerClaim[]>();
  const add = (digest: string, c: LayerClaim) => {
    const l = out.get(digest) ?? [];
    if (!l.some((x) => x.diffId === c.diffId && x.source === c.source)) l.push(c);
    out.set(digest, l);
  };
  for (const v of store.variants.list()) add(v.digest, { diffId: v.diffId, source: 'variant', what: `variant row of layer ${v.diffId}`, mediaType: v.mediaType });
  for (const v of store.variants.listClaims()) add(v.digest, { diffId: v.diffId, source: 'claim', what: `unproven claim (layer ${v.diffId})`, mediaType: v.mediaType });
  const src = contentSource(store.content);
  for (const img of store.images.list()) {
    let w;
    try {
      w = await walkImage(src, img.target);
    } catch {
      continue;
    }
    for (const m of w.manifests) {
      const ids = m.config?.rootfs?.diff_ids;
      const layers = m.manifest.layers;
      if (!Array.isArray(ids) || ids.length !== layers.length) continue;
      layers.forEach((l, i) => {
        if (!isLayerType(l.mediaType) || typeof ids[i] !== 'string') return;
        add(l.digest, { diffId: ids[i], source: 'image', what: `image ${img.name} manifest ${m.desc.digest} layer ${i + 1}`, mediaType: l.mediaType });
      });
    }
  }
  return out;
}

export interface HashedBlob {
  digest: string;
  size: number;
  /** sha256 of the decompressed bytes (when asked for), or why it does not decompress. */
  decoded?: { digest?: string; error?: string; compression?: Compression };
}

class Tap extends Transform {
  readonly h = crypto.createHash('sha256');
  size = 0;
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.h.update(chunk);
    this.size += chunk.length;
    cb(null, chunk);
  }
}

class Sink extends Transform {
  readonly d = new Digester();
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.d.update(chunk);
    cb();
  }
}

/** Hash a stored file; with `decode`, also its decompressed bytes — one read either way. */
export async function hashStoredFile(p: string, decode: boolean): Promise<HashedBlob> {
  const tap = new Tap();
  const rs = fs.createReadStream(p, { highWaterMark: 1024 * 1024 });
  if (!decode) {
    await pipeline(rs, tap, new Sink());
    return { digest: 'sha256:' + tap.h.digest('hex'), size: tap.size };
  }
  const sink = new Sink();
  const dec = new AutoDecompressStream();
  try {
    await pipeline(rs, tap, dec, sink);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw e;
    // The decoder stopped early: hash the blob again, raw, so its own digest is still checked.
    const again = await hashStoredFile(p, false);
    return { ...again, decoded: { error: `does not decompress: ${e instanceof CodecError ? (e as Error).message : describeCodecError(dec.detected ?? 'gzip', e)}` } };
  }
  return { digest: 'sha256:' + tap.h.digest('hex'), size: tap.size, decoded: { digest: sink.d.digest(), compression: dec.detected ?? 'none' } };
}

export interface LayerFinding {
  claim: LayerClaim;
  message: string;
}

/**
 * Judge the links of one intact blob against its decoded hash. Links that hold and are not
 * yet proofs are recorded as proofs; the ones that fail are returned.
 */
export function judgeLayerClaims(store: Store, digest: string, size: number, decoded: NonNullable<HashedBlob['decoded']>, claims: LayerClaim[]): LayerFinding[] {
  const bad: LayerFinding[] = [];
  for (const c of claims) {
    if (decoded.error) {
      bad.push({ claim: c, message: `${c.what}: blob ${digest} ${decoded.error}` });
      continue;
    }
    if (decoded.digest !== c.diffId) {
      bad.push({ claim: c, message: `${c.what}: blob ${digest} decompresses to ${decoded.digest}, not ${c.diffId}` });
      continue;
    }
    if (c.source !== 'variant' && !store.variants.get(digest) && store.content.has(digest)) {
      if (!decoded.digest) continue;
      const compression = decoded.compression ?? 'none';
      store.variants.recordProof({ digest, diffId: decoded.digest, compression, size, mediaType: c.mediaType });
    }
  }
  return bad;
}
