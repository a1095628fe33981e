import type { Store } from '../store';
import type { Descriptor } from '../images/types';
import type { LayerResolver, LayerRequest } from '../archive/export-resolver';
import { layerCompression } from '../images/mediatypes';
import { replacementMediaType } from '../archive/export-resolver';
import { rebuildLayerBlob } from './ops';

/**
 * A `save` layer resolver that first asks `base` (e.g. `defaultLayerResolver`: the
 * blob or a stored variant) and otherwise rebuilds the layer from a reproducible
 * snapshot of its diffID: exact tar, sha256 checked against the diffID while
 * streaming, compressed in the layer's original compression (or the one requested),
 * stored and recorded as a variant. Returns undefined when no snapshot can rebuild it.
 */
export function snapshotLayerResolver(store: Store, base?: LayerResolver): LayerResolver {
  return {
    async resolveLayer(req: LayerRequest): Promise<Descriptor | undefined> {
      const got = base ? await base.resolveLayer(req) : undefined;
      if (got) return got;
      if (!req.diffId) return undefined;
      if (!store.snapshots.forDiffId(req.diffId).some((s) => s.reproducible)) return undefined;
      const c = req.compression === 'keep' ? layerCompression(req.layer.mediaType) : req.compression;
      if (!c) return undefined;
      const mediaType = req.compression === 'keep' ? req.layer.mediaType : replacementMediaType(req.layer.mediaType, c);
      const b = await rebuildLayerBlob(store, req.diffId, { compression: c, mediaType, lease: req.lease, progress: req.progress });
      return { mediaType, digest: b.digest, size: b.size };
    },
  };
}
