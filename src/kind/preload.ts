import * as fs from 'node:fs';
import * as path from 'node:path';
import { Store } from '../store';
import { planSave, saveImages, DigestChange } from '../archive/export';
import { compressionForName } from '../archive/output';
import { verifyArchive, VerifyReport } from '../archive/verify';
import { FileOutput } from '../archive/output';
import { ResourceHolder } from '../content';
import { withCommandLease } from '../leases';
import { ImgtoolError, InvalidArgumentError } from '../errors';
import { Platform, parsePlatform } from '../platform';
import { Progress, silentProgress } from '../progress';
import { sha256 } from '../digest';

export interface KindPreloadOptions {
  /**
   * A file (one tar holding every image) or a directory (one tar per image, as a node image's
   * `/kind/images/` holds). A directory is an existing directory or a path ending in `/`.
   */
  output: string;
  /** Only this platform of each image (a new index is written for a multi-platform image). */
  platform?: string | Platform;
  progress?: Progress;
  lease?: ResourceHolder;
  leaseId?: string;
  /** `--skip-non-distributable`: leave absent foreign layers out (as `save`). */
  skipNonDistributable?: boolean;
}

export interface PreloadImage {
  name: string;
  digest: string;
  platforms: string[];
}

export interface PreloadArchive {
  file: string;
  images: PreloadImage[];
  bytes: number;
}

export interface KindPreloadResult {
  mode: 'file' | 'dir';
  archives: PreloadArchive[];
  /** Digests rewritten for the archive (platform subsets): old → new. */
  changes: DigestChange[];
  warnings: string[];
}

/**
 * File name for an image's tar in a preload directory: the full normalised name with `/`, `:`
 * and `@` turned into `_` (`docker.io/library/x:1` → `docker.io_library_x_1.tar`). Names that
 * would collide get `-` and 12 hex digits of the name's sha256 appended.
 */
export function preloadFileNames(names: string[]): Map<string, string> {
  const base = (n: string) => n.replace(/[/:@]/g, '_');
  const count = new Map<string, number>();
  for (const n of names) count.set(base(n).toLowerCase(), (count.get(base(n).toLowerCase()) ?? 0) + 1);
  const out = new Map<string, string>();
  for (const n of names) {
    const b = base(n);
    const unique = count.get(b.toLowerCase()) === 1;
    out.set(n, unique ? `${b}.tar` : `${b}-${sha256(n).slice(7, 19)}.tar`);
  }
  return out;
}

function isDirTarget(output: string): boolean {
  if (output.endsWith('/') || output.endsWith(path.sep)) return true;
  try {
    return fs.statSync(output).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Check a preload archive the way `imgtool verify --strict` does, and that it names exactly the
 * expected images with the expected digests (the names `ctr images import` will register).
 * Throws an ImgtoolError listing every problem.
 */
export async function checkPreloadArchive(file: string, expected: Array<{ name: string; digest: string }>, label = file): Promise<VerifyReport> {
  const report = await verifyArchive(file, { strict: true });
  const problems = [...report.problems];
  for (const e of expected) {
    const img = report.images.find((i) => i.names.includes(e.name));
    if (!img) problems.push(`image ${e.name} is not named in the archive`);
    else if (img.digest !== e.digest) problems.push(`image ${e.name} is ${img.digest} in the archive, expected ${e.digest}`);
    else if (img.partial) problems.push(`image ${e.name} is partial in the archive (absent: ${img.absent.map((a) => a.platform ?? a.digest).join(', ')})`);
  }
  if (problems.length) {
    throw new ImgtoolError(
      'INVALID_ARCHIVE',
      `preload archive ${label} failed verification (--strict): ${problems[0]}`,
      problems.length > 1 ? problems : [],
    );
  }
  return report;
}

/**
 * Archives that `ctr --namespace=k8s.io images import --no-unpack --all-platforms --digests`
 * accepts inside a KIND node, with every image's full name kept (`io.containerd.image.name` and
 * `org.opencontainers.image.ref.name` both hold it). One tar for all images (`output` a file), or
 * one per image (`output` a directory). Every archive is written to a temp file next to its
 * target and verified there with `--strict` semantics; only when all of them verified are they
 * renamed over their targets. On any failure every temp file is removed and the files that were
 * there before are untouched. `output` may be a symlink (followed); a FIFO or device is refused
 * (an archive is verified before it is published, which needs a file).
 */
export async function kindPreload(store: Store, refs: string[], opts: KindPreloadOptions): Promise<KindPreloadResult> {
  if (!refs.length) throw new InvalidArgumentError('no image to preload');
  if (!opts.output) throw new InvalidArgumentError('no output given (-o FILE or DIR)');
  if (!isDirTarget(opts.output) && compressionForName(opts.output) !== 'none') {
    throw new InvalidArgumentError(`kind preload -o ${opts.output}: a preload archive must be a plain tar (ctr 1.6 in KIND nodes imports no compressed archive); use a .tar name`);
  }
  const platform = opts.platform === undefined ? undefined : typeof opts.platform === 'string' ? parsePlatform(opts.platform) : opts.platform;
  const platforms = platform ? [platform] : undefined;
  const progress = opts.progress ?? silentProgress;
  const dirMode = isDirTarget(opts.output);

  const run = async (lease: ResourceHolder): Promise<KindPreloadResult> => {
    const warnings: string[] = [];
    const changes: DigestChange[] = [];
    // Plan each image first: a missing image, platform or blob fails before any file is made.
    const planned: Array<{ ref: string; name: string }> = [];
    const seen = new Set<string>();
    for (const ref of refs) {
      const p = await planSave(store, [ref], { platforms, lease, skipNonDistributable: opts.skipNonDistributable, dockerWarnings: false });
      const name = p.images[0].name;
      if (seen.has(name)) continue;
      seen.add(name);
      planned.push({ ref, name });
    }
    const jobs: Array<{ file: string; refs: string[] }> = [];
    if (dirMode) {
      fs.mkdirSync(opts.output, { recursive: true });
      const names = preloadFileNames(planned.map((p) => p.name));
      for (const p of planned) jobs.push({ file: path.join(opts.output, names.get(p.name)!), refs: [p.ref] });
    } else {
      jobs.push({ file: opts.output, refs: planned.map((p) => p.ref) });
    }

    const staged: FileOutput[] = [];
    const archives: PreloadArchive[] = [];
    try {
      for (const job of jobs) {
        const out = FileOutput.staged(job.file, 'kind preload');
        staged.push(out);
        const r = await saveImages(store, job.refs, { output: out, platforms, lease, progress, skipNonDistributable: opts.skipNonDistributable, dockerWarnings: false });
        warnings.push(...r.warnings);
        for (const c of r.changes) if (!changes.some((x) => x.from === c.from && x.to === c.to)) changes.push(c);
        const images = r.images.map((i) => ({ name: i.name, digest: i.digest, platforms: i.platforms }));
        await checkPreloadArchive(out.tempPath!, images, job.file);
        archives.push({ file: job.file, images, bytes: r.bytes });
      }
      for (const out of staged) await out.publish();
    } catch (e) {
      for (const out of staged) await out.abort();
      throw e;
    }
    return { mode: dirMode ? 'dir' : 'file', archives, changes, warnings };
  };
  if (opts.lease) return run(opts.lease);
  return withCommandLease(store, opts.leaseId, run);
}
