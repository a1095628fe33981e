/**
 * Checks every image an archive lists, after the streaming pass: each root manifest or
 * index present, every manifest/config/layer it references present with its declared
 * size (in the archive, or for an import also already in the store), partial indexes,
 * platform selection, unknown media types, config diffIDs against uncompressed layers.
 * Shared by import, verify and ls-archive. Reports problems instead of throwing, so that
 * verify can list them all; import refuses when there is any.
 */
import { ContentStore, MAX_JSON_SIZE } from '../content';
import { Compression } from '../compression/codecs';
import { Digest, shortDigest } from '../digest';
import { ImgtoolError, InvalidArchiveError, NotFoundError } from '../errors';
import { isIndexType, isManifestType, isLayerType, isNonDistributable, layerCompression } from '../images/mediatypes';
import { Annotation, Descriptor } from '../images/types';
import { BlobSource, ImageWalk, platformsOf, stripDesc, walkImage } from '../images/walk';
import { parseDocument } from '../images/schema';
import { exactMatcher, formatPlatform, parsePlatform, Platform, PlatformMatcher } from '../platform';
import { ArchiveScan } from './reader';
import { ArchiveImage, ResolvedArchive } from './reader-layout';

/** A layer blob and the uncompressed tar it decodes to (a compression variant). */
export interface LayerVariant {
  digest: Digest;
  diffId: Digest;
  compression: Compression;
  size: number;
  mediaType: string;
}

export interface CheckedImage {
  entry: ArchiveImage;
  /** Descriptor to register names at (media type, digest, size). */
  target: Descriptor;
  /** Docker RepoTags that apply (manifest.json; for Docker 25+ matched by config). */
  repoTags: string[];
  /** For messages: a name or the short digest. */
  label: string;
  walk: ImageWalk | undefined;
  platforms: string[];
  /** Index entries selected but absent from the archive. */
  absent: Array<{ digest: string; mediaType: string; platform?: string }>;
  partial: boolean;
  layers: LayerVariant[];
  /** Not an image (unknown top-level media type): kept as content, never named. */
  notImage: boolean;
  /** No problems for this image. */
  ok: boolean;
  /** Delta archive, no store: blobs of this image the archive expects the receiver to hold. */
  expected: Descriptor[];
}

export interface CheckOptions {
  /** `--platform`: only these platforms (their absence is an error). */
  platforms?: string[];
  /** `--all-platforms`: absence of any listed manifest is an error. */
  allPlatforms?: boolean;
  /** `--strict`: absence is an error. */
  strict?: boolean;
  /** Content store holding blobs the archive leaves out (import); none for verify. */
  store?: ContentStore;
  /**
   * A delta archive's expected digests (src/archive/have): absent ones are not problems
   * without a store (verify: listed in `expected`); with one, absence names the delta.
   */
  expected?: Set<string>;
}

export interface CheckResult {
  images: CheckedImage[];
  problems: string[];
  warnings: string[];
}

export function platformMatcher(platforms: string[] | undefined): PlatformMatcher | undefined {
  if (!platforms || !platforms.length) return undefined;
  return exactMatcher(platforms.map(parsePlatform));
}

/** Documents and blobs of an archive (plus synthesized documents, plus an optional store). */
export class ArchiveSource implements BlobSource {
  /** Descriptor size problems, by digest (each reported once). */
  readonly sizeProblems = new Map<string, string>();
  constructor(
    private readonly scan: ArchiveScan,
    private readonly resolved: ResolvedArchive,
    private readonly store?: ContentStore,
  ) {}

  /** Size of a blob wherever it is, or undefined when absent. */
  sizeOf(digest: string): number | undefined {
    const s = this.resolved.synthesized.get(digest);
    if (s) return s.bytes.length;
    const f = this.scan.blobs.get(digest);
    if (f) return f.size;
    if (this.resolved.index.desc.digest === digest) return this.resolved.index.bytes.length;
    return this.store?.info(digest)?.size;
  }

  has(d: Descriptor): boolean {
    const size = this.sizeOf(d.digest);
    if (size === undefined) return false;
    if (size !== d.size && !this.sizeProblems.has(d.digest)) {
      this.sizeProblems.set(d.digest, `${d.mediaType} ${d.digest} is ${size} bytes, but a descriptor declares ${d.size}`);
    }
    return true;
  }

  async readJSON<T>(d: Descriptor, what = `${d.mediaType} ${d.digest}`): Promise<T> {
    if (d.size > MAX_JSON_SIZE) throw new InvalidArchiveError(`${what} is ${d.size} bytes, over the ${MAX_JSON_SIZE}-byte limit for JSON documents`);
    let bytes: Buffer | undefined = this.resolved.synthesized.get(d.digest)?.bytes ?? this.scan.json.get(d.digest);
    if (!bytes && this.resolved.index.desc.digest === d.digest) bytes = this.resolved.index.bytes;
    if (!bytes && this.store?.has(d.digest)) bytes = await this.store.readBuffer(d.digest);
    if (!bytes) {
      // The reader keeps only blobs that start with "{" as documents.
      if (this.scan.blobs.has(d.digest)) throw new InvalidArchiveError(`${what}: must be a JSON object, but the blob does not start with "{"`);
      throw new NotFoundError(`${what} is not in the archive`);
    }
    return parseDocument(bytes, what) as T;
  }
}

/** Display label for an image before naming: containerd name, ref.name, RepoTag, or digest. */
function imageLabel(entry: ArchiveImage, repoTags: string[]): string {
  const a = entry.desc.annotations ?? {};
  return a[Annotation.CONTAINERD_NAME] || a[Annotation.REF_NAME] || repoTags[0] || shortDigest(entry.desc.digest);
}

function platformOf(d: Descriptor): string | undefined {
  try {
    return d.platform ? formatPlatform(d.platform) : undefined;
  } catch {
    return undefined;
  }
}

export async function checkArchiveImages(scan: ArchiveScan, resolved: ResolvedArchive, opts: CheckOptions = {}): Promise<CheckResult> {
  const src = new ArchiveSource(scan, resolved, opts.store);
  const matcher = platformMatcher(opts.platforms);
  const wanted: Platform[] = (opts.platforms ?? []).map(parsePlatform);
  const out: CheckResult = { images: [], problems: [], warnings: [] };
  const warned = new Set<string>();
  const warnOnce = (key: string, msg: string) => {
    if (warned.has(key)) return;
    warned.add(key);
    out.warnings.push(msg);
  };
  const absenceIsError = !!(opts.strict || opts.allPlatforms);

  for (const entry of resolved.images) {
    const problems: string[] = [];
    const d = entry.desc;
    const img: CheckedImage = {
      entry, target: stripDesc(d), repoTags: entry.repoTags, label: '', walk: undefined, platforms: [], absent: [],
      partial: false, layers: [], notImage: false, ok: false, expected: [],
    };
    img.label = imageLabel(entry, entry.repoTags);
    out.images.push(img);

    if (!isIndexType(d.mediaType) && !isManifestType(d.mediaType)) {
      img.notImage = true;
      warnOnce(d.digest, `${img.label}: index entry ${d.digest} has media type ${d.mediaType}, not an image; kept as content, not named`);
      if (!src.has(d)) problems.push(`${img.label}: ${d.mediaType} ${d.digest} listed in the index is not in the archive`);
      finish(img, problems);
      continue;
    }
    if (!src.has(d)) {
      if (!opts.store && opts.expected?.has(d.digest)) img.expected.push(stripDesc(d));
      else if (!scan.corrupt.has(d.digest)) problems.push(`${img.label}: ${describeDesc(d)} listed in the index is not in the archive`);
      finish(img, problems);
      continue;
    }
    let walk: ImageWalk;
    try {
      walk = await walkImage(src, d, { platforms: matcher });
    } catch (e) {
      if (!(e instanceof ImgtoolError)) throw e;
      problems.push(`${img.label}: ${e.message}`);
      finish(img, problems);
      continue;
    }
    img.walk = walk;
    img.platforms = platformsOf(walk);

    // Docker 25+ archives: names may only be in manifest.json (matched by config digest).
    if (!img.repoTags.length && resolved.repoTagsByConfig.size) {
      const tags = new Set<string>();
      for (const m of walk.manifests) for (const t of resolved.repoTagsByConfig.get(m.manifest.config?.digest) ?? []) tags.add(t);
      img.repoTags = [...tags];
      img.label = imageLabel(entry, img.repoTags);
    }

    for (const m of walk.missing) {
      if (scan.corrupt.has(m.desc.digest)) continue;
      const role = m.role === 'layer' ? `layer ${(m.index ?? 0) + 1}` : 'config';
      const msg = `${img.label}: ${role} ${m.desc.digest} of manifest ${shortDigest(m.manifest)} is not in the archive`;
      if (opts.expected?.has(m.desc.digest)) {
        if (opts.store) problems.push(`${msg}, and the store does not hold it (the delta archive expects it there)`);
        else img.expected.push(stripDesc(m.desc));
      } else if (m.role === 'layer' && isNonDistributable(m.desc.mediaType) && m.desc.urls?.length) {
        warnOnce(m.desc.digest, `${msg} (non-distributable layer, kept as a reference to ${m.desc.urls[0]})`);
      } else {
        problems.push(msg);
      }
    }
    const expectedEntries = opts.store ? [] : walk.absent.filter((a) => opts.expected?.has(a.digest));
    img.expected.push(...expectedEntries.map(stripDesc));
    img.absent = walk.absent.filter((a) => !expectedEntries.includes(a)).map((a) => ({ digest: a.digest, mediaType: a.mediaType, platform: platformOf(a) }));
    img.partial = img.absent.length > 0;
    if (img.partial) {
      const list = img.absent.map((a) => `${a.platform ?? 'unknown platform'} ${a.digest}`);
      const msg = `${img.label}: ${img.absent.length} manifest(s) of index ${shortDigest(d.digest)} are not in the archive (partial): ${list.join(', ')}`;
      if (absenceIsError || matcher) problems.push(msg);
      else out.warnings.push(msg);
    }
    for (const p of wanted) {
      const fp = formatPlatform(p);
      if (!walk.manifests.some((m) => !m.attestation && m.platform && formatPlatform(m.platform) === fp) && !walk.absent.some((a) => platformOf(a) === fp)) {
        const present = [...new Set(allPlatformsOf(walk))];
        if (!present.length && platformOf(d)) present.push(platformOf(d)!);
        problems.push(`${img.label}: no ${fp} content in the archive (platforms present: ${present.join(', ') || 'none'})`);
      }
    }
    for (const u of walk.unknown) {
      warnOnce(u.digest, `${img.label}: unknown media type ${u.mediaType} for ${u.digest}; kept as is`);
    }

    // Config diffIDs against layers; compression variants to record.
    for (const m of walk.manifests) {
      if (m.attestation || !m.config) continue;
      // validateConfig (in walkImage) guarantees an image config's rootfs.diff_ids are sha256 digests.
      const diffIds = m.config.rootfs.diff_ids;
      const layers = m.manifest.layers.filter((l) => isLayerType(l.mediaType));
      if (diffIds.length !== layers.length) {
        problems.push(`${img.label}: manifest ${shortDigest(m.desc.digest)} has ${layers.length} layers but its config ${shortDigest(m.manifest.config.digest)} lists ${diffIds.length} diffIDs`);
        continue;
      }
      layers.forEach((l, i) => {
        const diffId = diffIds[i];
        const declared = layerCompression(l.mediaType)!;
        const file = scan.blobs.get(l.digest);
        const actual = file ? file.compression : declared;
        if (file && actual !== declared) {
          warnOnce(`c:${l.digest}`, `${img.label}: layer ${i + 1} ${l.digest} is declared ${l.mediaType} but its bytes are ${actual === 'none' ? 'uncompressed' : actual}`);
        }
        if (actual === 'none' && file && l.digest !== diffId) {
          problems.push(`${img.label}: layer ${i + 1} ${l.digest} is uncompressed, so its diffID must be its digest, but the config says ${diffId}`);
          return;
        }
        if (file?.decoded?.error) {
          problems.push(`${img.label}: layer ${i + 1} ${l.digest}: ${file.decoded.error}`);
          return;
        }
        if (file?.decoded?.digest && file.decoded.digest !== diffId) {
          problems.push(`${img.label}: layer ${i + 1} ${l.digest} decompresses to ${file.decoded.digest}, but the config says its diffID is ${diffId}`);
          return;
        }
        if (src.sizeOf(l.digest) === undefined) return;
        img.layers.push({ digest: l.digest, diffId, compression: actual, size: l.size, mediaType: l.mediaType });
      });
    }
    // Descriptor sizes that disagree with the blobs.
    for (const b of [d, ...walk.blobs]) {
      const p = src.sizeProblems.get(b.digest);
      if (p) problems.push(`${img.label}: ${p}`);
    }
    finish(img, problems);
  }
  // A blob shared by images is reported once per image; that is fine. Deduplicate identical lines.
  out.problems = [...new Set(out.problems)];
  return out;

  function finish(img: CheckedImage, problems: string[]): void {
    img.ok = problems.length === 0;
    out.problems.push(...problems);
  }
}

function allPlatformsOf(w: ImageWalk): string[] {
  const out: string[] = [];
  for (const s of [...w.skipped, ...w.absent]) {
    const p = platformOf(s);
    if (p && p !== 'unknown/unknown') out.push(p);
  }
  for (const m of w.manifests) if (!m.attestation && m.platform) out.push(formatPlatform(m.platform));
  return out.sort();
}

function describeDesc(d: Descriptor): string {
  const kind = isIndexType(d.mediaType) ? 'index' : isManifestType(d.mediaType) ? 'manifest' : d.mediaType;
  const p = platformOf(d);
  return `${kind} ${d.digest}${p ? ` (${p})` : ''}`;
}
