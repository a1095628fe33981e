/**
 * `imgtool load`: import a Docker or OCI archive (plain, gzip or zstd) into the store in
 * one streaming pass. Every file is ingested as it streams (hashed once, `blobs/sha256/…`
 * verified against its name); references are resolved at the end; every referenced blob is
 * checked present with its declared size; then every name is registered in ONE metadata
 * transaction (`prepareImport` stops before that: `load` registers after unpacking). A failure registers nothing and keeps nothing it ingested only for this load
 * (blobs that were not in the store before, and that nothing else — an image, another
 * operation's lease — has come to reference meanwhile, are removed). A delta archive (see
 * ./have) has its closure completed from the store: every blob its manifests name must be in
 * the archive or in the store with the size the manifest names; its annotation only tells
 * which digests to expect, for the error message. The archive's configs only CLAIM which diffID each layer blob has:
 * load records no blob <-> diffID link (see VariantStore); unpacking, converting or fsck
 * prove one by hashing the decompressed bytes.
 */
import { finished } from 'node:stream/promises';
import { ContentStore, ResourceHolder, ContentWriter } from '../content';
import { Compression } from '../compression/codecs';
import { InvalidArgumentError, InvalidArchiveError, MissingContentError } from '../errors';
import { Descriptor } from '../images/types';
import { Progress } from '../progress';
import { normalizeReference } from '../reference';
import type { Store } from '../store';
import { ArchiveInputSource } from './input';
import { checkBaseName, namesForImage, NamingOptions } from './naming';
import { ArchiveFile, BlobSink, entryWhat, scanArchive } from './reader';
import { checkArchiveImages, platformMatcher } from './reader-images';
import { ArchiveFormat, resolveArchive } from './reader-layout';
import { deltaExpects } from './have';
import { markOthers } from '../gc/prune';
import { registerNames } from '../images/register';
import type { Limits } from '../limits';
import type { ImageOutline } from '../images/types';

export interface ImportOptions extends NamingOptions {
  /** `--platform`: load only these platforms; each must be present. */
  platforms?: string[];
  /** `--all-platforms`: every manifest an index lists must be present. */
  allPlatforms?: boolean;
  /** `--strict`: an index with absent manifests is an error. */
  strict?: boolean;
  /** `--index-name`: also register the archive's whole index under this name (as ctr). */
  indexName?: string;
  /** Attach every blob written and every name registered to this holder. */
  lease?: ResourceHolder;
  /** Progress (bytes of input read) and warnings. */
  progress?: Progress;
  /** Hostile-input limits (src/limits). */
  limits?: Partial<Limits>;
}

/** An image registered by the load (`names`: the names registered). */
export type ImportedImage = ImageOutline;

export interface ImportResult {
  /** For messages: the file name or "stdin". */
  source: string;
  format: ArchiveFormat;
  /** Compression the archive was wrapped in. */
  compression: Compression;
  images: ImportedImage[];
  /** Images found but not named (no usable name and no --digests). */
  skipped: Array<{ digest: string; mediaType: string; reason: string }>;
  /** `--index-name`, when given. */
  index?: { name: string; digest: string; mediaType: string; size: number };
  warnings: string[];
  /** Distinct files of the archive ingested into the content store. */
  blobs: { count: number; bytes: number };
  /** Input bytes read. */
  bytes: number;
  /** What each registered name pointed at before this load (undefined: new name); lets a caller undo the load. */
  previous: Array<{ name: string; target?: Descriptor }>;
  /** A delta archive: the digests it expected the store to hold (all were there). */
  delta?: { expects: string[] };
}

/**
 * A BlobSink that ingests into the content store (hashing once, verifying while streaming).
 * Each blob it adds that was not in the store before is added to `fresh`.
 */
export function storeSink(content: ContentStore, lease?: ResourceHolder, fresh?: Set<string>, writers?: Set<ContentWriter>): BlobSink {
  const since = Date.now();
  return {
    begin({ path, size, expected }) {
      // Present before this load (by the digest its name promises): never "fresh", never dropped.
      const existed = expected !== undefined && content.has(expected);
      const w = content.writer({ digest: expected, size, lease, what: entryWhat(path) });
      writers?.add(w);
      let error: Error | undefined;
      w.on('error', (e) => {
        error = e;
      });
      return {
        write: (chunk: Buffer, done?: (err?: Error | null) => void) => w.write(chunk, done),
        drained: () =>
          new Promise<void>((resolve, reject) => {
            if (error) return reject(error);
            const ok = () => {
              w.off('error', bad);
              resolve();
            };
            const bad = (e: Error) => {
              w.off('drain', ok);
              reject(e);
            };
            w.once('drain', ok);
            w.once('error', bad);
          }),
        async finish() {
          let info;
          try {
            if (error) throw error;
            w.end();
            await finished(w);
            info = await w.commit();
          } catch (e) {
            // Whatever failed (the stream, the size, the digest), nothing of it may stay behind.
            if (!w.destroyed) w.destroy();
            await w.abort().catch(() => {});
            throw e;
          }
          // Recorded since this sink began: new to the store (a blob already there keeps its row).
          // Without a promised digest, a row created after this sink began is this load's (a row
          // from the same millisecond counts as older: when unsure, keep the blob).
          if (fresh && !existed && (expected !== undefined || (content.info(info.digest)?.createdAt ?? 0) > since)) fresh.add(info.digest);
          return { digest: info.digest, size: info.size };
        },
        async abort() {
          // destroy(err) closes and removes the temp file (after the open completes, if pending).
          if (!w.destroyed) w.destroy(new Error('aborted'));
          await w.abort();
        },
      };
    },
  };
}

function problemsError(source: string, problems: string[], delta = false): Error {
  const missing = problems.every((p) => / is not in the archive/.test(p));
  if (delta && missing) {
    // A delta into a store that lacks what it expects: every missing blob, by image and layer.
    const msg = `delta archive ${source}: ${problems.length} blob(s) it leaves out are not in the store (first: ${problems[0]}); nothing loaded`;
    return new MissingContentError(msg, problems);
  }
  if (problems.length === 1) return new InvalidArchiveError(`${problems[0]}; nothing loaded`);
  const msg = `archive ${source}: ${problems.length} problems; nothing loaded`;
  return missing ? new MissingContentError(msg, problems) : new InvalidArchiveError(msg, problems);
}

/** Import an archive (path, `-` for stdin, or a stream) into `store`. See the module comment. */
export async function importArchive(store: Store, input: ArchiveInputSource, opts: ImportOptions = {}): Promise<ImportResult> {
  const p = await prepareImport(store, input, opts);
  try {
    p.result.previous = registerNames(store, p.registrations, p.needed, { lease: opts.lease });
  } catch (e) {
    dropUnretained(store, p.fresh, opts.lease);
    throw e;
  }
  return p.result;
}

/**
 * An imported archive whose names are not registered yet: `registerNames(store,
 * registrations, needed)` does that (load: after unpacking). Until then its content is held by
 * the caller's lease only. `fresh`: the blobs new to the store in this import.
 */
export interface PreparedImport {
  result: ImportResult;
  registrations: Array<{ name: string; target: Descriptor }>;
  /** The closure of every registered name (documents, configs, layers). */
  needed: Descriptor[];
  fresh: Set<string>;
}

/**
 * Everything `importArchive` does but registering the names. A failure keeps nothing this
 * import ingested (see the module comment).
 */
export async function prepareImport(store: Store, input: ArchiveInputSource, opts: ImportOptions = {}): Promise<PreparedImport> {
  // Refuse bad options before reading a byte.
  if (opts.allPlatforms && opts.platforms?.length) throw new InvalidArgumentError('--platform and --all-platforms are mutually exclusive');
  platformMatcher(opts.platforms);
  if (opts.baseName) checkBaseName(opts.baseName);
  const indexName = opts.indexName ? normalizeIndexName(opts.indexName) : undefined;
  const fresh = new Set<string>();
  const writers = new Set<ContentWriter>();
  try {
    return await importInto(store, input, opts, indexName, fresh, writers);
  } catch (e) {
    // Every writer this load began and did not commit goes with its temp file (abort is a
    // no-op for a committed one), whatever path the failure took through the reader.
    await Promise.allSettled([...writers].map(async (w) => {
      if (!w.destroyed) w.destroy();
      await w.abort();
    }));
    dropUnretained(store, fresh, opts.lease);
    throw e;
  }
}

/**
 * Remove each blob of `digests` that nothing else retains — no image, no lease but `lease`
 * (the caller's own) — decided by the GC marker under the write lock, the rows forgotten
 * first and the files unlinked after (crash-safe). A failed load drops what it ingested
 * this way; a load that succeeded drops the files of the archive no image references.
 */
export function dropUnretained(store: Store, digests: Iterable<string>, lease?: ResourceHolder): { count: number; bytes: number } {
  const candidates = [...digests];
  if (!candidates.length) return { count: 0, bytes: 0 };
  const others = markOthers(store, '', lease);
  const dropped: Array<{ digest: string; size: number }> = [];
  store.meta.write(() => {
    others.update();
    for (const d of candidates) {
      const info = others.retainer(d) ? undefined : store.content.info(d);
      if (!info) continue;
      store.content.forgetLocked(d);
      dropped.push({ digest: d, size: info.size });
    }
  });
  for (const d of dropped) store.content.removeFileIfUnrecorded(d.digest);
  return { count: dropped.length, bytes: dropped.reduce((n, d) => n + d.size, 0) };
}

async function importInto(store: Store, input: ArchiveInputSource, opts: ImportOptions, indexName: string | undefined, fresh: Set<string>, writers: Set<ContentWriter>): Promise<PreparedImport> {
  const scan = await scanArchive(input, { sink: storeSink(store.content, opts.lease, fresh, writers), progress: opts.progress, limits: opts.limits });
  const readBlob = async (f: ArchiveFile) => scan.json.get(f.digest) ?? store.content.readBuffer(f.digest);
  const resolved = await resolveArchive(scan, readBlob);
  const expects = deltaExpects(resolved.index.bytes);
  const check = await checkArchiveImages(scan, resolved, {
    platforms: opts.platforms, allPlatforms: opts.allPlatforms, strict: opts.strict, store: store.content,
    expected: expects ? new Set(expects) : undefined,
  });
  const warnings = [...scan.warnings, ...resolved.warnings, ...check.warnings];
  const problems = [...resolved.problems, ...check.problems];
  if (problems.length) throw problemsError(scan.label, problems, !!expects);

  // Names for each image.
  const result: ImportResult = {
    source: scan.label, format: resolved.format, compression: scan.compression, images: [], skipped: [], warnings,
    blobs: { count: scan.blobs.size, bytes: [...scan.blobs.values()].reduce((n, f) => n + f.size, 0) }, bytes: scan.bytes, previous: [],
    ...(expects ? { delta: { expects } } : {}),
  };
  const registrations: Array<{ name: string; target: Descriptor }> = [];
  const owner = new Map<string, string>();
  const needed: Descriptor[] = [];
  const byDigest = new Map<string, ImportedImage>();
  for (const img of check.images) {
    if (img.notImage) continue;
    const { names, warnings: w } = namesForImage({ digest: img.target.digest, annotations: img.entry.desc.annotations, repoTags: img.repoTags }, opts);
    warnings.push(...w);
    if (!names.length) {
      result.skipped.push({ digest: img.target.digest, mediaType: img.target.mediaType, reason: 'no usable name' });
      continue;
    }
    for (const n of names) {
      const prev = owner.get(n);
      if (prev && prev !== img.target.digest) warnings.push(`${n} is given to ${prev} and ${img.target.digest} in this archive; the later wins`);
      owner.set(n, img.target.digest);
      registrations.push({ name: n, target: img.target });
    }
    let rec = byDigest.get(img.target.digest);
    if (!rec) {
      rec = {
        names: [], digest: img.target.digest, mediaType: img.target.mediaType, size: img.target.size, platforms: img.platforms,
        partial: img.partial, absent: img.absent.map((a) => ({ digest: a.digest, platform: a.platform })),
      };
      byDigest.set(img.target.digest, rec);
      result.images.push(rec);
    }
    for (const n of names) if (!rec.names.includes(n)) rec.names.push(n);
    needed.push(img.target, ...(img.walk?.blobs ?? []));
  }
  // Drop names a later image took over.
  for (const rec of result.images) rec.names = rec.names.filter((n) => owner.get(n) === rec.digest);
  if (indexName) {
    result.index = { name: indexName, ...resolved.index.desc };
    registrations.push({ name: indexName, target: { mediaType: resolved.index.desc.mediaType, digest: resolved.index.desc.digest, size: resolved.index.desc.size } });
    needed.push(resolved.index.desc);
  }

  // Documents made here (Docker manifests and index) and index.json go into the store now.
  const stored = new Set<string>();
  for (const d of needed) {
    if (stored.has(d.digest)) continue;
    stored.add(d.digest);
    const bytes = resolved.synthesized.get(d.digest)?.bytes ?? (d.digest === resolved.index.desc.digest ? resolved.index.bytes : undefined);
    if (!bytes) continue;
    const had = store.content.has(d.digest);
    await store.content.ingestBuffer(bytes, { digest: d.digest, size: d.size, lease: opts.lease, what: `${d.mediaType} ${d.digest}` });
    if (!had) fresh.add(d.digest);
  }
  return { result, registrations, needed, fresh };
}

function normalizeIndexName(n: string): string {
  try {
    return normalizeReference(n);
  } catch (e) {
    throw new InvalidArgumentError(`--index-name ${JSON.stringify(n)}: ${(e as Error).message}`);
  }
}
