import type { Store } from '../store';
import { Descriptor } from '../images/types';
import { layerCompression } from '../images/mediatypes';
import { formatPlatform } from '../platform';
import { MissingContentError } from '../errors';
import type { LayerRequest, LayerResolver } from './request';
import { replacementMediaType } from './request';
import type { LayerRebuilder } from './produce';
import type * as Produce from './produce';

// The producer (codecs, zlib, the prover; it loads the snapshot code and the worker itself) on
// first use only: a plan whose layers are all present as wanted (push, save of a stored image)
// never asks the resolver.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const produce = (): typeof Produce => require('./produce') as typeof Produce;

export interface LayerResolverOptions {
  /** Level for layers compressed anew (default: the codec's default). */
  level?: number;
  /** Reuse only variants whose level and codec version match what imgtool makes now. */
  deterministic?: boolean;
  /** Snapshot rebuilder (default: the snapshots module's; null disables). */
  rebuild?: LayerRebuilder | null;
}

/**
 * The `save` layer resolver backed by `ensureLayer`: a layer that is absent, or wanted
 * in another compression, is taken from an existing variant, converted from another
 * variant, or rebuilt from its snapshot — recording the variants it makes. `keep`
 * produces an absent layer in its own compression (byte-identical when imgtool made it
 * with the same codec and level). Returns undefined only when the layer cannot be
 * produced at all (save then fails listing every such layer).
 */
export function layerResolver(store: Store, opts: LayerResolverOptions = {}): LayerResolver {
  return {
    async resolveLayer(req: LayerRequest): Promise<Descriptor | undefined> {
      const own = layerCompression(req.layer.mediaType);
      const present = store.content.info(req.layer.digest)?.size === req.layer.size;
      if (req.compression === 'keep' && present) return req.layer;
      const want = req.compression === 'keep' ? own : req.compression;
      if (!want) return undefined; // not a layer media type: nothing to convert it from
      if (!req.diffId) return present && own === want ? req.layer : undefined;
      const mediaType = replacementMediaType(req.layer.mediaType, want);
      try {
        const r = await produce().ensureLayer(store, req.diffId, {
          compression: want,
          level: req.compression === 'keep' ? undefined : opts.level,
          deterministic: opts.deterministic,
          prefer: req.layer.digest,
          preferMediaType: req.layer.mediaType,
          mediaType,
          lease: req.lease,
          progress: req.progress,
          rebuild: opts.rebuild,
          label: `layer ${req.index + 1} ${req.diffId.slice(7, 19)}`,
          what: `image ${req.image}${req.platform ? ` (${formatPlatform(req.platform)})` : ''} layer ${req.index + 1}`,
        });
        if (r.digest === req.layer.digest && mediaType === req.layer.mediaType) return req.layer;
        return { mediaType, digest: r.digest, size: r.size };
      } catch (e) {
        if (e instanceof MissingContentError) return undefined;
        throw e;
      }
    },
  };
}
