import { Descriptor } from '../images/types';
import { Compression, MediaType, isDockerType, isNonDistributable, layerCompression } from '../images/mediatypes';
import { Platform } from '../platform';
import { ResourceHolder } from '../content';
import { Progress } from '../progress';

/** Layer compression wanted in an archive: `keep` = each layer's own. */
export type SaveCompression = 'keep' | Compression;

/** What `save` asks a `LayerResolver` for: one layer of one manifest of one image. */
export interface LayerRequest {
  /** Full normalised name of the image being saved. */
  image: string;
  /** Digest of the manifest as stored (before any rewriting). */
  manifest: string;
  /** The manifest's platform, when known (index entry, else config). */
  platform?: Platform;
  /** Position of the layer in the manifest (0 = base layer). */
  index: number;
  /** The layer descriptor as the stored manifest lists it. */
  layer: Descriptor;
  /** `rootfs.diff_ids[index]` from the image config; undefined if the config has none. */
  diffId?: string;
  /** Wanted compression; `keep` = the layer's original blob/compression. */
  compression: SaveCompression;
  /** Attach whatever the resolver produces to this holder (the save's lease). */
  lease?: ResourceHolder;
  progress?: Progress;
}

/**
 * Produces a layer blob for `save` before the first byte of the archive is written.
 * Called (once per layer digest and compression) for every layer that is absent from the
 * content store, and, when a compression other than `keep` is wanted, for every layer not
 * already present in that compression. Present non-layer blobs and layers in `omitBlobs`
 * under `keep` are never asked for.
 *
 * Returns a descriptor of a blob that is PRESENT in the content store (the same
 * descriptor, or a new one with another digest/size/media type, e.g. converted from
 * another variant or rebuilt from a snapshot), or `undefined` when it cannot be produced
 * (the save then fails listing every such layer). A returned blob whose compression is
 * not the wanted one, or which is not in the store, is an error.
 */
export interface LayerResolver {
  resolveLayer(req: LayerRequest): Promise<Descriptor | undefined>;
}

/** The layer's compression from its media type (undefined for non-layer types). */
function compressionOf(d: Descriptor): Compression | undefined {
  return layerCompression(d.mediaType);
}

/**
 * Media type for a blob of compression `c` standing in for `orig`, in the same family
 * (Docker or OCI, distributable or not). zstd has no Docker type: it is always OCI.
 */
export function replacementMediaType(orig: string, c: Compression): string {
  const nd = isNonDistributable(orig);
  if (c === 'zstd') return nd ? MediaType.OCI_LAYER_ND_ZSTD : MediaType.OCI_LAYER_ZSTD;
  if (isDockerType(orig) && orig !== MediaType.DOCKER_LAYER_ZSTD) {
    if (nd) return c === 'gzip' ? MediaType.DOCKER_FOREIGN_LAYER : MediaType.OCI_LAYER_ND;
    return c === 'gzip' ? MediaType.DOCKER_LAYER_GZIP : MediaType.DOCKER_LAYER;
  }
  if (nd) return c === 'gzip' ? MediaType.OCI_LAYER_ND_GZIP : MediaType.OCI_LAYER_ND;
  return c === 'gzip' ? MediaType.OCI_LAYER_GZIP : MediaType.OCI_LAYER;
}
