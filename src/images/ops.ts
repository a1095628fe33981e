import { Store } from '../store';
import { walkImage, platformsOf } from './walk';
import type { BlobSource } from './walk';
import type { Descriptor } from './types';
import { contentSource } from './source';
import { normalizeReference } from '../reference';
import { ImgtoolError, NotFoundError, SizeMismatchError } from '../errors';
import { ImageRecord } from './store';

export interface ImageSummary {
  name: string;
  digest: string;
  mediaType: string;
  platforms: string[];
  /** Some index entries are absent from the store, or a layer can be neither read nor rebuilt. */
  partial: boolean;
  /** Layers whose blob is absent but rebuildable from a snapshot (after `load --discard-layers`). */
  rebuildable: number;
  /** Bytes of every present blob of the image's closure. */
  size: number;
  created: string;
  /**
   * Set when the image's documents cannot be read or are malformed (one line: which
   * document, which field); the other fields are then empty. Listing never fails for the
   * whole store because of one image.
   */
  unreadable?: string;
}

/** Blob sizes for summaries: `sizes` (one query for a whole listing) or one query per blob. */
interface SummarySource {
  source: BlobSource;
  size(digest: string): number | undefined;
}

function storeSource(store: Store): SummarySource {
  return { source: contentSource(store.content), size: (d) => store.content.info(d)?.size };
}

/** For listings: every blob's size read once, so the walks of thousands of images query nothing per blob. */
function listingSource(store: Store): SummarySource {
  const sizes = new Map(store.content.list().map((b) => [b.digest, b.size]));
  return {
    source: {
      has: (d) => sizes.has(d.digest),
      async readJSON<T>(d: Descriptor): Promise<T> {
        const size = sizes.get(d.digest);
        if (size !== undefined && size !== d.size) throw new SizeMismatchError(`${d.mediaType} ${d.digest}`, d.size, size);
        return store.content.readJSON<T>(d.digest, undefined, size !== undefined ? { size } : undefined);
      },
    },
    size: (d) => sizes.get(d),
  };
}

export async function summarizeImage(store: Store, rec: ImageRecord, src: SummarySource = storeSource(store)): Promise<ImageSummary> {
  const w = await walkImage(src.source, rec.target);
  let size = 0;
  for (const b of w.blobs) size += src.size(b.digest) ?? 0;
  // A discarded layer blob is not missing when a reproducible snapshot of its diffID exists.
  let rebuildable = 0;
  const missing = w.missing.filter((m) => {
    if (m.role !== 'layer' || m.index === undefined) return true;
    const cfg = w.manifests.find((x) => x.desc.digest === m.manifest)?.config;
    const diffId = cfg?.rootfs?.diff_ids?.[m.index];
    if (diffId && store.snapshots.forDiffId(diffId).some((s) => s.reproducible)) {
      rebuildable++;
      return false;
    }
    return true;
  });
  return {
    name: rec.name,
    digest: rec.target.digest,
    mediaType: rec.target.mediaType,
    platforms: platformsOf(w),
    partial: w.absent.length > 0 || missing.length > 0,
    rebuildable,
    size,
    created: new Date(rec.createdAt).toISOString(),
  };
}

/** Every image in the store with its platforms and size (names of one target share one walk); an unreadable image is listed with `unreadable` set. */
export async function listImages(store: Store): Promise<ImageSummary[]> {
  const byTarget = new Map<string, ImageSummary>();
  const src = listingSource(store);
  const out: ImageSummary[] = [];
  for (const rec of store.images.list()) {
    const key = `${rec.target.digest} ${rec.target.mediaType} ${rec.target.size}`;
    let s = byTarget.get(key);
    if (!s) {
      try {
        s = await summarizeImage(store, rec, src);
      } catch (e) {
        // One bad image must not hide the others. Any error: a raw one (an unreadable blob
        // file) is still about this image only.
        const why = e instanceof ImgtoolError ? e.message : `cannot be read (${(e as Error).message})`;
        s = {
          name: rec.name, digest: rec.target.digest, mediaType: rec.target.mediaType, platforms: [], partial: true,
          rebuildable: 0, size: 0, created: new Date(rec.createdAt).toISOString(), unreadable: why,
        };
      }
      byTarget.set(key, s);
    }
    out.push({ ...s, name: rec.name, created: new Date(rec.createdAt).toISOString() });
  }
  return out;
}

/** Point `dst` at the image `src` names. Returns the normalised new name. */
export function tagImage(store: Store, src: string, dst: string): string {
  const rec = store.images.resolve(src);
  const name = normalizeReference(dst);
  store.images.put(name, rec.target);
  return name;
}

/** Remove names (never content: that goes at prune). Fails naming every unknown image; removes none then. */
export function removeImages(store: Store, names: string[]): string[] {
  return store.meta.write(() => {
    const recs = names.map((n) => {
      try {
        return store.images.resolve(n);
      } catch (e) {
        if (e instanceof NotFoundError) throw new NotFoundError(`image ${JSON.stringify(n)} not found; nothing removed`);
        throw e;
      }
    });
    for (const r of recs) store.images.delete(r.name);
    return recs.map((r) => r.name);
  });
}
