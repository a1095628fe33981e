/**
 * `imgtool verify`: check an archive offline, without a store. One streaming pass hashes
 * every file (nothing is stored; only digests and small JSON documents are kept in
 * memory), then the same resolution and checks as `load` run: tar well-formed and not
 * truncated, every blob's digest and size, every manifest/config/layer referenced by
 * index.json or manifest.json present, partial indexes reported (an error with strict),
 * unknown media types warned. Every problem is listed, not only the first.
 */
import { Compression } from '../compression/codecs';
import { ImgtoolError } from '../errors';
import { Progress } from '../progress';
import { ArchiveInputSource } from './input';
import { namesForImage } from './naming';
import { ArchiveScan, decodingHashSink, hashSink, scanArchive } from './reader';
import { checkArchiveImages, CheckResult } from './reader-images';
import { ArchiveFormat, resolveArchive, ResolvedArchive } from './reader-layout';

export interface ExamineOptions {
  strict?: boolean;
  /**
   * Check that each layer decompresses to its config's diffID (decodes every gzip/zstd file
   * while streaming). `imgtool verify --strict` turns it on.
   */
  diffIds?: boolean;
  progress?: Progress;
}

/** Everything learnt about an archive without a store. `fatal` set when reading stopped early. */
export interface ArchiveExamination {
  source: string;
  scan?: ArchiveScan;
  resolved?: ResolvedArchive;
  check?: CheckResult;
  problems: string[];
  warnings: string[];
}

/** Read and check an archive without a store (shared by verify and ls-archive). */
export async function examineArchive(input: ArchiveInputSource, opts: ExamineOptions = {}): Promise<ArchiveExamination> {
  const source = typeof input === 'string' ? (input === '-' ? 'stdin' : input) : 'input';
  const ex: ArchiveExamination = { source, problems: [], warnings: [] };
  try {
    ex.scan = await scanArchive(input, { sink: opts.diffIds ? decodingHashSink : hashSink, progress: opts.progress, collectProblems: true });
    ex.source = ex.scan.label;
    ex.problems.push(...ex.scan.problems);
    ex.warnings.push(...ex.scan.warnings);
    const scan = ex.scan;
    ex.resolved = await resolveArchive(scan, async (f) => {
      const b = scan.json.get(f.digest);
      if (!b) throw new ImgtoolError('INVALID_ARCHIVE', `${f.path}: must be a JSON object, but the file does not start with "{"`);
      return b;
    });
    ex.problems.push(...ex.resolved.problems);
    ex.warnings.push(...ex.resolved.warnings);
    ex.check = await checkArchiveImages(scan, ex.resolved, { strict: opts.strict });
    ex.problems.push(...ex.check.problems);
    ex.warnings.push(...ex.check.warnings);
  } catch (e) {
    if (!(e instanceof ImgtoolError)) throw e;
    ex.problems.push(e.message, ...e.details);
  }
  return ex;
}

export interface VerifiedImage {
  names: string[];
  digest: string;
  mediaType: string;
  platforms: string[];
  partial: boolean;
  absent: Array<{ digest: string; platform?: string }>;
}

export interface VerifyReport {
  ok: boolean;
  source: string;
  format?: ArchiveFormat;
  compression?: Compression;
  /** Input bytes and tar entries read. */
  bytes: number;
  entries: number;
  /** Distinct files (blobs) checked. */
  blobs: { count: number; bytes: number };
  images: VerifiedImage[];
  problems: string[];
  warnings: string[];
}

/** Verify an archive; never throws for problems with the archive (they are in `problems`). */
export async function verifyArchive(input: ArchiveInputSource, opts: ExamineOptions = {}): Promise<VerifyReport> {
  const ex = await examineArchive(input, opts);
  const scan = ex.scan;
  return {
    ok: ex.problems.length === 0,
    source: ex.source,
    format: ex.resolved?.format,
    compression: scan?.compression,
    bytes: scan?.bytes ?? 0,
    entries: scan?.entries ?? 0,
    blobs: { count: scan?.blobs.size ?? 0, bytes: scan ? [...scan.blobs.values()].reduce((n, f) => n + f.size, 0) : 0 },
    images: (ex.check?.images ?? [])
      .filter((i) => !i.notImage)
      .map((i) => ({
        names: namesForImage({ digest: i.target.digest, annotations: i.entry.desc.annotations, repoTags: i.repoTags }).names,
        digest: i.target.digest,
        mediaType: i.target.mediaType,
        platforms: i.platforms,
        partial: i.partial,
        absent: i.absent.map((a) => ({ digest: a.digest, platform: a.platform })),
      })),
    problems: ex.problems,
    warnings: ex.warnings,
  };
}
