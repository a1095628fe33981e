/**
 * layers: the one answer to the question every exporter asks (save, convert, kind preload,
 * kind load, and push): *give me layer L (a diffID) of image I in compression C, under this
 * lease, or tell me exactly why not.*
 *
 * The noun is a layer request (`LayerRequest`: image, manifest, platform, index, the
 * manifest's descriptor, the config's diffID, the wanted compression, lease, progress); the
 * answer is a descriptor of a blob PRESENT in the content store, or a MissingContentError.
 *
 * Strategies, in this order (`produce.ts`, `ensureLayer`; `resolver.ts` adapts requests):
 *  1. the exact blob the manifest names, present and digest-verified — always the answer for
 *     `keep` when present; it needs no diffID proof, because the manifest promises exactly
 *     that digest;
 *  2. a PROVEN variant of the diffID in the wanted compression (a variant row is written only
 *     after hashing the blob's decompressed bytes; see `compression/variants.ts`), or an
 *     unproven claim after a checking pass (`prove.ts`) proves it;
 *  3. a conversion from any present blob of the layer (proven, the manifest's own, or a
 *     claim): one streamed pass decodes, hashes the tar (the diffID check — which also proves
 *     the source), encodes and stores;
 *  4. a rebuild from ANY reproducible snapshot with that diffID, whatever chain it belongs to
 *     (tar-split), hashed the same way;
 *  5. else MissingContentError naming image, platform, layer (1-based), diffID and every
 *     digest tried.
 *
 * Determinism: `keep` of a present blob is byte-identical; a layer produced anew uses the
 * level of the manifest's own blob when imgtool made it with the same codec version (so a
 * rebuild reproduces the same digest), else the codec's default level. When the bytes differ
 * from the manifest's, the exporter rewrites the manifest and reports old -> new.
 * Leases: every blob read or produced is attached to the request's lease, under the write
 * lock, before it is read. No exporter has a resolver of its own; options that weaken the
 * strategies (`rebuild: null`) exist for tests only.
 */
export { ensureLayer } from './produce';
export type { EnsureLayerOptions, EnsuredLayer, EnsureSource, LayerRebuilder } from './produce';
export { layerResolver } from './resolver';
export type { LayerResolverOptions } from './resolver';
export { replacementMediaType } from './request';
export type { LayerRequest, LayerResolver, SaveCompression } from './request';
export { hashDecompressed, proveVariant } from './prove';
export type { DecodedDigest, ProveOptions } from './prove';
