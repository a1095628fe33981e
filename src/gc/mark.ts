import * as fs from 'node:fs';
import * as crypto from 'node:crypto';
import { Db } from '../metadata';
import { ContentStore, MAX_JSON_SIZE } from '../content';
import { isIndexType, isManifestType, isConfigType, isLayerType } from '../images/mediatypes';
import { ImgtoolError } from '../errors';
import { isDigest } from '../digest';

/** `ChainID(L0) = DiffID(L0)`, `ChainID(L0..Ln) = sha256(ChainID(L0..Ln-1) + " " + DiffID(Ln))`. */
export function chainIds(diffIds: string[]): string[] {
  const out: string[] = [];
  for (const d of diffIds) {
    out.push(out.length === 0 ? d : 'sha256:' + crypto.createHash('sha256').update(`${out[out.length - 1]} ${d}`).digest('hex'));
  }
  return out;
}

/** A layer some retained manifest references. */
export interface RetainedLayer {
  digest: string;
  diffId?: string;
  chainId?: string;
  /** Who retains it, for messages. */
  what: string;
}

export class GcReadError extends ImgtoolError {
  constructor(message: string) {
    super('PRECONDITION', message);
    this.name = 'GcReadError';
  }
}

interface SnapshotRow {
  chain_id: string;
  parent: string | null;
  diff_id: string;
}

/**
 * Synchronous mark phase over the metadata database and the blob files; runs inside
 * prune's `BEGIN IMMEDIATE` transaction, so nothing it reads can change under it.
 * JSON documents (indexes, manifests, configs) are read with `readFileSync` and their
 * digest verified; a document that cannot be read aborts the mark (its children would
 * be unknown, and sweeping them could lose content).
 */
export class Marker {
  /** Every blob digest retained (present or not). */
  readonly blobs = new Set<string>();
  /** Snapshots retained by a lease (directly, through a leased image, or a leased manifest). */
  readonly leaseSnapshots = new Set<string>();
  /** Snapshots retained only because an image is unpacked. */
  readonly imageSnapshots = new Set<string>();
  /** Layers referenced by retained manifests (for the `--all` exception). */
  readonly layers: RetainedLayer[] = [];
  private readonly docsVisited = new Set<string>();
  private readonly snapStmt;
  private readonly contentStmt;
  private readonly variantStmt;

  constructor(private readonly db: Db, private readonly content: ContentStore) {
    this.snapStmt = db.prepare('SELECT chain_id, parent, diff_id FROM snapshots WHERE chain_id = ?');
    this.contentStmt = db.prepare('SELECT digest FROM snapshot_content WHERE chain_id = ?');
    this.variantStmt = db.prepare('SELECT diff_id FROM variants WHERE digest = ?');
  }

  private snapshot(chainId: string): SnapshotRow | undefined {
    return this.snapStmt.get(chainId) as SnapshotRow | undefined;
  }

  private size(digest: string): number | undefined {
    return this.content.info(digest)?.size;
  }

  /** Read a present document, verifying its digest; undefined when the blob is not in the store. */
  private readDoc(digest: string, what: string): Buffer | undefined {
    const size = this.size(digest);
    if (size === undefined) return undefined;
    if (size > MAX_JSON_SIZE) throw new GcReadError(`${what}: document ${digest} is ${size} bytes, over the ${MAX_JSON_SIZE}-byte limit; run imgtool fsck`);
    let buf: Buffer;
    try {
      buf = fs.readFileSync(this.content.blobPath(digest));
    } catch (e) {
      throw new GcReadError(`${what}: cannot read ${digest}: ${(e as Error).message}; run imgtool fsck --repair`);
    }
    const actual = 'sha256:' + crypto.createHash('sha256').update(buf).digest('hex');
    if (actual !== digest) throw new GcReadError(`${what}: stored ${digest} is corrupt (hashes to ${actual}); run imgtool fsck --repair`);
    return buf;
  }

  private parse(buf: Buffer, digest: string, what: string): Record<string, unknown> {
    try {
      const v = JSON.parse(buf.toString('utf8'));
      if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
    } catch {
      /* fall through */
    }
    throw new GcReadError(`${what}: ${digest} is not a valid JSON document; run imgtool fsck`);
  }

  /** Mark an image's closure from its target descriptor. */
  markImage(name: string, target: { digest: string; mediaType: string }, byLease: boolean): void {
    this.markDescriptor(target.digest, target.mediaType, `image ${name}`, byLease, 0);
  }

  /**
   * Mark a descriptor and, for documents, what they reference. Unknown media types are
   * sniffed: a present JSON object shaped like an index or manifest is followed
   * (retaining more is always safe).
   */
  markDescriptor(digest: string, mediaType: string | undefined, what: string, byLease: boolean, depth: number): void {
    if (!isDigest(digest)) return;
    this.blobs.add(digest);
    if (depth > 16) throw new GcReadError(`${what}: documents nested deeper than 16 at ${digest}`);
    const key = `${digest}|${byLease ? 'L' : 'I'}`;
    if (this.docsVisited.has(key)) return;
    if (isLayerType(mediaType) || isConfigType(mediaType)) return;
    const known = isIndexType(mediaType) || isManifestType(mediaType);
    let doc: Record<string, unknown> | undefined;
    if (known) {
      const buf = this.readDoc(digest, what);
      if (!buf) return;
      doc = this.parse(buf, digest, what);
    } else {
      doc = this.sniff(digest);
      if (!doc) return;
    }
    this.docsVisited.add(key);
    if (Array.isArray(doc.manifests)) {
      for (const m of doc.manifests as Array<{ digest?: unknown; mediaType?: unknown }>) {
        if (m && typeof m.digest === 'string') this.markDescriptor(m.digest, typeof m.mediaType === 'string' ? m.mediaType : undefined, what, byLease, depth + 1);
      }
    }
    if (doc.config && typeof doc.config === 'object' && Array.isArray(doc.layers)) this.markManifest(digest, doc, what, byLease);
    else if (doc.config && typeof doc.config === 'object') {
      const c = doc.config as { digest?: unknown };
      if (typeof c.digest === 'string' && isDigest(c.digest)) this.blobs.add(c.digest);
    }
  }

  /** A present blob that is not a known layer, small enough, starting with '{' and parsing to an object with manifests/layers. */
  private sniff(digest: string): Record<string, unknown> | undefined {
    const size = this.size(digest);
    if (size === undefined || size > MAX_JSON_SIZE || size < 2) return undefined;
    if (this.variantStmt.get(digest)) return undefined; // a layer variant
    let first: Buffer;
    try {
      const fd = fs.openSync(this.content.blobPath(digest), 'r');
      try {
        first = Buffer.alloc(1);
        fs.readSync(fd, first, 0, 1, 0);
      } finally {
        fs.closeSync(fd);
      }
    } catch {
      return undefined;
    }
    if (first[0] !== 0x7b /* { */) return undefined;
    let v: unknown;
    try {
      v = JSON.parse(fs.readFileSync(this.content.blobPath(digest), 'utf8'));
    } catch {
      return undefined;
    }
    if (!v || typeof v !== 'object' || Array.isArray(v)) return undefined;
    const o = v as Record<string, unknown>;
    if (Array.isArray(o.manifests) || (o.config && typeof o.config === 'object' && Array.isArray(o.layers))) return o;
    return undefined;
  }

  private markManifest(digest: string, m: Record<string, unknown>, what: string, byLease: boolean): void {
    const config = m.config as { digest?: unknown; mediaType?: unknown };
    const layers = (m.layers as Array<{ digest?: unknown; mediaType?: unknown }>).filter((l) => l && typeof l.digest === 'string' && isDigest(l.digest));
    let diffIds: string[] | undefined;
    if (typeof config.digest === 'string' && isDigest(config.digest)) {
      this.blobs.add(config.digest);
      if (isConfigType(typeof config.mediaType === 'string' ? config.mediaType : undefined)) {
        const buf = this.readDoc(config.digest, `${what}: config of manifest ${digest}`);
        if (buf) {
          const cfg = this.parse(buf, config.digest, `${what}: config of manifest ${digest}`);
          const rootfs = cfg.rootfs as { diff_ids?: unknown } | undefined;
          if (rootfs && Array.isArray(rootfs.diff_ids) && rootfs.diff_ids.every((d) => isDigest(d))) diffIds = rootfs.diff_ids as string[];
        }
      }
    }
    if (!diffIds || diffIds.length !== layers.length) {
      // Config absent (partial image) or inconsistent: fall back to the variants table per layer.
      const fromVariants = layers.map((l) => (this.variantStmt.get(l.digest as string) as { diff_id: string } | undefined)?.diff_id);
      diffIds = fromVariants.every((d) => d !== undefined) ? (fromVariants as string[]) : undefined;
    }
    const chains = diffIds ? chainIds(diffIds) : [];
    for (let i = 0; i < layers.length; i++) {
      const ld = layers[i].digest as string;
      this.blobs.add(ld);
      this.layers.push({ digest: ld, diffId: diffIds?.[i], chainId: chains[i], what: `${what}: layer ${i + 1} of manifest ${digest}` });
    }
    // The unpacked chain: top-most snapshot that exists, with its parents.
    for (let i = chains.length - 1; i >= 0; i--) {
      if (this.snapshot(chains[i])) {
        this.markChain(chains[i], byLease ? this.leaseSnapshots : this.imageSnapshots, false);
      }
    }
  }

  /**
   * Mark a snapshot and its parent chain into `set`. With `withContent` (a leased
   * snapshot), also every blob recorded for each snapshot of the chain, as the
   * `snapshot_content` view has it now (so blobs recorded after the lease count too).
   */
  markChain(chainId: string, set: Set<string>, withContent: boolean): void {
    let cur: string | null = chainId;
    const seen = new Set<string>();
    while (cur && !seen.has(cur)) {
      seen.add(cur);
      const row = this.snapshot(cur);
      if (!row) break;
      set.add(cur);
      if (withContent) for (const r of this.contentStmt.all(cur) as Array<{ digest: string }>) this.blobs.add(r.digest);
      cur = row.parent;
    }
  }

  /** A snapshot held by a lease: chain and content. */
  markLeasedSnapshot(chainId: string): void {
    this.markChain(chainId, this.leaseSnapshots, true);
  }

  /** A blob held by a lease; a leased index or manifest retains its closure. */
  markLeasedContent(digest: string, leaseId: string): void {
    this.markDescriptor(digest, undefined, `lease ${leaseId}`, true, 0);
  }
}
