/**
 * `imgtool verify`: check an archive offline, without a store. One streaming pass hashes
 * every file (nothing is stored; only digests and small JSON documents are kept in
 * memory), then the same resolution and checks as `load` run: tar well-formed and not
 * truncated, every blob's digest and size, every manifest/config/layer referenced by
 * index.json or manifest.json present, partial indexes reported (an error with strict),
 * unknown media types warned, manifest.json entries naming zstd layers warned (Docker before 23
 * cannot load them). Every problem is listed, not only the first.
 *
 * A delta archive (./have: index.json names the digests it expects the receiver to hold) is
 * reported as such: the blobs it leaves out are listed as expected, not as problems; with an
 * inventory (`verify --have FILE`), each expected blob must be listed there with the size the
 * archive's manifests name.
 */
import { Compression } from '../compression/codecs';
import { ImgtoolError } from '../errors';
import { Progress } from '../progress';
import { ArchiveInputSource } from './input';
import { namesForImage } from './naming';
import { ArchiveScan, decodingHashSink, hashSink, scanArchive } from './reader';
import type { Limits } from '../limits';
import { checkArchiveImages, CheckResult } from './reader-images';
import { ArchiveFormat, cleanRef, parseDockerManifest, resolveArchive, ResolvedArchive } from './reader-layout';
import { deltaExpects, Inventory } from './have';

export interface ExamineOptions {
  strict?: boolean;
  /**
   * Check that each layer decompresses to its config's diffID (decodes every gzip/zstd file
   * while streaming, bounded by `limits`: --max-layer-size, --max-ratio). `imgtool verify
   * --strict` turns it on.
   */
  diffIds?: boolean;
  progress?: Progress;
  /** `verify --have FILE`: check a delta's expectations against this inventory. */
  have?: Inventory;
  /** Hostile-input limits (src/limits). */
  limits?: Partial<Limits>;
}

/** Everything learnt about an archive without a store. `fatal` set when reading stopped early. */
export interface ArchiveExamination {
  source: string;
  scan?: ArchiveScan;
  resolved?: ResolvedArchive;
  check?: CheckResult;
  /** A delta archive: the digests index.json says the receiver must hold. */
  expects?: string[];
  problems: string[];
  warnings: string[];
}

/** Read and check an archive without a store (shared by verify and ls-archive). */
export async function examineArchive(input: ArchiveInputSource, opts: ExamineOptions = {}): Promise<ArchiveExamination> {
  const source = typeof input === 'string' ? (input === '-' ? 'stdin' : input) : 'input';
  const ex: ArchiveExamination = { source, problems: [], warnings: [] };
  try {
    ex.scan = await scanArchive(input, { sink: opts.diffIds ? decodingHashSink(opts.limits) : hashSink, progress: opts.progress, collectProblems: true, limits: opts.limits });
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
    ex.warnings.push(...zstdInDockerManifest(scan));
    ex.expects = deltaExpects(ex.resolved.index.bytes);
    ex.check = await checkArchiveImages(scan, ex.resolved, { strict: opts.strict, expected: ex.expects ? new Set(ex.expects) : undefined });
    ex.problems.push(...ex.check.problems);
    ex.warnings.push(...ex.check.warnings);
  } catch (e) {
    if (!(e instanceof ImgtoolError)) throw e;
    ex.problems.push(e.message, ...e.details);
  }
  return ex;
}

/**
 * manifest.json is what Docker-archive readers load; Docker before 23 cannot read a zstd layer
 * (`docker load` fails with `archive/tar: invalid tar header`). The archive is valid (imgtool,
 * podman, containerd and newer Docker read it), so each such layer is a warning naming the
 * image and the layer, not a problem.
 */
function zstdInDockerManifest(scan: ArchiveScan): string[] {
  const doc = scan.docs.get('manifest.json');
  if (!doc) return [];
  let entries;
  try {
    entries = parseDockerManifest(doc);
  } catch {
    return []; // reported by resolveArchive
  }
  const out: string[] = [];
  entries.forEach((e, i) => {
    const label = e.RepoTags?.length ? e.RepoTags.join(', ') : `manifest.json entry ${i}`;
    e.Layers.forEach((p, j) => {
      if (scan.files.get(cleanRef(p))?.compression !== 'zstd') return;
      out.push(`${label}: layer ${j + 1}/${e.Layers.length} ${JSON.stringify(p)} in manifest.json is zstd: Docker before 23 cannot load it ("archive/tar: invalid tar header"); save with --compression gzip for Docker`);
    });
  });
  return out;
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
  /**
   * A delta archive: what it expects the receiver to hold (`expects`, from index.json) and,
   * of that, what its manifests name (`referenced`, with sizes); `checkedAgainst` when an
   * inventory was given.
   */
  delta?: { expects: string[]; referenced: Array<{ digest: string; size: number; mediaType: string; image: string }>; checkedAgainst?: string };
  images: VerifiedImage[];
  problems: string[];
  warnings: string[];
}

/** Verify an archive; never throws for problems with the archive (they are in `problems`). */
export async function verifyArchive(input: ArchiveInputSource, opts: ExamineOptions = {}): Promise<VerifyReport> {
  const ex = await examineArchive(input, opts);
  const scan = ex.scan;
  let delta: VerifyReport['delta'];
  if (ex.expects) {
    const referenced = new Map<string, { digest: string; size: number; mediaType: string; image: string }>();
    for (const i of ex.check?.images ?? []) for (const d of i.expected) if (!referenced.has(d.digest)) referenced.set(d.digest, { digest: d.digest, size: d.size, mediaType: d.mediaType, image: i.label });
    delta = { expects: ex.expects, referenced: [...referenced.values()].sort((a, b) => (a.digest < b.digest ? -1 : 1)) };
    if (opts.have) {
      delta.checkedAgainst = `inventory of imgtool ${opts.have.imgtool}`;
      const held = new Map(opts.have.blobs.map((b) => [b.digest, b.size]));
      for (const dg of ex.expects) {
        const r = referenced.get(dg);
        const what = r ? `${r.image}: ${r.mediaType} ${dg}` : dg;
        const size = held.get(dg);
        if (size === undefined) ex.problems.push(`${what} is expected of the receiver, but the inventory does not list it`);
        else if (r && size !== r.size) ex.problems.push(`${what} is expected of the receiver with ${r.size} bytes, but the inventory lists ${size}`);
      }
    }
  }
  return {
    ok: ex.problems.length === 0,
    source: ex.source,
    format: ex.resolved?.format,
    compression: scan?.compression,
    bytes: scan?.bytes ?? 0,
    entries: scan?.entries ?? 0,
    blobs: { count: scan?.blobs.size ?? 0, bytes: scan ? [...scan.blobs.values()].reduce((n, f) => n + f.size, 0) : 0 },
    ...(delta ? { delta } : {}),
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
