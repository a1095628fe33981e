import type { Store } from '../store';
import { Descriptor, ImageConfig, Index, Manifest } from '../images/types';
import { Compression, isLayerType, layerCompression } from '../images/mediatypes';
import { walkImage } from '../images/walk';
import { contentSource } from '../images/source';
import { exactMatcher, formatPlatform, parsePlatform } from '../platform';
import { NotFoundError } from '../errors';
import { chainIds } from '../snapshots/store';

export interface InspectOptions {
  /** Only this platform (`os/arch[/variant]`) and the attestations describing it. */
  platform?: string;
}

export interface InspectVariant {
  digest: string;
  size: number;
  mediaType?: string;
  compression: Compression;
  /** Level and codec version when imgtool made the blob. */
  level?: number;
  codecVersion?: string;
  present: boolean;
  /** The blob the manifest references. */
  referenced: boolean;
  /** Known to the variants table (else only from the manifest's media type). */
  recorded: boolean;
}

export interface InspectLayer {
  index: number;
  descriptor: Descriptor;
  present: boolean;
  diffId?: string;
  chainId?: string;
  /** Every known blob of this diffID (the referenced one included). */
  variants: InspectVariant[];
  snapshot: { present: boolean; chainId?: string; parent?: string; size?: number; reproducible?: boolean };
}

export interface InspectManifest {
  descriptor: Descriptor;
  platform?: string;
  attestation: boolean;
  /** For attestations: the manifest they describe. */
  describes?: string;
  manifest: Manifest;
  configPresent: boolean;
  config?: ImageConfig;
  layers: InspectLayer[];
}

export interface InspectResult {
  name: string;
  target: Descriptor;
  /** The root index document, when the image is an index (nested ones in `indexes`). */
  index?: Index;
  indexes: Array<{ descriptor: Descriptor; index: Index }>;
  manifests: InspectManifest[];
  /** Index entries that are not in the store. */
  absent: Descriptor[];
  platforms: string[];
}

/**
 * Everything the store knows about an image: its index, manifests and configs, and per
 * layer the diffID, chainID, every known variant (present or not) and whether a
 * snapshot exists for it. Read-only.
 */
export async function inspectImage(store: Store, ref: string, opts: InspectOptions = {}): Promise<InspectResult> {
  const rec = store.images.resolve(ref);
  const platform = opts.platform ? parsePlatform(opts.platform) : undefined;
  const w = await walkImage(contentSource(store.content), rec.target, { platforms: platform ? exactMatcher([platform]) : undefined });
  const images = w.manifests.filter((m) => !m.attestation);
  if (platform && !images.length) {
    throw new NotFoundError(`image ${rec.name} has no platform ${formatPlatform(platform)} in the store`);
  }
  const snapRow = store.meta.db.prepare('SELECT chain_id, parent, size, reproducible FROM snapshots WHERE chain_id = ?');
  const manifests: InspectManifest[] = w.manifests.map((m) => {
    const diffIds = !m.attestation && Array.isArray(m.config?.rootfs?.diff_ids) ? m.config!.rootfs.diff_ids : undefined;
    const chains = diffIds && diffIds.length === m.manifest.layers.length ? chainIds(diffIds) : undefined;
    const layers: InspectLayer[] = m.manifest.layers.map((l, i) => {
      const present = store.content.info(l.digest)?.size === l.size;
      const diffId = chains ? diffIds![i] : undefined;
      const chainId = chains ? chains[i] : undefined;
      const variants: InspectVariant[] = [];
      if (diffId) {
        for (const v of store.variants.forDiffId(diffId)) {
          variants.push({
            digest: v.digest, size: v.size, mediaType: v.mediaType, compression: v.compression, level: v.level,
            codecVersion: v.codecVersion, present: store.content.has(v.digest), referenced: v.digest === l.digest, recorded: true,
          });
        }
      }
      if (isLayerType(l.mediaType) && !variants.some((v) => v.digest === l.digest)) {
        variants.unshift({ digest: l.digest, size: l.size, mediaType: l.mediaType, compression: layerCompression(l.mediaType)!, present, referenced: true, recorded: false });
      }
      const s = chainId ? (snapRow.get(chainId) as { chain_id: string; parent: string | null; size: number; reproducible: number } | undefined) : undefined;
      return {
        index: i, descriptor: l, present, diffId, chainId, variants,
        snapshot: s ? { present: true, chainId, parent: s.parent ?? undefined, size: s.size, reproducible: s.reproducible === 1 } : { present: false, chainId },
      };
    });
    return {
      descriptor: m.desc,
      platform: m.platform ? formatPlatform(m.platform) : undefined,
      attestation: m.attestation,
      describes: m.describes,
      manifest: m.manifest,
      configPresent: store.content.has(m.manifest.config.digest),
      config: m.config,
      layers,
    };
  });
  return {
    name: rec.name,
    target: rec.target,
    index: w.indexes[0]?.index,
    indexes: w.indexes.map((x) => ({ descriptor: x.desc, index: x.index })),
    manifests,
    absent: w.absent,
    platforms: images.filter((m) => m.platform).map((m) => formatPlatform(m.platform!)),
  };
}
