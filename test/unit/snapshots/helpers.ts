import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { Store } from '../../../src/store';
import { Compression } from '../../../src/compression/codecs';
import { compressBuffer } from '../../../src/builder/raw';
import { hostPlatform } from '../../../src/platform';
import { MediaType, layerMediaType } from '../../../src/images/mediatypes';
import { loadMergedView, MergedView } from '../../../src/snapshots/ops';
import { walk, Meta } from '../../../src/snapshots/tree';
import { fsPath } from '../../../src/tar';

export const sha = (b: Buffer | string) => 'sha256:' + createHash('sha256').update(b).digest('hex');

export interface PutImage {
  name: string;
  diffIds: string[];
  digests: string[];
  manifest: string;
}

/** Put an image made of these uncompressed layer tars into the store. */
export async function putImage(store: Store, name: string, tars: Buffer[], opts: { compression?: Compression | Compression[]; level?: number; skipBlobs?: number[] } = {}): Promise<PutImage> {
  const layers = [];
  const diffIds: string[] = [];
  for (let i = 0; i < tars.length; i++) {
    const c = Array.isArray(opts.compression) ? opts.compression[i] : opts.compression ?? 'gzip';
    const blob = c === 'none' ? tars[i] : await compressBuffer(tars[i], c, opts.level);
    const digest = sha(blob);
    if (!opts.skipBlobs?.includes(i)) await store.content.ingestBuffer(blob, { digest });
    layers.push({ mediaType: layerMediaType(c, true), digest, size: blob.length });
    diffIds.push(sha(tars[i]));
  }
  const p = hostPlatform();
  const config = Buffer.from(JSON.stringify({ architecture: p.architecture, os: p.os, rootfs: { type: 'layers', diff_ids: diffIds } }));
  await store.content.ingestBuffer(config);
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OCI_MANIFEST, config: { mediaType: MediaType.OCI_CONFIG, digest: sha(config), size: config.length }, layers }));
  await store.content.ingestBuffer(manifest);
  store.images.put(name, { mediaType: MediaType.OCI_MANIFEST, digest: sha(manifest), size: manifest.length });
  return { name, diffIds, digests: layers.map((l) => l.digest), manifest: sha(manifest) };
}

export interface ViewEntry {
  meta: Meta;
  content?: Buffer;
}

/** The merged view of a chain as path -> entry (file contents read). */
export async function viewOf(store: Store, chainId: string): Promise<Map<string, ViewEntry>> {
  const v: MergedView = await loadMergedView(store.snapshots, chainId);
  const out = new Map<string, ViewEntry>();
  for (const { path: p, node } of walk(v.tree)) {
    const e: ViewEntry = { meta: node.meta };
    if (node.meta.type === 'file') e.content = fs.readFileSync(fsPath(v.fsRoots[node.owner], p));
    out.set(p, e);
  }
  return out;
}

/** Every file under `dir` (recursive), for "nothing written outside" checks. */
export function listAll(dir: string): string[] {
  const out: string[] = [];
  const visit = (d: string) => {
    for (const n of fs.readdirSync(d)) {
      const p = path.join(d, n);
      out.push(path.relative(dir, p));
      if (fs.lstatSync(p).isDirectory()) visit(p);
    }
  };
  if (fs.existsSync(dir)) visit(dir);
  return out.sort();
}

/** Overwrite a numeric field of the tar header block number `block` and fix its checksum. */
export function patchHeader(tar: Buffer, block: number, field: number, len: number, bytes: Buffer | string): Buffer {
  const t = Buffer.from(tar);
  const h = t.subarray(block * 512, block * 512 + 512);
  h.fill(0, field, field + len);
  (typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes).copy(h, field);
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += h[i];
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
  return t;
}

/** GNU base-256 (two's complement) encoding of `v` in `len` bytes. */
export function base256(v: bigint, len: number): Buffer {
  const b = Buffer.alloc(len);
  let x = v < 0n ? (1n << BigInt(len * 8)) + v : v;
  for (let i = len - 1; i >= 0; i--) {
    b[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  if (v >= 0n) b[0] |= 0x80;
  return b;
}
