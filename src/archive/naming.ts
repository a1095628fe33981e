/**
 * "Naming on load" (CLI.md): which names an image found in an archive is registered under.
 *
 * In order: the index entry's `io.containerd.image.name`; its
 * `org.opencontainers.image.ref.name` when that is a full reference; `BASE:TAG` when
 * `ref.name` is only a tag and a base name is given; for Docker archives, every
 * `RepoTags` entry. With `digests`, every image is also named `NAME@DIGEST` (repository of
 * each name) or, when it has no name, `BASE@DIGEST` (default base `import-YYYY-MM-DD`).
 * Never invents a repository from a bare tag (`docker.io/library/latest:latest`).
 */
import { Annotation } from '../images/types';
import { InvalidArgumentError } from '../errors';
import { isFullReference, isTag, normalizeReference, parseReference, repositoryName } from '../reference';

export interface NamingOptions {
  /** `--base-name`: repository for bare-tag `ref.name`s and for `BASE@DIGEST`. */
  baseName?: string;
  /** `--digests`: also register `NAME@DIGEST` / `BASE@DIGEST`. */
  digests?: boolean;
  /** Day used for the default digest base (default: today, local time, as ctr). */
  date?: Date;
}

export interface NameInput {
  /** Manifest or index digest of the image. */
  digest: string;
  /** Annotations of the image's index entry. */
  annotations?: Record<string, string>;
  /** Docker `RepoTags` that apply to the image (Docker archives). */
  repoTags?: string[];
}

export interface NameResult {
  names: string[];
  warnings: string[];
}

/** `import-YYYY-MM-DD`, as ctr names digest-only imports. */
export function defaultDigestBase(date: Date = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `import-${date.getFullYear()}-${p(date.getMonth() + 1)}-${p(date.getDate())}`;
}

/** Validate `--base-name`: a repository without tag or digest. Returns it normalised (no tag). */
export function checkBaseName(base: string): string {
  let ref;
  try {
    ref = parseReference(base);
  } catch (e) {
    throw new InvalidArgumentError(`--base-name ${JSON.stringify(base)}: ${(e as Error).message}`);
  }
  const lastSlash = base.lastIndexOf('/');
  if (ref.digest || base.lastIndexOf(':') > lastSlash) {
    throw new InvalidArgumentError(`--base-name ${JSON.stringify(base)} must be a repository without tag or digest`);
  }
  return repositoryName(ref);
}

function tryNormalize(s: string): string | undefined {
  try {
    return normalizeReference(s);
  } catch {
    return undefined;
  }
}

/** The names one image gets. Order is stable; duplicates removed. */
export function namesForImage(img: NameInput, opts: NamingOptions = {}): NameResult {
  const warnings: string[] = [];
  const short = img.digest.slice(0, 19);
  const base = opts.baseName ? checkBaseName(opts.baseName) : undefined;
  const a = img.annotations ?? {};
  let names: string[] = [];
  let why = '';

  const cname = a[Annotation.CONTAINERD_NAME];
  if (cname) {
    const n = tryNormalize(cname);
    if (n) names = [n];
    else warnings.push(`image ${short}: ignoring invalid ${Annotation.CONTAINERD_NAME} ${JSON.stringify(cname)}`);
  }
  const refName = a[Annotation.REF_NAME];
  if (!names.length && refName) {
    if (isFullReference(refName)) {
      const n = tryNormalize(refName);
      if (n) names = [n];
    } else if (isTag(refName)) {
      if (base) {
        const n = tryNormalize(`${base}:${refName}`);
        if (n) names = [n];
      } else {
        why = `its ${Annotation.REF_NAME} ${JSON.stringify(refName)} is only a tag (give --base-name)`;
      }
    } else {
      warnings.push(`image ${short}: ignoring invalid ${Annotation.REF_NAME} ${JSON.stringify(refName)}`);
    }
  }
  if (!names.length && img.repoTags?.length) {
    for (const t of img.repoTags) {
      const n = tryNormalize(t);
      if (n) names.push(n);
      else warnings.push(`image ${short}: ignoring invalid RepoTag ${JSON.stringify(t)}`);
    }
  }
  if (opts.digests) {
    const repos = names.length ? names.map((n) => repositoryName(parseReference(n))) : [base ?? defaultDigestBase(opts.date)];
    for (const r of repos) {
      const n = tryNormalize(`${r}@${img.digest}`);
      if (n) names.push(n);
      else warnings.push(`image ${short}: cannot form a digest name from ${JSON.stringify(r)}`);
    }
  }
  names = [...new Set(names)];
  if (!names.length) {
    warnings.push(`image ${img.digest} has no usable name${why ? `: ${why}` : ''}; skipped (use --digests to load it by digest)`);
  }
  return { names, warnings };
}
