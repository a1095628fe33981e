import { Platform } from '../platform';

/** OCI content descriptor. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: Platform;
  artifactType?: string;
}

export interface Index {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
  subject?: Descriptor;
  artifactType?: string;
}

export interface Manifest {
  schemaVersion: 2;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
  subject?: Descriptor;
  artifactType?: string;
}

export interface ImageConfig {
  architecture: string;
  os: string;
  variant?: string;
  'os.version'?: string;
  created?: string;
  config?: Record<string, unknown>;
  rootfs: { type: 'layers'; diff_ids: string[] };
  history?: Array<Record<string, unknown>>;
  [k: string]: unknown;
}

/** One entry of a Docker archive's `manifest.json`. */
export interface DockerManifestEntry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
  Parent?: string;
  LayerSources?: Record<string, Descriptor>;
}

/** The `oci-layout` file of an OCI image layout. */
export interface OciLayout {
  imageLayoutVersion: string;
}

/** Well-known annotation and label keys. */
export const Annotation = {
  REF_NAME: 'org.opencontainers.image.ref.name',
  CONTAINERD_NAME: 'io.containerd.image.name',
  DOCKER_REFERENCE_TYPE: 'vnd.docker.reference.type',
  DOCKER_REFERENCE_DIGEST: 'vnd.docker.reference.digest',
} as const;

export const Label = {
  UNCOMPRESSED: 'containerd.io/uncompressed',
} as const;

/** What every command that brings images in (load, pull, ls-archive) says about one image. */
export interface ImageOutline {
  /** Names (normalised). */
  names: string[];
  digest: string;
  mediaType: string;
  size: number;
  platforms: string[];
  /** Some manifests the index lists are not there (other platforms). */
  partial: boolean;
  absent: Array<{ digest: string; platform?: string }>;
}
