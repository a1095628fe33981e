/**
 * `imgtool ls-archive`: images, names, platforms and layers of an archive, without a store
 * and without importing (same single pass and resolution as verify).
 */
import { Compression } from '../compression/codecs';
import { Progress } from '../progress';
import { formatPlatform } from '../platform';
import { ArchiveInputSource } from './input';
import { namesForImage } from './naming';
import { examineArchive } from './verify';
import { ArchiveFormat } from './reader-layout';
import type { ImageOutline } from '../images/types';

export interface ListedLayer {
  digest: string;
  size: number;
  mediaType: string;
  /** Compression of the bytes (sniffed when the blob is in the archive). */
  compression?: Compression;
  diffId?: string;
  present: boolean;
}

export interface ListedManifest {
  digest: string;
  mediaType: string;
  platform?: string;
  attestation: boolean;
  config: { digest: string; mediaType: string; size: number; present: boolean };
  layers: ListedLayer[];
}

export interface ListedImage extends ImageOutline {
  manifests: ListedManifest[];
}

export interface ArchiveListing {
  source: string;
  format?: ArchiveFormat;
  compression?: Compression;
  images: ListedImage[];
  /** Problems found on the way (verify lists them in detail). */
  problems: string[];
  warnings: string[];
}

export async function listArchive(input: ArchiveInputSource, opts: { progress?: Progress } = {}): Promise<ArchiveListing> {
  const ex = await examineArchive(input, { progress: opts.progress });
  const scan = ex.scan;
  const images: ListedImage[] = [];
  for (const i of ex.check?.images ?? []) {
    if (i.notImage) continue;
    const manifests: ListedManifest[] = (i.walk?.manifests ?? []).map((m) => {
      const diffIds = (m.config?.rootfs as { diff_ids?: unknown } | undefined)?.diff_ids;
      return {
        digest: m.desc.digest,
        mediaType: m.desc.mediaType,
        platform: m.platform ? formatPlatform(m.platform) : undefined,
        attestation: m.attestation,
        config: { digest: m.manifest.config.digest, mediaType: m.manifest.config.mediaType, size: m.manifest.config.size, present: !!scan?.blobs.has(m.manifest.config.digest) },
        layers: m.manifest.layers.map((l, j) => ({
          digest: l.digest,
          size: l.size,
          mediaType: l.mediaType,
          compression: scan?.blobs.get(l.digest)?.compression,
          diffId: !m.attestation && Array.isArray(diffIds) && typeof diffIds[j] === 'string' ? (diffIds[j] as string) : undefined,
          present: !!scan?.blobs.has(l.digest),
        })),
      };
    });
    images.push({
      names: namesForImage({ digest: i.target.digest, annotations: i.entry.desc.annotations, repoTags: i.repoTags }).names,
      digest: i.target.digest,
      mediaType: i.target.mediaType,
      size: i.target.size,
      platforms: i.platforms,
      partial: i.partial,
      absent: i.absent.map((a) => ({ digest: a.digest, platform: a.platform })),
      manifests,
    });
  }
  return { source: ex.source, format: ex.resolved?.format, compression: scan?.compression, images, problems: ex.problems, warnings: ex.warnings };
}
