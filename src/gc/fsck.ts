import * as fs from 'node:fs';
import * as path from 'node:path';
import { Store } from '../store';
import { walkImage } from '../images/walk';
import { contentSource } from '../images/source';
import { isLayerType } from '../images/mediatypes';
import { ImageConfig } from '../images/types';
import { Marker, chainIds } from './mark';
import { snapshotFiles } from './snapshot-files';
import { removeTree } from '../tar';
import { tempEntryAbandoned, treeSize } from './prune';
import { HashedBlob, hashStoredFile, judgeLayerClaims, layerClaims } from './fsck-layers';

export interface FsckOptions {
  /** Remove orphans; drop rows whose content is gone or corrupt (reported as unrecoverable). */
  repair?: boolean;
  /** Called with the running count of blobs hashed. */
  onProgress?: (done: number, total: number) => void;
}

/**
 * One finding. `error`: the store is damaged (missing or corrupt content, broken
 * snapshot chain, image closure incomplete); `orphan`: garbage nothing uses (files
 * without rows, abandoned temp files), which `--repair` or `prune` removes.
 */
export interface FsckProblem {
  severity: 'error' | 'orphan';
  kind:
    | 'database'
    | 'blob-missing'
    | 'blob-corrupt'
    | 'blob-unindexed'
    | 'temp'
    | 'label-orphan'
    | 'snapshot-missing'
    | 'snapshot-incomplete'
    | 'snapshot-broken-chain'
    | 'snapshot-unindexed'
    | 'image-incomplete'
    | 'image-unreadable'
    | 'layer-mismatch'
    | 'image-invalid';
  subject: string;
  message: string;
  /** With --repair: what was done. */
  repaired?: string;
  /** With --repair: content that is lost and could not be restored. */
  unrecoverable?: boolean;
}

export interface FsckResult {
  blobs: number;
  bytes: number;
  snapshots: number;
  images: number;
  problems: FsckProblem[];
  errors: number;
  orphans: number;
  /** True when no error remains (orphans are not damage). */
  ok: boolean;
}

/**
 * Check the store: SQLite integrity; every blob's size and digest (stream-hashed); rows
 * against files and files without rows; abandoned temp files; every snapshot's row,
 * directory and parent chain; every image's closure (a layer whose blob is absent is
 * fine while a snapshot or another variant can rebuild it). With `repair`, orphans are
 * removed, rows of lost content dropped, and what is lost reported as unrecoverable.
 */
export async function fsck(store: Store, opts: FsckOptions = {}): Promise<FsckResult> {
  const repair = !!opts.repair;
  const db = store.meta.db;
  const problems: FsckProblem[] = [];
  const add = (p: FsckProblem) => problems.push(p);
  const snaps = snapshotFiles(store);

  // 0. The database itself.
  const integrity = db.pragma('integrity_check') as Array<{ integrity_check: string }>;
  const bad = integrity.map((r) => r.integrity_check).filter((s) => s !== 'ok');
  if (bad.length) add({ severity: 'error', kind: 'database', subject: 'metadata.db', message: `SQLite integrity check failed: ${bad.slice(0, 5).join('; ')}` });

  // 1. Every blob row: file present, size and digest right; every blob <-> diffID link the
  //    store holds or was told about checked in the same read (see fsck-layers.ts).
  const claims = await layerClaims(store);
  const rows = store.content.list();
  let bytes = 0;
  let done = 0;
  for (const r of rows) {
    const p = store.content.blobPath(r.digest);
    let res: HashedBlob | undefined;
    try {
      res = await hashStoredFile(p, claims.has(r.digest));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    opts.onProgress?.(++done, rows.length);
    // A concurrent prune may have removed it meanwhile: only rows still present count.
    if (!store.content.has(r.digest)) continue;
    if (!res) {
      const pr: FsckProblem = { severity: 'error', kind: 'blob-missing', subject: r.digest, message: `blob ${r.digest} is recorded (${r.size} bytes) but its file is missing` };
      if (repair) {
        const fixed = store.meta.write(() => {
          if (!store.content.has(r.digest) || fs.existsSync(p)) return false;
          store.content.deleteLocked(r.digest);
          return true;
        });
        if (fixed) Object.assign(pr, { repaired: 'row removed', unrecoverable: true });
      }
      add(pr);
      continue;
    }
    bytes += res.size;
    if (res.size !== r.size || res.digest !== r.digest) {
      const pr: FsckProblem = {
        severity: 'error', kind: 'blob-corrupt', subject: r.digest,
        message: res.size !== r.size
          ? `blob ${r.digest}: size mismatch: recorded ${r.size} bytes, file has ${res.size}`
          : `blob ${r.digest}: digest mismatch: file hashes to ${res.digest}`,
      };
      if (repair) Object.assign(pr, { repaired: quarantineBlob(store, r.digest), unrecoverable: true });
      add(pr);
    } else if (res.decoded) {
      for (const f of judgeLayerClaims(store, r.digest, res.size, res.decoded, claims.get(r.digest) ?? [])) {
        // A wrong proof or claim is damage to the store; an image whose layer contradicts its own
        // config was loaded that way (--no-unpack): the image is invalid, the store holds what it got.
        const kind = f.claim.source === 'image' ? 'image-invalid' : 'layer-mismatch';
        const pr: FsckProblem = { severity: 'error', kind, subject: r.digest, message: f.message };
        if (repair && f.claim.source === 'variant') {
          store.meta.write(() => store.variants.deleteLocked(r.digest));
          pr.repaired = 'wrong variant row removed';
        } else if (repair && f.claim.source === 'claim') {
          store.variants.dropClaim(r.digest, f.claim.diffId);
          pr.repaired = 'false claim removed';
        } else if (repair) {
          pr.unrecoverable = true; // the image's own config and layer disagree
        }
        add(pr);
      }
    }
  }

  // 2. Files without rows, labels without blobs, abandoned temp files (checked under the
  //    write lock: a commit renames its file and inserts its row in one transaction).
  let marked: Set<string> | undefined;
  const unindexed = store.meta.write(() => {
    const out: Array<{ digest: string; path: string }> = [];
    for (const f of store.content.walkFiles()) if (!store.content.has(f.digest)) out.push(f);
    return out;
  });
  if (unindexed.length) {
    try {
      marked = store.meta.read(() => markAll(store));
    } catch {
      marked = undefined; // cannot tell what is referenced: register valid files rather than delete them
    }
  }
  for (const f of unindexed) {
    const pr: FsckProblem = { severity: 'orphan', kind: 'blob-unindexed', subject: f.digest, message: `blob file ${f.digest} has no database row` };
    if (repair) {
      let res: HashedBlob | undefined;
      try {
        res = await hashStoredFile(f.path, false);
      } catch {
        res = undefined;
      }
      pr.repaired = store.meta.write(() => {
        if (store.content.has(f.digest)) return 'committed meanwhile';
        if (res && res.digest === f.digest && (!marked || marked.has(f.digest))) {
          store.content.registerLocked(f.digest, res.size);
          return 'referenced and intact: registered';
        }
        fs.rmSync(f.path, { force: true });
        return 'removed';
      });
    }
    add(pr);
  }
  const labelOrphans = db.prepare('SELECT DISTINCT digest FROM content_labels WHERE digest NOT IN (SELECT digest FROM blobs)').all() as Array<{ digest: string }>;
  for (const l of labelOrphans) {
    const pr: FsckProblem = { severity: 'orphan', kind: 'label-orphan', subject: l.digest, message: `labels recorded for ${l.digest}, which is not in the store` };
    if (repair) {
      store.meta.write(() => db.prepare('DELETE FROM content_labels WHERE digest = ? AND digest NOT IN (SELECT digest FROM blobs)').run(l.digest));
      pr.repaired = 'labels removed';
    }
    add(pr);
  }
  for (const t of [...store.content.walkIngest(), ...snaps.walkTemp()]) {
    if (!tempEntryAbandoned(store, t.path)) continue;
    const pr: FsckProblem = { severity: 'orphan', kind: 'temp', subject: t.path, message: `abandoned temp file of process ${t.pid} (${treeSize(t.path)} bytes)` };
    if (repair) {
      removeTree(t.path);
      pr.repaired = 'removed';
    }
    add(pr);
  }

  // 3. Snapshots: directory present, parent present, chainID consistent; directories without rows.
  const snapRows = db.prepare('SELECT chain_id, parent, diff_id, reproducible FROM snapshots ORDER BY chain_id').all() as Array<{ chain_id: string; parent: string | null; diff_id: string; reproducible: number }>;
  const byId = new Map(snapRows.map((s) => [s.chain_id, s]));
  const broken = new Map<string, { kind: FsckProblem['kind']; message: string }>();
  for (const s of snapRows) {
    const expected = s.parent ? chainIds([s.parent, s.diff_id])[1] : s.diff_id;
    if (s.parent && !byId.has(s.parent)) broken.set(s.chain_id, { kind: 'snapshot-broken-chain', message: `snapshot ${s.chain_id}: parent ${s.parent} is missing` });
    else if (expected !== s.chain_id) broken.set(s.chain_id, { kind: 'snapshot-broken-chain', message: `snapshot ${s.chain_id}: chainID does not match parent ${s.parent ?? '(none)'} + diffID ${s.diff_id}` });
    else if (!fs.existsSync(snaps.dirFor(s.chain_id))) broken.set(s.chain_id, { kind: 'snapshot-missing', message: `snapshot ${s.chain_id}: directory ${snaps.dirFor(s.chain_id)} is missing` });
    else {
      const need = ['index.gz', ...(s.reproducible ? ['tarsplit.gz'] : [])].filter((f) => !fs.existsSync(path.join(snaps.dirFor(s.chain_id), f)));
      if (need.length) broken.set(s.chain_id, { kind: 'snapshot-incomplete', message: `snapshot ${s.chain_id}: directory incomplete, missing ${need.join(', ')}` });
    }
  }
  // Descendants of a broken snapshot are broken too.
  let grew = true;
  while (grew) {
    grew = false;
    for (const s of snapRows) {
      if (!broken.has(s.chain_id) && s.parent && broken.has(s.parent)) {
        broken.set(s.chain_id, { kind: 'snapshot-broken-chain', message: `snapshot ${s.chain_id}: parent ${s.parent} is broken` });
        grew = true;
      }
    }
  }
  for (const [chainId, { kind, message }] of broken) {
    const pr: FsckProblem = { severity: 'error', kind, subject: chainId, message };
    if (repair) {
      const trash = store.meta.write(() => {
        db.prepare('DELETE FROM snapshots WHERE chain_id = ?').run(chainId);
        return snaps.moveToTrash(chainId);
      });
      if (trash) removeTree(trash);
      Object.assign(pr, { repaired: 'snapshot removed', unrecoverable: true });
    }
    add(pr);
  }
  for (const d of snaps.walkDirs()) {
    if (d.chainId && byId.has(d.chainId)) continue;
    const pr: FsckProblem = { severity: 'orphan', kind: 'snapshot-unindexed', subject: d.path, message: `snapshot directory ${d.path} has no database row` };
    if (repair) {
      const trash = store.meta.write(() => {
        if (d.chainId && db.prepare('SELECT 1 FROM snapshots WHERE chain_id = ?').get(d.chainId)) return undefined;
        return d.chainId ? snaps.moveToTrash(d.chainId) : d.path;
      });
      if (trash) removeTree(trash);
      pr.repaired = 'removed';
    }
    add(pr);
  }

  // 4. Every image's closure. An absent layer blob is fine while a reproducible snapshot
  //    of its diffID or another present variant of it can produce it.
  const images = store.images.list();
  const src = contentSource(store.content);
  const reproducibleSnaps = db.prepare('SELECT chain_id FROM snapshots WHERE diff_id = ? AND reproducible = 1');
  const variantsOf = db.prepare('SELECT digest FROM variants WHERE diff_id = ?');
  for (const img of images) {
    try {
      const w = await walkImage(src, img.target);
      const lost: string[] = [];
      for (const miss of w.missing) {
        if (miss.role === 'layer' && isLayerType(miss.desc.mediaType)) {
          const m = w.manifests.find((x) => x.desc.digest === miss.manifest);
          const diffIds = (m?.config as ImageConfig | undefined)?.rootfs?.diff_ids;
          if (diffIds && miss.index !== undefined && diffIds.length === m!.manifest.layers.length) {
            const diffId = diffIds[miss.index];
            const rebuildable =
              (reproducibleSnaps.all(diffId) as Array<{ chain_id: string }>).some((r) => !broken.has(r.chain_id)) ||
              store.content.has(diffId) ||
              (variantsOf.all(diffId) as Array<{ digest: string }>).some((v) => store.content.has(v.digest));
            if (rebuildable) continue;
          }
        }
        lost.push(`${miss.role}${miss.index !== undefined ? ' ' + (miss.index + 1) : ''} ${miss.desc.digest} of manifest ${miss.manifest}`);
      }
      if (lost.length) {
        add({
          severity: 'error', kind: 'image-incomplete', subject: img.name,
          message: `image ${img.name}: ${lost.length} blob(s) missing and not rebuildable: ${lost.join('; ')}`,
          unrecoverable: repair ? true : undefined,
        });
      }
    } catch (e) {
      add({ severity: 'error', kind: 'image-unreadable', subject: img.name, message: `image ${img.name}: ${(e as Error).message}`, unrecoverable: repair ? true : undefined });
    }
  }

  const errors = problems.filter((p) => p.severity === 'error').length;
  const orphans = problems.filter((p) => p.severity === 'orphan').length;
  return {
    blobs: rows.length,
    bytes,
    snapshots: snapRows.length,
    images: images.length,
    problems,
    errors,
    orphans,
    ok: errors === 0,
  };
}

/**
 * `--repair` of a corrupt blob: move its file out of `blobs/` into the store's quarantine
 * directory (not deleted: the user may want it) and forget its blob, label and variant rows
 * in one transaction. Images that need it are then missing that blob until a load or pull
 * that carries it restores it (the content store writes it anew). Returns what was done.
 */
export function quarantineBlob(store: Store, digest: string): string {
  const to = store.meta.write(() => {
    const where = store.content.quarantineLocked(digest);
    store.variants.deleteLocked(digest);
    return where;
  });
  return to ? `quarantined to ${to}; a load that carries it restores it` : 'file gone meanwhile: rows removed';
}

/** Every blob digest something retains (images and every lease, live or not). */
function markAll(store: Store): Set<string> {
  const m = new Marker(store.meta.db, store.content);
  for (const img of store.images.list()) m.markImage(img.name, img.target, false);
  for (const l of store.leases.list()) {
    for (const r of store.leases.resources(l.id)) {
      if (r.kind === 'content') m.markLeasedContent(r.ref, l.id);
      else if (r.kind === 'snapshot') m.markLeasedSnapshot(r.ref);
      else {
        const img = store.images.get(r.ref);
        if (img) m.markImage(img.name, img.target, true);
      }
    }
  }
  return m.blobs;
}
