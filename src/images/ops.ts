import { Store } from '../store';
import { walkImage, platformsOf } from './walk';
import { contentSource } from './source';
import { normalizeReference } from '../reference';
import { ImgtoolError, NotFoundError } from '../errors';
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

export async function summarizeImage(store: Store, rec: ImageRecord): Promise<ImageSummary> {
  const w = await walkImage(contentSource(store.content), rec.target);
  let size = 0;
  for (const b of w.blobs) size += store.content.info(b.digest)?.size ?? 0;
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

/** Every image in the store with its platforms and size; an unreadable image is listed with `unreadable` set. */
export async function listImages(store: Store): Promise<ImageSummary[]> {
  const out: ImageSummary[] = [];
  for (const rec of store.images.list()) {
    try {
      out.push(await summarizeImage(store, rec));
    } catch (e) {
      // One bad image must not hide the others. Any error: a raw one (an unreadable blob
      // file) is still about this image only.
      const why = e instanceof ImgtoolError ? e.message : `cannot be read (${(e as Error).message})`;
      out.push({
        name: rec.name, digest: rec.target.digest, mediaType: rec.target.mediaType, platforms: [], partial: true,
        rebuildable: 0, size: 0, created: new Date(rec.createdAt).toISOString(), unreadable: why,
      });
    }
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
