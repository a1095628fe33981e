import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import * as crypto from 'node:crypto';
import { Store, sha256, MediaType, ResourceHolder } from '../../../src';
import { chainIds } from '../../../src/gc';
import { compressBufferSync } from '../../../src/compression/codecs';

export interface FixLayer {
  raw: Buffer;
  diffId: string;
  gz: Buffer;
  digest: string;
}

export interface FixImage {
  name: string;
  manifest: string;
  config: string;
  layers: FixLayer[];
  chains: string[];
}

export function layer(seed: string, size = 2048): FixLayer {
  const raw = Buffer.alloc(size);
  let h = crypto.createHash('sha256').update(seed).digest();
  for (let o = 0; o < size; o += h.length) {
    h.copy(raw, o);
    h = crypto.createHash('sha256').update(h).digest();
  }
  const gz = zlib.gzipSync(raw, { level: 6 });
  return { raw, diffId: sha256(raw), gz, digest: sha256(gz) };
}

/** Ingest a gzip image (OCI manifest) with the given layers and register `name`. */
export async function makeImage(store: Store, name: string, layers: FixLayer[], lease?: ResourceHolder): Promise<FixImage> {
  for (const l of layers) {
    await store.content.ingestBuffer(l.gz, { digest: l.digest, size: l.gz.length, lease });
    store.variants.recordProof({ digest: l.digest, diffId: l.diffId, compression: 'gzip', size: l.gz.length, mediaType: MediaType.OCI_LAYER_GZIP });
  }
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) }, name }));
  const cfg = await store.content.ingestBuffer(config, { lease });
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.OCI_MANIFEST,
    config: { mediaType: MediaType.OCI_CONFIG, digest: cfg.digest, size: config.length },
    layers: layers.map((l) => ({ mediaType: MediaType.OCI_LAYER_GZIP, digest: l.digest, size: l.gz.length })),
  }));
  const man = await store.content.ingestBuffer(manifest, { lease });
  store.images.put(name, { mediaType: MediaType.OCI_MANIFEST, digest: man.digest, size: manifest.length }, lease);
  return { name, manifest: man.digest, config: cfg.digest, layers, chains: chainIds(layers.map((l) => l.diffId)) };
}

/** Snapshot rows and directories for a chain (tests only: the snapshots module is not used). */
export function addSnapshots(store: Store, layers: FixLayer[]): string[] {
  const chains = chainIds(layers.map((l) => l.diffId));
  store.meta.write(() => {
    for (let i = 0; i < chains.length; i++) {
      store.meta.db
        .prepare('INSERT OR IGNORE INTO snapshots (chain_id, parent, diff_id, size, reproducible, created_at) VALUES (?, ?, ?, ?, 1, ?)')
        .run(chains[i], i ? chains[i - 1] : null, layers[i].diffId, layers[i].raw.length, Date.now());
      const dir = path.join(store.root, 'snapshots', chains[i].slice(7));
      fs.mkdirSync(dir, { recursive: true });
      fs.mkdirSync(path.join(dir, 'fs'), { recursive: true });
      fs.writeFileSync(path.join(dir, 'fs', 'data'), layers[i].raw);
      fs.writeFileSync(path.join(dir, 'index.gz'), zlib.gzipSync('{}'));
      fs.writeFileSync(path.join(dir, 'tarsplit.gz'), zlib.gzipSync('{}'));
    }
  });
  return chains;
}

/** A zstd-like second variant of a layer (any distinct bytes; GC does not decode). */
export async function addVariant(store: Store, l: FixLayer, compression: 'zstd' | 'none' = 'zstd', lease?: ResourceHolder): Promise<string> {
  const bytes = compression === 'none' ? l.raw : compressBufferSync('zstd', l.raw);
  const info = await store.content.ingestBuffer(bytes, { lease });
  store.variants.recordProof({ digest: info.digest, diffId: l.diffId, compression, size: bytes.length, mediaType: compression === 'zstd' ? MediaType.OCI_LAYER_ZSTD : MediaType.OCI_LAYER });
  return info.digest;
}

export function snapshotIds(store: Store): string[] {
  return (store.meta.db.prepare('SELECT chain_id FROM snapshots ORDER BY chain_id').all() as Array<{ chain_id: string }>).map((r) => r.chain_id);
}

export function variantIds(store: Store): string[] {
  return (store.meta.db.prepare('SELECT digest FROM variants ORDER BY digest').all() as Array<{ digest: string }>).map((r) => r.digest);
}

export function blobIds(store: Store): string[] {
  return store.content.list().map((b) => b.digest);
}

export function fileExists(store: Store, digest: string): boolean {
  return fs.existsSync(store.content.blobPath(digest));
}
