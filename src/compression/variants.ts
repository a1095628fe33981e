import { Metadata } from '../metadata';
import { Compression } from '../images/mediatypes';
import { Label } from '../images/types';
import { ContentStore } from '../content';

/** One stored encoding of a layer: the blob `digest` decodes to the tar whose sha256 is `diffId`. */
export interface Variant {
  digest: string;
  diffId: string;
  compression: Compression;
  size: number;
  mediaType?: string;
  /** Level and codec version when imgtool made the blob; unknown for blobs made by other tools. */
  level?: number;
  codecVersion?: string;
  createdAt: number;
}

interface Row {
  digest: string; diff_id: string; compression: Compression; size: number;
  media_type: string | null; level: number | null; codec_version: string | null; created_at: number;
}

const fromRow = (r: Row): Variant => ({
  digest: r.digest, diffId: r.diff_id, compression: r.compression, size: r.size,
  mediaType: r.media_type ?? undefined, level: r.level ?? undefined, codecVersion: r.codec_version ?? undefined, createdAt: r.created_at,
});

/**
 * The compression variants table: every known blob of every layer, keyed by blob digest.
 * Recording a compressed variant also sets the `containerd.io/uncompressed` label.
 */
export class VariantStore {
  constructor(private readonly meta: Metadata, private readonly content: ContentStore) {}

  record(v: Omit<Variant, 'createdAt'>): void {
    this.meta.write(() => {
      this.meta.db
        .prepare(
          `INSERT INTO variants (digest, diff_id, compression, size, media_type, level, codec_version, created_at)
           VALUES (@digest, @diffId, @compression, @size, @mediaType, @level, @codecVersion, @now)
           ON CONFLICT(digest) DO UPDATE SET
             media_type = COALESCE(variants.media_type, excluded.media_type),
             level = COALESCE(variants.level, excluded.level),
             codec_version = COALESCE(variants.codec_version, excluded.codec_version)`,
        )
        .run({ ...v, mediaType: v.mediaType ?? null, level: v.level ?? null, codecVersion: v.codecVersion ?? null, now: Date.now() });
      if (v.compression !== 'none') this.content.setLabel(v.digest, Label.UNCOMPRESSED, v.diffId);
    });
  }

  get(digest: string): Variant | undefined {
    const r = this.meta.db.prepare('SELECT * FROM variants WHERE digest = ?').get(digest) as Row | undefined;
    return r ? fromRow(r) : undefined;
  }

  /** Every variant of a layer (present or not in the content store), oldest first. */
  forDiffId(diffId: string): Variant[] {
    return (this.meta.db.prepare('SELECT * FROM variants WHERE diff_id = ? ORDER BY created_at, digest').all(diffId) as Row[]).map(fromRow);
  }

  list(): Variant[] {
    return (this.meta.db.prepare('SELECT * FROM variants ORDER BY diff_id, created_at').all() as Row[]).map(fromRow);
  }

  /** Every variant of several layers at once, grouped by diffID. */
  forDiffIds(diffIds: string[]): Map<string, Variant[]> {
    const out = new Map<string, Variant[]>();
    for (const d of diffIds) if (!out.has(d)) out.set(d, this.forDiffId(d));
    return out;
  }

  /**
   * Correct the recorded compression (and media type) of a blob whose bytes say
   * otherwise, e.g. a zstd layer that containerd labelled gzip.
   */
  correctCompression(digest: string, compression: Compression, mediaType?: string): void {
    this.meta.write(() => {
      this.meta.db
        .prepare('UPDATE variants SET compression = ?, media_type = COALESCE(?, media_type) WHERE digest = ?')
        .run(compression, mediaType ?? null, digest);
    });
  }

  /**
   * Compressed blobs labelled `containerd.io/uncompressed` = diffID that have no
   * variant row (recorded by another path, or before the variants table knew them).
   */
  labelledWithoutRow(diffId: string): string[] {
    return (this.meta.db
      .prepare(
        `SELECT l.digest AS digest FROM content_labels l LEFT JOIN variants v ON v.digest = l.digest
         WHERE l.key = ? AND l.value = ? AND v.digest IS NULL ORDER BY l.digest`,
      )
      .all(Label.UNCOMPRESSED, diffId) as Array<{ digest: string }>).map((r) => r.digest);
  }

  /** Remove a variant row (GC, with the write lock held). */
  deleteLocked(digest: string): void {
    this.meta.db.prepare('DELETE FROM variants WHERE digest = ?').run(digest);
  }
}
