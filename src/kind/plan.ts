import { SavePlan, PlannedBlob } from '../archive/export';

/** tar block size; entries are a 512-byte header plus the data padded to 512. */
const BLOCK = 512;

/** Bytes one archive entry of `size` data bytes takes (ustar header, no long-name extension). */
export function tarEntryBytes(size: number): number {
  return BLOCK + Math.ceil(size / BLOCK) * BLOCK;
}

/**
 * Size of the tar `saveImages` writes for `plan`, minus the blobs in `omit`: metadata files,
 * the two `blobs/` directory entries (only when a blob is written), each blob, and the
 * 1024-byte end-of-archive marker. Blob paths (`blobs/sha256/<64 hex>`, 77 bytes) fit a ustar header.
 */
export function archiveBytes(plan: Pick<SavePlan, 'files' | 'blobs'>, omit: Set<string> = new Set()): number {
  let n = 2 * BLOCK;
  for (const f of plan.files) n += tarEntryBytes(f.data.length);
  const written = plan.blobs.filter((b: PlannedBlob) => !omit.has(b.digest));
  if (written.length) n += 2 * BLOCK;
  for (const b of written) n += tarEntryBytes(b.size);
  return n;
}
