/**
 * `save`, planning: work out the whole archive before writing anything. For each image root:
 * walk it (platform selection, absent index entries left out or missing), then per kept
 * manifest decide each layer — kept as stored, or asked of the layer resolver (absent, or
 * wanted in another compression) — and rewrite the manifest and its index when a layer
 * changed (export-rewrite). Whatever cannot be produced fails the plan, listing every blob.
 * Then every blob of the final trees with its size (omitted ones marked), the metadata files
 * (export-metadata), and the write order: documents first, then layers, each by digest.
 */
import type { Store } from '../store';
import { Descriptor } from '../images/types';
import { isIndexType, isLayerType, layerCompression, isNonDistributable } from '../images/mediatypes';
import { walkImage, ImageWalk, ImageManifestInfo, stripDesc, isAttestation } from '../images/walk';
import { contentSource } from '../images/source';
import { Platform, PlatformMatcher, exactMatcher, formatPlatform, hostPlatform, normalizePlatform } from '../platform';
import { ImgtoolError, InvalidArgumentError, MissingContentError, NotFoundError } from '../errors';
import { Progress, silentProgress } from '../progress';
// Not ../layers: its index loads the producer (codecs, zlib) and the prover, which the resolver
// loads only when a layer must be produced; a plan that keeps every layer needs neither.
import { replacementMediaType } from '../layers/request';
import type { LayerResolver } from '../layers/request';
import { layerResolver } from '../layers/resolver';
import type {
  DigestChange, PlannedBlob, SaveCompression, SaveFormat, SaveOptions, SavePlan,
} from './export';
import { Named, resolveNames } from './export-names';
import { collectTree, rebuildIndex, rewriteManifest } from './export-rewrite';
import { archiveMetadata } from './export-metadata';
import { closureBlobs, deltaAnnotations } from './have';

export const SAVE_FORMATS: readonly SaveFormat[] = ['oci+docker', 'oci', 'docker'];
export const SAVE_COMPRESSIONS: readonly SaveCompression[] = ['keep', 'gzip', 'zstd', 'none'];

/** A kept manifest with its final descriptor, layers and config. */
export interface KeptManifest {
  info: ImageManifestInfo;
  finalDesc: Descriptor;
  layers: Descriptor[];
  config: Descriptor;
}

/** One image root (several names may share it) being planned. */
export interface RootPlan {
  root: Descriptor;
  names: Named[];
  walk: ImageWalk;
  /** Final descriptor per stored manifest digest (kept manifests only). */
  manifestMap: Map<string, Descriptor>;
  /** Kept manifests in platform order with their final layers. */
  kept: KeptManifest[];
  finalRoot?: Descriptor;
  leftOut: string[];
}

interface MissingItem {
  image: string;
  line: string;
}

/** State shared by the steps of one plan. */
interface PlanContext {
  store: Store;
  opts: Omit<SaveOptions, 'output'>;
  format: SaveFormat;
  compression: SaveCompression;
  withOci: boolean;
  progress: Progress;
  resolver: LayerResolver;
  /** Blobs referenced but not written (omitBlobs, plus skipped non-distributable layers). */
  omit: Set<string>;
  /**
   * Delta: blobs the receiver holds (omitBlobs, --have, --exclude), digest -> size when known.
   * A written blob in it is left out (never read or produced) when its size matches.
   */
  held: Map<string, number | undefined>;
  /** Held digests from --have/--exclude: the ones a delta records on index.json (plain omitBlobs, as kind load's to containerd, are not). */
  announced: Set<string>;
  matcher?: PlatformMatcher;
  wanted?: Platform[];
  host: Platform;
  missing: MissingItem[];
  problems: string[];
  warn: (m: string) => void;
  generated: Map<string, Buffer>;
  changes: DigestChange[];
  /** Resolver answers per `digest|compression`, so a shared layer is produced once. */
  resolved: Map<string, Promise<Descriptor | undefined>>;
}

const platformLabel = (p?: Platform) => (p ? formatPlatform(p) : 'unknown platform');

function checkOptions(opts: Omit<SaveOptions, 'output'>, refs: string[]): { format: SaveFormat; compression: SaveCompression } {
  const format = opts.format ?? 'oci+docker';
  const compression = opts.compression ?? 'keep';
  if (!SAVE_FORMATS.includes(format)) throw new InvalidArgumentError(`unknown format ${JSON.stringify(format)}: expected ${SAVE_FORMATS.join(', ')}`);
  if (!SAVE_COMPRESSIONS.includes(compression)) throw new InvalidArgumentError(`unknown compression ${JSON.stringify(compression)}: expected ${SAVE_COMPRESSIONS.join(', ')}`);
  if (format === 'docker' && compression === 'zstd') {
    throw new InvalidArgumentError('Docker archives cannot hold zstd layers (schema2 has no zstd media type): use --format oci or oci+docker');
  }
  if (opts.platforms?.length && opts.allPlatforms) throw new InvalidArgumentError('--platform and --all-platforms are mutually exclusive');
  if (format === 'docker' && opts.allPlatforms) {
    throw new InvalidArgumentError('--all-platforms cannot be used with --format docker: a Docker archive holds one manifest per image name, so it cannot hold every platform; use --format oci or oci+docker (its index.json holds them all), or --platform to choose one');
  }
  if (format === 'docker' && (opts.platforms?.length ?? 0) > 1) {
    const list = opts.platforms!.map((p) => formatPlatform(normalizePlatform(p))).join(', ');
    throw new InvalidArgumentError(`--format docker holds one platform per image (a Docker archive has one manifest per image name), but ${opts.platforms!.length} were asked (${list}); give one --platform, or use --format oci or oci+docker`);
  }
  if (!refs.length) throw new InvalidArgumentError('no image to save');
  if (format === 'docker' && (opts.have || opts.exclude?.length)) {
    throw new InvalidArgumentError('a delta archive (--have, --exclude) records what it expects on index.json: use --format oci or oci+docker');
  }
  return { format, compression };
}

/**
 * Work out the whole archive before writing anything: every blob with its size, every
 * rewritten manifest/index, the Docker manifest.json. Missing blobs are asked of the
 * layer resolver; whatever still cannot be produced fails the plan, listing every one.
 */
export async function planSave(store: Store, refs: string[], opts: Omit<SaveOptions, 'output'> = {}): Promise<SavePlan> {
  const { format, compression } = checkOptions(opts, refs);
  const withOci = format !== 'docker';
  const withDocker = format !== 'oci';
  const progress = opts.progress ?? silentProgress;
  const wanted = opts.platforms?.map(normalizePlatform);
  const warnings: string[] = [];
  const ctx: PlanContext = {
    store, opts, format, compression, withOci, progress,
    resolver: opts.layerResolver ?? layerResolver(store),
    omit: new Set<string>(),
    held: new Map<string, number | undefined>(),
    announced: new Set<string>(),
    wanted,
    matcher: wanted?.length ? exactMatcher(wanted) : undefined,
    host: normalizePlatform(opts.host ?? hostPlatform()),
    missing: [], problems: [],
    warn: (m: string) => {
      warnings.push(m);
      progress.warn(m);
    },
    generated: new Map(), changes: [], resolved: new Map(),
  };

  for (const d of opts.omitBlobs ?? []) ctx.held.set(d, undefined);
  for (const b of opts.have?.blobs ?? []) {
    ctx.held.set(b.digest, b.size);
    ctx.announced.add(b.digest);
  }
  if (opts.exclude?.length) {
    for (const [d, size] of await closureBlobs(store, opts.exclude)) {
      ctx.held.set(d, size);
      ctx.announced.add(d);
    }
  }
  const named = resolveNames(store, refs);
  const roots = new Map<string, RootPlan>();
  for (const n of named) {
    const key = n.rec.target.digest;
    let rp = roots.get(key);
    if (!rp) {
      rp = { root: stripDesc(n.rec.target), names: [], walk: undefined as unknown as ImageWalk, manifestMap: new Map(), kept: [], leftOut: [] };
      roots.set(key, rp);
    }
    rp.names.push(n);
  }

  for (const rp of roots.values()) await planRoot(ctx, rp);
  failOnMissing(ctx);

  // Indexes: unchanged when complete and untouched, else a new one with only what is kept.
  const blobMap = new Map<string, PlannedBlob>();
  const addBlob = (d: Descriptor, data?: Buffer) => {
    if (blobMap.has(d.digest)) return;
    blobMap.set(d.digest, { digest: d.digest, size: d.size, mediaType: d.mediaType, data, omitted: ctx.omit.has(d.digest) || isHeld(ctx, d) });
  };
  const pinnedErrors: string[] = [];
  for (const rp of roots.values()) {
    const image = rp.names[0].name;
    if (!rp.kept.length) continue;
    if (withOci) {
      if (isIndexType(rp.root.mediaType)) {
        const rebuilt = rebuildIndex(rp, rp.root, 0, ctx.generated, ctx.changes, image);
        if (!rebuilt) throw new NotFoundError(`image ${image}: nothing of it is left to save`);
        rp.finalRoot = rebuilt;
      } else {
        rp.finalRoot = rp.manifestMap.get(rp.root.digest) ?? rp.root;
      }
      if (rp.finalRoot.digest !== rp.root.digest) {
        for (const n of rp.names) {
          if (n.pinned) {
            pinnedErrors.push(`image ${n.name} is named by digest, but saving it would change its ${isIndexType(rp.root.mediaType) ? 'index' : 'manifest'} (${rp.root.digest} -> ${rp.finalRoot.digest}); save it by a tag name instead`);
          }
        }
      }
      collectTree(rp, rp.finalRoot, ctx.generated, addBlob);
    } else {
      const k = rp.kept.find((x) => !x.info.attestation)!;
      addBlob(k.config);
      for (const l of k.layers) addBlob(l);
    }
  }
  if (pinnedErrors.length) {
    throw new ImgtoolError('PRECONDITION', pinnedErrors[0], pinnedErrors.length > 1 ? pinnedErrors : []);
  }

  // Sizes of stored blobs are what the tar headers declare: they must match the descriptors.
  for (const b of blobMap.values()) {
    if (b.data || b.omitted) continue;
    const info = store.content.info(b.digest);
    if (!info) throw new MissingContentError(`cannot save: ${b.mediaType} ${b.digest} not in the store`);
    if (info.size !== b.size) {
      throw new ImgtoolError('SIZE_MISMATCH', `${b.mediaType} ${b.digest}: descriptor says ${b.size} bytes, the store has ${info.size}`);
    }
  }

  // A delta records which digests it expects the receiver to hold (skipped foreign layers are not expected).
  const expects = [...blobMap.values()].filter((b) => b.omitted && ctx.held.has(b.digest) && ctx.announced.has(b.digest) && !ctx.omit.has(b.digest)).map((b) => b.digest).sort();
  if (withOci && withDocker && opts.dockerWarnings !== false) warnZstdForDocker(ctx, roots);
  const { images, files } = archiveMetadata(named, roots, { withOci, withDocker, indexAnnotations: deltaAnnotations(expects) });

  // Blob order: small documents first (a streaming reader learns the structure before
  // any layer arrives), then layers; each group sorted by digest.
  const all = [...blobMap.values()];
  const isDoc = (b: PlannedBlob) => !isLayerType(b.mediaType);
  const byDigest = (a: PlannedBlob, b: PlannedBlob) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0);
  const blobs = [...all.filter(isDoc).sort(byDigest), ...all.filter((b) => !isDoc(b)).sort(byDigest)];
  return { format, compression, images, changes: ctx.changes, blobs, files, expects, warnings };
}

/**
 * oci+docker: manifest.json is what Docker-archive readers load, and Docker before 23 cannot read
 * a zstd layer (`docker load` fails with `archive/tar: invalid tar header`, possibly after loading
 * other images). Such an image stays in manifest.json — podman, skopeo's docker-archive:,
 * containerd and Docker 23+ read it, and index.json and manifest.json then describe the same
 * images — but each one is warned about, naming the image and its first zstd layer.
 */
function warnZstdForDocker(ctx: PlanContext, roots: Map<string, RootPlan>): void {
  for (const rp of roots.values()) {
    const main = rp.kept.find((k) => !k.info.attestation);
    if (!main) continue;
    const z = main.layers.map((d, i) => ({ d, i })).filter((x) => layerCompression(x.d.mediaType) === 'zstd');
    if (!z.length) continue;
    const more = z.length > 1 ? ` (and ${z.length - 1} more)` : '';
    ctx.warn(`image ${rp.names.map((n) => n.name).join(', ')} (${platformLabel(main.info.platform)}): manifest.json names zstd layer ${z[0].i + 1} ${z[0].d.digest}${more}, which Docker before 23 cannot load ("archive/tar: invalid tar header"); podman, skopeo, containerd and Docker 23+ can; use --compression gzip for an archive Docker 20.10 loads`);
  }
}

/** Everything that cannot be produced, then every other problem, as one error each. */
function failOnMissing(ctx: PlanContext): void {
  const { missing, problems } = ctx;
  if (missing.length) {
    const first = missing[0].line;
    throw new MissingContentError(
      missing.length === 1
        ? `cannot save: ${first}`
        : `cannot save: ${missing.length} blobs are missing and cannot be produced (first: ${first})`,
      missing.map((m) => m.line),
    );
  }
  if (problems.length) {
    throw new ImgtoolError(problems.some((p) => /has no (platform|manifest)|no platform of it/.test(p)) ? 'NOT_FOUND' : 'PRECONDITION',
      problems.length === 1 ? problems[0] : `cannot save: ${problems.length} problems (first: ${problems[0]})`, problems.length > 1 ? problems : []);
  }
}

/** Walk one root and plan each manifest it keeps (`rp.kept`, `rp.manifestMap`). */
async function planRoot(ctx: PlanContext, rp: RootPlan): Promise<void> {
  const { store, opts, matcher, wanted, withOci, missing, problems, warn } = ctx;
  const image = rp.names[0].name;
  const rootKind = isIndexType(rp.root.mediaType) ? 'index' : 'manifest';
  if (!store.content.has(rp.root.digest)) {
    missing.push({ image, line: `image ${image}: ${rootKind} ${rp.root.digest} not in the store` });
    return;
  }
  const walk = await walkImage(contentSource(store.content), rp.root, { platforms: matcher, host: ctx.host });
  rp.walk = walk;

  // Selected index entries that are absent from the store.
  for (const a of walk.absent) {
    if (isAttestation(a)) continue; // attestations of absent content travel only when present
    const what = isIndexType(a.mediaType) ? `nested index ${a.digest}` : `${platformLabel(a.platform)} manifest ${a.digest}`;
    if (matcher || opts.allPlatforms) {
      missing.push({ image, line: `image ${image}: ${what} not in the store` });
    } else {
      rp.leftOut.push(a.platform ? formatPlatform(a.platform) : a.digest);
      warn(`image ${image}: ${what} is not in the store; left out of the archive${withOci ? ' (a new index is written)' : ''}`);
    }
  }
  for (const s of walk.skipped) if (s.platform && s.platform.os !== 'unknown') rp.leftOut.push(formatPlatform(s.platform));

  let manifests = walk.manifests;
  const images = manifests.filter((m) => !m.attestation);
  if (wanted?.length) {
    for (const p of wanted) {
      const f = formatPlatform(p);
      if (images.some((m) => m.platform && formatPlatform(m.platform) === f)) continue;
      if (walk.absent.some((a) => a.platform && formatPlatform(a.platform) === f)) continue; // reported as missing
      problems.push(`image ${image} has no platform ${f}`);
    }
  }
  if (!images.length) {
    if (!walk.absent.length || !(matcher || opts.allPlatforms)) {
      problems.push(wanted?.length
        ? `image ${image} has no manifest for ${wanted.map(formatPlatform).join(', ')}`
        : `image ${image}: no platform of it is in the store`);
    }
    return;
  }
  if (!withOci) {
    // Docker archives hold one manifest per image: the host's, else the first in platform order
    // (with --platform, the one asked). The others are left out, and said so.
    manifests = [images[0]];
    const others = images.slice(1).map((m) => platformLabel(m.platform));
    if (others.length) {
      rp.leftOut.push(...others);
      warn(`image ${image}: a Docker archive holds one manifest per image: wrote ${platformLabel(images[0].platform)}, left out ${others.join(', ')} (choose with --platform, or use --format oci or oci+docker for every platform)`);
    }
  }

  for (const m of manifests) {
    const mdigest = m.desc.digest;
    const missingHere = walk.missing.filter((x) => x.manifest === mdigest);
    if (m.attestation) {
      if (missingHere.length) {
        warn(`image ${image}: attestation manifest ${mdigest} has ${missingHere.length} blob(s) not in the store; left out of the archive`);
        continue;
      }
      rp.manifestMap.set(mdigest, m.desc);
      rp.kept.push({ info: m, finalDesc: m.desc, layers: m.manifest.layers.map(stripDesc), config: stripDesc(m.manifest.config) });
      continue;
    }
    const cfgMissing = missingHere.find((x) => x.role === 'config');
    if (cfgMissing) missing.push({ image, line: `image ${image} (${platformLabel(m.platform)}, manifest ${mdigest}): config ${cfgMissing.desc.digest} not in the store` });
    const layers = await planLayers(ctx, image, m);
    if (cfgMissing || !layers) continue;

    const w = rewriteManifest(m, layers, { image, compression: ctx.compression, withOci, generated: ctx.generated, changes: ctx.changes });
    if (ctx.compression === 'keep' && w.finalDesc.digest !== mdigest) {
      // Under keep, a delta's omitted blobs are those of the stored manifest: the receiver is
      // expected to complete exactly that image, so its manifest must not change.
      const heldHere = w.layers.filter((l) => isHeld(ctx, l));
      if (heldHere.length) {
        problems.push(`image ${image} (${platformLabel(m.platform)}): manifest ${mdigest} would change (layers rebuilt or replaced: -> ${w.finalDesc.digest}), so it cannot be sent as a delta leaving out ${heldHere.length} layer(s) (first: ${heldHere[0].digest}); save it in full, or make its absent layers available`);
      }
    }
    if (ctx.format === 'docker') {
      const z = w.layers.map((d, i) => ({ d, i })).filter((x) => layerCompression(x.d.mediaType) === 'zstd');
      for (const x of z) {
        problems.push(`image ${image} (${platformLabel(m.platform)}): layer ${x.i + 1} ${x.d.digest} is zstd, which Docker archives cannot hold; use --compression gzip or --format oci`);
      }
    }
    rp.manifestMap.set(mdigest, w.finalDesc);
    rp.kept.push({ info: m, finalDesc: w.finalDesc, layers: w.layers, config: w.config });
  }
}

/**
 * The final layer descriptors of manifest `m`: each kept as stored, or the layer resolver's
 * answer (absent, or wanted in another compression). Undefined when any cannot be produced
 * (each one is in `ctx.missing`).
 */
async function planLayers(ctx: PlanContext, image: string, m: ImageManifestInfo): Promise<Descriptor[] | undefined> {
  const { store, opts, compression, omit, missing, problems, warn } = ctx;
  const mdigest = m.desc.digest;
  const plat = platformLabel(m.platform);
  const diffIds = Array.isArray(m.config?.rootfs?.diff_ids) ? m.config!.rootfs.diff_ids : [];
  const layers: Descriptor[] = [];
  let complete = true;
  for (let i = 0; i < m.manifest.layers.length; i++) {
    const l = m.manifest.layers[i];
    const info = store.content.info(l.digest);
    const present = !!info && info.size === l.size;
    if (info && info.size !== l.size) {
      problems.push(`image ${image} (${plat}): layer ${i + 1} ${l.digest} is ${info.size} bytes in the store but the manifest says ${l.size}`);
    }
    const own = layerCompression(l.mediaType);
    if (!present && opts.skipNonDistributable && isNonDistributable(l.mediaType)) {
      omit.add(l.digest);
      warn(`image ${image} (${plat}): non-distributable layer ${i + 1} ${l.digest} is not in the store; left out of the archive (--skip-non-distributable)`);
      layers.push(l);
      continue;
    }
    // A layer the receiver holds as the manifest names it is neither read nor produced.
    const held = isHeld(ctx, l);
    const keepAsIs =
      (compression === 'keep' && (present || held)) ||
      (!isLayerType(l.mediaType) && present) ||
      (compression === own && (present || held));
    if (keepAsIs) {
      layers.push(l);
      continue;
    }
    const heldVariant = compression !== 'keep' ? heldVariantOf(ctx, l, diffIds[i], compression) : undefined;
    if (heldVariant) {
      layers.push(heldVariant);
      continue;
    }
    const key = `${l.digest}|${compression}`;
    let p = ctx.resolved.get(key);
    if (!p) {
      p = ctx.resolver.resolveLayer({
        image, manifest: mdigest, platform: m.platform, index: i, layer: l, diffId: diffIds[i],
        compression, lease: opts.lease, progress: ctx.progress,
      });
      ctx.resolved.set(key, p);
    }
    const r = await p;
    if (!r) {
      complete = false;
      const why = present ? `not available as ${compression}` : 'not in the store and cannot be produced';
      missing.push({ image, line: `image ${image} (${plat}, manifest ${mdigest}): layer ${i + 1} ${l.digest} (${l.mediaType}) ${why}` });
      continue;
    }
    const rinfo = store.content.info(r.digest);
    if (!rinfo || rinfo.size !== r.size) {
      complete = false;
      missing.push({ image, line: `image ${image} (${plat}, manifest ${mdigest}): layer ${i + 1} ${l.digest}: the layer resolver gave ${r.digest}, which is not in the store with size ${r.size}` });
      continue;
    }
    const rc = layerCompression(r.mediaType);
    if (compression !== 'keep' && rc !== compression) {
      throw new ImgtoolError('INTERNAL', `layer resolver returned ${r.mediaType} (${r.digest}) for layer ${i + 1} of ${image} when ${compression} was wanted`);
    }
    if (r.digest === l.digest && r.mediaType === l.mediaType) layers.push(l);
    else {
      const d: Descriptor = { mediaType: rc ? replacementMediaType(l.mediaType, rc) : r.mediaType, digest: r.digest, size: r.size };
      if (r.annotations && r.digest !== l.digest) d.annotations = r.annotations;
      else if (l.annotations && r.digest === l.digest) d.annotations = l.annotations;
      if (l.urls && r.digest === l.digest) d.urls = l.urls;
      layers.push(d);
    }
  }
  return complete ? layers : undefined;
}

/** The receiver holds `d` (a delta leaves it out): listed, with the same size when the size is known. */
function isHeld(ctx: PlanContext, d: Descriptor): boolean {
  if (!ctx.held.has(d.digest)) return false;
  const size = ctx.held.get(d.digest);
  if (size === undefined || size === d.size) return true;
  ctx.warn(`${d.mediaType} ${d.digest} is listed as held by the receiver with ${size} bytes, but a manifest names it with ${d.size}; it is written`);
  ctx.held.delete(d.digest);
  return false;
}

/**
 * For a layer wanted in another compression: a proven variant of its diffID in that
 * compression which the receiver holds, so the written manifest names it without producing it.
 */
function heldVariantOf(ctx: PlanContext, l: Descriptor, diffId: string | undefined, c: SaveCompression): Descriptor | undefined {
  if (!diffId || c === 'keep' || !isLayerType(l.mediaType)) return undefined;
  const v = ctx.store.variants.forDiffId(diffId)
    .filter((x) => x.compression === c && ctx.held.has(x.digest) && (ctx.held.get(x.digest) === undefined || ctx.held.get(x.digest) === x.size))
    .sort((a, b) => (a.digest < b.digest ? -1 : 1))[0];
  return v ? { mediaType: replacementMediaType(l.mediaType, c), digest: v.digest, size: v.size } : undefined;
}
