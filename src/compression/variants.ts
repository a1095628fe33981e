import { Metadata } from '../metadata';
import { Compression } from '../images/mediatypes';
import { Label } from '../images/types';
import { ContentStore } from '../content';
import { ImgtoolError } from '../errors';

/**
 * One stored encoding of a layer, PROVEN: imgtool hashed the blob `digest`'s decompressed
 * bytes and got `diffId` (while unpacking, converting, rebuilding, or in a checking pass).
 */
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
 * The compression variants of layers: PROVEN blob <-> diffID links, keyed by blob digest.
 *
 * Invariants:
 *  - a row is written only by `recordProof`, and only after the caller hashed the blob's
 *    decompressed bytes to `diffId` (an uncompressed blob whose digest is the diffID proves
 *    itself). Nothing read from an archive or registry (a config's `rootfs.diff_ids`, a
 *    label) is ever recorded here: such links are claims, checked where they are used;
 *  - one blob has one diffID: proving another diffID for a recorded blob is an error naming
 *    both (it would need a sha256 collision, or a bug);
 *  - `variant_claims` holds unproven links (from stores written before proofs existed). They
 *    are offered only as *candidates to prove* (`claimsFor`), never as layers, and retention
 *    (`snapshot_content`) does not read them. Proving or disproving a claim removes it.
 * Recording a compressed variant also sets the `containerd.io/uncompressed` label.
 */
export class VariantStore {
  constructor(private readonly meta: Metadata, private readonly content: ContentStore) {}

  /** Record that blob `v.digest` decompresses to `v.diffId` — the caller has just hashed it. */
  recordProof(v: Omit<Variant, 'createdAt'>): void {
    this.meta.write(() => {
      const prev = this.get(v.digest);
      if (prev && prev.diffId !== v.diffId) {
        throw new ImgtoolError(
          'PRECONDITION',
          `blob ${v.digest} is recorded as a variant of layer ${prev.diffId} but was just hashed to ${v.diffId}; run imgtool fsck`,
        );
      }
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
      this.meta.db.prepare('DELETE FROM variant_claims WHERE digest = ?').run(v.digest);
      if (v.compression !== 'none') this.content.setLabel(v.digest, Label.UNCOMPRESSED, v.diffId);
    });
  }

  /** The proven row of a blob. */
  get(digest: string): Variant | undefined {
    const r = this.meta.db.prepare('SELECT * FROM variants WHERE digest = ?').get(digest) as Row | undefined;
    return r ? fromRow(r) : undefined;
  }

  /** Every proven variant of a layer (present or not in the content store), oldest first. */
  forDiffId(diffId: string): Variant[] {
    return (this.meta.db.prepare('SELECT * FROM variants WHERE diff_id = ? ORDER BY created_at, digest').all(diffId) as Row[]).map(fromRow);
  }

  /** Every proven variant. */
  list(): Variant[] {
    return (this.meta.db.prepare('SELECT * FROM variants ORDER BY diff_id, created_at').all() as Row[]).map(fromRow);
  }

  /** Every proven variant of several layers at once, grouped by diffID. */
  forDiffIds(diffIds: string[]): Map<string, Variant[]> {
    const out = new Map<string, Variant[]>();
    for (const d of diffIds) if (!out.has(d)) out.set(d, this.forDiffId(d));
    return out;
  }

  /** Unproven claims that some blob decompresses to `diffId`: candidates to prove, nothing more. */
  claimsFor(diffId: string): Variant[] {
    return (this.meta.db.prepare('SELECT * FROM variant_claims WHERE diff_id = ? ORDER BY created_at, digest').all(diffId) as Row[]).map(fromRow);
  }

  /** Every unproven claim (fsck proves them). */
  listClaims(): Variant[] {
    return (this.meta.db.prepare('SELECT * FROM variant_claims ORDER BY digest, diff_id').all() as Row[]).map(fromRow);
  }

  /** Forget a claim that hashing refuted (or whose blob is gone). */
  dropClaim(digest: string, diffId?: string): void {
    this.meta.write(() => {
      if (diffId) this.meta.db.prepare('DELETE FROM variant_claims WHERE digest = ? AND diff_id = ?').run(digest, diffId);
      else this.meta.db.prepare('DELETE FROM variant_claims WHERE digest = ?').run(digest);
    });
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

  /** Remove a variant row and any claim about the blob (GC or fsck, with the write lock held). */
  deleteLocked(digest: string): void {
    this.meta.db.prepare('DELETE FROM variants WHERE digest = ?').run(digest);
    this.meta.db.prepare('DELETE FROM variant_claims WHERE digest = ?').run(digest);
  }
}
