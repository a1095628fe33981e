/** Media types of the OCI image-spec and Docker schema2, and helpers over them. */
export const MediaType = {
  OCI_INDEX: 'application/vnd.oci.image.index.v1+json',
  OCI_MANIFEST: 'application/vnd.oci.image.manifest.v1+json',
  OCI_CONFIG: 'application/vnd.oci.image.config.v1+json',
  OCI_LAYER: 'application/vnd.oci.image.layer.v1.tar',
  OCI_LAYER_GZIP: 'application/vnd.oci.image.layer.v1.tar+gzip',
  OCI_LAYER_ZSTD: 'application/vnd.oci.image.layer.v1.tar+zstd',
  OCI_LAYER_ND: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  OCI_LAYER_ND_GZIP: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  OCI_LAYER_ND_ZSTD: 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  OCI_EMPTY: 'application/vnd.oci.empty.v1+json',
  DOCKER_MANIFEST_LIST: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DOCKER_MANIFEST: 'application/vnd.docker.distribution.manifest.v2+json',
  DOCKER_CONFIG: 'application/vnd.docker.container.image.v1+json',
  DOCKER_LAYER: 'application/vnd.docker.image.rootfs.diff.tar',
  DOCKER_LAYER_GZIP: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  DOCKER_LAYER_ZSTD: 'application/vnd.docker.image.rootfs.diff.tar.zstd',
  DOCKER_FOREIGN_LAYER: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  IN_TOTO: 'application/vnd.in-toto+json',
} as const;

export type Compression = 'none' | 'gzip' | 'zstd';

export function isIndexType(mt: string | undefined): boolean {
  return mt === MediaType.OCI_INDEX || mt === MediaType.DOCKER_MANIFEST_LIST;
}

export function isManifestType(mt: string | undefined): boolean {
  return mt === MediaType.OCI_MANIFEST || mt === MediaType.DOCKER_MANIFEST;
}

export function isConfigType(mt: string | undefined): boolean {
  return mt === MediaType.OCI_CONFIG || mt === MediaType.DOCKER_CONFIG;
}

const LAYER_TYPES: Record<string, Compression> = {
  [MediaType.OCI_LAYER]: 'none',
  [MediaType.OCI_LAYER_GZIP]: 'gzip',
  [MediaType.OCI_LAYER_ZSTD]: 'zstd',
  [MediaType.OCI_LAYER_ND]: 'none',
  [MediaType.OCI_LAYER_ND_GZIP]: 'gzip',
  [MediaType.OCI_LAYER_ND_ZSTD]: 'zstd',
  [MediaType.DOCKER_LAYER]: 'none',
  [MediaType.DOCKER_LAYER_GZIP]: 'gzip',
  [MediaType.DOCKER_LAYER_ZSTD]: 'zstd',
  [MediaType.DOCKER_FOREIGN_LAYER]: 'gzip',
};

/** Own keys only: a hostile media type such as "constructor" or "__proto__" is not a layer type. */
export function isLayerType(mt: string | undefined): boolean {
  return typeof mt === 'string' && Object.hasOwn(LAYER_TYPES, mt);
}

/** Compression a layer media type declares, or undefined for non-layer types. */
export function layerCompression(mt: string): Compression | undefined {
  return isLayerType(mt) ? LAYER_TYPES[mt] : undefined;
}

export function isDockerType(mt: string | undefined): boolean {
  return typeof mt === 'string' && mt.startsWith('application/vnd.docker.');
}

export function isNonDistributable(mt: string): boolean {
  return mt === MediaType.DOCKER_FOREIGN_LAYER || mt.includes('.nondistributable.');
}

/**
 * Layer media type for a compression. Docker schema2 has no zstd type, so zstd is
 * always OCI; callers producing zstd must also switch the manifest to OCI.
 */
export function layerMediaType(c: Compression, oci: boolean): string {
  if (c === 'zstd') return MediaType.OCI_LAYER_ZSTD;
  if (oci) return c === 'gzip' ? MediaType.OCI_LAYER_GZIP : MediaType.OCI_LAYER;
  return c === 'gzip' ? MediaType.DOCKER_LAYER_GZIP : MediaType.DOCKER_LAYER;
}

/** Every media type imgtool understands; others are kept and warned about. */
export function isKnownMediaType(mt: string): boolean {
  return (
    isIndexType(mt) || isManifestType(mt) || isConfigType(mt) || isLayerType(mt) ||
    mt === MediaType.OCI_EMPTY || mt === MediaType.IN_TOTO
  );
}
