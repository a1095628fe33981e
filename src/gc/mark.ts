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
  reproducible: number;
}

export interface MarkOptions {
  /** Leases whose resources are not roots: the caller's own (`discardLayers` asks who ELSE holds a blob). */
  exceptLeases?: ReadonlySet<string>;
  /** A manifest whose own layer references do not count (the one `discardLayers` discards the layers of). */
  exceptLayersOf?: string;
}

/** Where the roots come from: image names and lease resources (a `Store`). */
export interface RootSource {
  images: { list(): Array<{ name: string; target: { digest: string; mediaType: string } }>; get(name: string): { name: string; target: { digest: string; mediaType: string } } | undefined };
  leases: { resources(id: string): Array<{ kind: string; ref: string }> };
}

/**
 * Synchronous, incremental mark over the metadata database and the blob files.
 *
 * Prune (and `discardLayers`) call `markRoots` twice: first inside a deferred read
 * transaction (a WAL snapshot: it blocks no writer), which reads every document; then
 * again inside the short `BEGIN IMMEDIATE` that sweeps. The second pass sees every root
 * as it is now but walks only what is not known complete: a subtree whose documents were
 * all present is never walked again (documents are content-addressed, so it cannot have
 * changed), while new or moved names, new lease resources and documents that were absent
 * the first time are walked then. Marks only grow, so the second pass retains everything
 * a fresh mark under the lock would, plus what was retained a moment ago.
 *
 * JSON documents (indexes, manifests, configs) are read with `readFileSync` and their
 * digest verified; a document that cannot be read aborts the mark (its children would
 * be unknown, and sweeping them could lose content). A row whose file is missing counts as
 * absent in the first pass (a concurrent sweep may just have removed both) and is an error
 * under the lock.
 */
export class Marker {
  /** Every blob digest retained (present or not). */
  readonly blobs = new Set<string>();
  /** What first retained each blob, for messages ("image x:1", "lease L"). */
  readonly retainedBy = new Map<string, string>();
  /** Snapshots retained by a lease (directly, through a leased image, or a leased manifest). */
  readonly leaseSnapshots = new Set<string>();
  /** Snapshots retained only because an image is unpacked. */
  readonly imageSnapshots = new Set<string>();
  /** Layers referenced by retained manifests, keyed by `<manifest>|<index>`. */
  readonly layers = new Map<string, RetainedLayer>();
  /** `<digest>|I` / `<digest>|L`: subtrees walked with every document present. */
  private readonly complete = new Set<string>();
  /** Parsed documents (null: present but not a document), so a re-walk reads nothing twice. */
  private readonly docs = new Map<string, Record<string, unknown> | null>();
  /** diff_ids of configs read (null: present but without usable diff_ids). */
  private readonly configs = new Map<string, string[] | null>();
  /** Under the write lock: a row without its file is an error, not an absence. */
  private strict = false;
  private readonly snapStmt;
  private readonly contentStmt;
  private readonly variantStmt;
  private readonly variantsOfStmt;
  private readonly snapsOfStmt;
  private readonly sizeStmt;

  constructor(private readonly db: Db, private readonly content: ContentStore, private readonly opts: MarkOptions = {}) {
    this.snapStmt = db.prepare('SELECT chain_id, parent, diff_id, reproducible FROM snapshots WHERE chain_id = ?');
    this.contentStmt = db.prepare('SELECT digest FROM snapshot_content WHERE chain_id = ?');
    this.variantStmt = db.prepare('SELECT diff_id FROM variants WHERE digest = ?');
    this.variantsOfStmt = db.prepare('SELECT digest FROM variants WHERE diff_id = ? ORDER BY digest');
    this.snapsOfStmt = db.prepare('SELECT chain_id, parent, diff_id, reproducible FROM snapshots WHERE diff_id = ? ORDER BY created_at, chain_id');
    this.sizeStmt = db.prepare('SELECT size FROM blobs WHERE digest = ?');
  }

  private snapshot(chainId: string): SnapshotRow | undefined {
    return this.snapStmt.get(chainId) as SnapshotRow | undefined;
  }

  /** Size of a blob the database records (one prepared statement: the mark asks thousands of times). */
  size(digest: string): number | undefined {
    return (this.sizeStmt.get(digest) as { size: number } | undefined)?.size;
  }

  private retain(digest: string, what: string): void {
    this.blobs.add(digest);
    if (!this.retainedBy.has(digest)) this.retainedBy.set(digest, what);
  }

  /**
   * Mark from every root: each image name, and what each of `leases` (the live ones) holds,
   * except `exceptLeases`. `underLock`: this is the pass inside the sweeping write
   * transaction (see the class comment).
   */
  markRoots(roots: RootSource, leases: Array<{ id: string }>, underLock: boolean): void {
    this.strict = underLock;
    for (const img of roots.images.list()) this.markImage(img.name, img.target, false);
    for (const l of leases) {
      if (this.opts.exceptLeases?.has(l.id)) continue;
      for (const r of roots.leases.resources(l.id)) {
        if (r.kind === 'content') this.markLeasedContent(r.ref, l.id);
        else if (r.kind === 'snapshot') this.markLeasedSnapshot(r.ref, l.id);
        else if (r.kind === 'image') {
          const img = roots.images.get(r.ref);
          if (img) this.markImage(img.name, img.target, true);
        }
      }
    }
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
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' && !this.strict) return undefined;
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

  /** An index or manifest (known type) or a sniffed document; undefined when absent, null when not a document. */
  private document(digest: string, known: boolean, what: string): Record<string, unknown> | null | undefined {
    const cached = this.docs.get(digest);
    if (cached !== undefined) return cached;
    let doc: Record<string, unknown> | null | undefined;
    if (known) {
      const buf = this.readDoc(digest, what);
      doc = buf ? this.parse(buf, digest, what) : undefined;
    } else {
      doc = this.sniff(digest);
    }
    if (doc !== undefined) this.docs.set(digest, doc);
    return doc;
  }

  /** Mark an image's closure from its target descriptor. */
  markImage(name: string, target: { digest: string; mediaType: string }, byLease: boolean): void {
    this.markDescriptor(target.digest, target.mediaType, `image ${name}`, byLease, 0);
  }

  /**
   * Mark a descriptor and, for documents, what they reference. Unknown media types are
   * sniffed: a present JSON object shaped like an index or manifest is followed
   * (retaining more is always safe). Returns whether the subtree is complete (every
   * document in it present), which spares it the next pass.
   */
  markDescriptor(digest: string, mediaType: string | undefined, what: string, byLease: boolean, depth: number): boolean {
    if (!isDigest(digest)) return true;
    this.retain(digest, what);
    if (depth > 16) throw new GcReadError(`${what}: documents nested deeper than 16 at ${digest}`);
    if (isLayerType(mediaType) || isConfigType(mediaType)) return true;
    const key = `${digest}|${byLease ? 'L' : 'I'}`;
    if (this.complete.has(key)) return true;
    const doc = this.document(digest, isIndexType(mediaType) || isManifestType(mediaType), what);
    if (doc === undefined) return false;
    let complete = true;
    if (doc !== null) {
      if (Array.isArray(doc.manifests)) {
        for (const m of doc.manifests as Array<{ digest?: unknown; mediaType?: unknown }>) {
          if (m && typeof m.digest === 'string') {
            complete = this.markDescriptor(m.digest, typeof m.mediaType === 'string' ? m.mediaType : undefined, what, byLease, depth + 1) && complete;
          }
        }
      }
      if (doc.config && typeof doc.config === 'object' && Array.isArray(doc.layers)) complete = this.markManifest(digest, doc, what, byLease) && complete;
      else if (doc.config && typeof doc.config === 'object') {
        const c = doc.config as { digest?: unknown };
        if (typeof c.digest === 'string' && isDigest(c.digest)) this.retain(c.digest, what);
      }
    }
    if (complete) this.complete.add(key);
    return complete;
  }

  /** A present blob that is not a known layer, small enough, starting with '{' and parsing to an object with manifests/layers; null when present but not that; undefined when absent. */
  private sniff(digest: string): Record<string, unknown> | null | undefined {
    const size = this.size(digest);
    if (size === undefined) return undefined;
    if (size > MAX_JSON_SIZE || size < 2) return null;
    if (this.variantStmt.get(digest)) return null; // a layer variant
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
      return this.strict ? null : undefined;
    }
    if (first[0] !== 0x7b /* { */) return null;
    let v: unknown;
    try {
      v = JSON.parse(fs.readFileSync(this.content.blobPath(digest), 'utf8'));
    } catch {
      return null;
    }
    if (!v || typeof v !== 'object' || Array.isArray(v)) return null;
    const o = v as Record<string, unknown>;
    if (Array.isArray(o.manifests) || (o.config && typeof o.config === 'object' && Array.isArray(o.layers))) return o;
    return null;
  }

  /** diff_ids of a config; undefined when the config is absent, null when it has none usable. */
  private configDiffIds(digest: string, what: string): string[] | null | undefined {
    const cached = this.configs.get(digest);
    if (cached !== undefined) return cached;
    const buf = this.readDoc(digest, what);
    if (!buf) return undefined;
    const cfg = this.parse(buf, digest, what);
    const rootfs = cfg.rootfs as { diff_ids?: unknown } | undefined;
    const ids = rootfs && Array.isArray(rootfs.diff_ids) && rootfs.diff_ids.every((d) => isDigest(d)) ? (rootfs.diff_ids as string[]) : null;
    this.configs.set(digest, ids);
    return ids;
  }

  /** Returns false when the config is absent (its diffIDs, hence the snapshot chain, are not known yet). */
  private markManifest(digest: string, m: Record<string, unknown>, what: string, byLease: boolean): boolean {
    const config = m.config as { digest?: unknown; mediaType?: unknown };
    const layers = (m.layers as Array<{ digest?: unknown; mediaType?: unknown }>).filter((l) => l && typeof l.digest === 'string' && isDigest(l.digest));
    let diffIds: string[] | undefined;
    let complete = true;
    if (typeof config.digest === 'string' && isDigest(config.digest)) {
      this.retain(config.digest, what);
      if (isConfigType(typeof config.mediaType === 'string' ? config.mediaType : undefined)) {
        const ids = this.configDiffIds(config.digest, `${what}: config of manifest ${digest}`);
        if (ids === undefined) complete = false;
        else if (ids) diffIds = ids;
      }
    }
    if (!diffIds || diffIds.length !== layers.length) {
      // Config absent (partial image) or inconsistent: fall back to the variants table per layer.
      const fromVariants = layers.map((l) => (this.variantStmt.get(l.digest as string) as { diff_id: string } | undefined)?.diff_id);
      diffIds = fromVariants.every((d) => d !== undefined) ? (fromVariants as string[]) : undefined;
    }
    const chains = diffIds ? chainIds(diffIds) : [];
    // discardLayers asks who else references these layers: this manifest's own references do not count.
    if (digest === this.opts.exceptLayersOf) return complete;
    for (let i = 0; i < layers.length; i++) {
      const ld = layers[i].digest as string;
      this.retain(ld, what);
      this.layers.set(`${digest}|${i}`, { digest: ld, diffId: diffIds?.[i], chainId: chains[i], what: `${what}: layer ${i + 1} of manifest ${digest}` });
    }
    // The unpacked chain: every snapshot of it that exists, with its parents.
    for (let i = chains.length - 1; i >= 0; i--) {
      if (this.snapshot(chains[i])) {
        this.markChain(chains[i], byLease ? this.leaseSnapshots : this.imageSnapshots, false);
      }
    }
    return complete;
  }

  /**
   * Mark a snapshot and its parent chain into `set`. With `withContent` (a leased
   * snapshot), also every blob recorded for each snapshot of the chain, as the
   * `snapshot_content` view has it now (so blobs recorded after the lease count too).
   */
  markChain(chainId: string, set: Set<string>, withContent: boolean, what = `snapshot ${chainId}`): void {
    let cur: string | null = chainId;
    const seen = new Set<string>();
    while (cur && !seen.has(cur)) {
      seen.add(cur);
      const row = this.snapshot(cur);
      if (!row) break;
      set.add(cur);
      if (withContent) for (const r of this.contentStmt.all(cur) as Array<{ digest: string }>) this.retain(r.digest, what);
      cur = row.parent;
    }
  }

  /** A snapshot held by a lease: chain and content. */
  markLeasedSnapshot(chainId: string, leaseId = '?'): void {
    this.markChain(chainId, this.leaseSnapshots, true, `lease ${leaseId}: snapshot ${chainId}`);
  }

  /** A blob held by a lease; a leased index or manifest retains its closure. */
  markLeasedContent(digest: string, leaseId: string): void {
    this.markDescriptor(digest, undefined, `lease ${leaseId}`, true, 0);
  }

  /**
   * For every retained layer none of whose blobs is present and retained (its own blob,
   * the diffID as an uncompressed blob, any proven variant of the diffID), keep in `kept`
   * one reproducible snapshot with that diffID, whatever chain it is in, and its
   * parents: it is the only way left to produce the layer. A snapshot of the diffID that
   * is kept already suffices; else the layer's own chain is preferred, then the oldest.
   */
  keepRebuildSources(kept: Set<string>): void {
    const present = (d: string) => this.blobs.has(d) && this.size(d) !== undefined;
    const done = new Set<string>();
    for (const layer of this.layers.values()) {
      const diffId = layer.diffId;
      if (!diffId || done.has(diffId)) continue;
      if (present(layer.digest) || present(diffId)) continue;
      if ((this.variantsOfStmt.all(diffId) as Array<{ digest: string }>).some((v) => present(v.digest))) continue;
      done.add(diffId);
      const sources = (this.snapsOfStmt.all(diffId) as SnapshotRow[]).filter((r) => r.reproducible === 1);
      if (!sources.length || sources.some((r) => kept.has(r.chain_id))) continue;
      const pick = sources.find((r) => r.chain_id === layer.chainId) ?? sources[0];
      this.markChain(pick.chain_id, kept, false);
    }
  }
}
