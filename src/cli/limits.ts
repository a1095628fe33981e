/** The hostile-input limit flags (src/limits), shared by load, pull, verify, unpack and export-rootfs. */
import { Flags } from './flags';
import { DEFAULT_LIMITS, Limits, fmtLimit, parseSize } from '../limits';

export const limitFlags = {
  'max-layer-size': Flags.string({ description: `largest size a layer may decompress to (e.g. 512M, 64G) [default: ${fmtLimit(DEFAULT_LIMITS.layerSize)}]`, helpGroup: 'LIMITS' }),
  'max-archive-size': Flags.string({ description: `largest size a gzip/zstd-wrapped archive may decompress to [default: ${fmtLimit(DEFAULT_LIMITS.archiveSize)}]`, helpGroup: 'LIMITS' }),
  'max-ratio': Flags.integer({ min: 1, description: `largest decompressed:compressed ratio past the first 256 MiB [default: ${DEFAULT_LIMITS.ratio}]`, helpGroup: 'LIMITS' }),
  'max-entries': Flags.integer({ min: 1, description: `most entries a layer may hold [default: ${DEFAULT_LIMITS.entries}]`, helpGroup: 'LIMITS' }),
};

export function limitsFromFlags(f: { 'max-layer-size'?: string; 'max-archive-size'?: string; 'max-ratio'?: number; 'max-entries'?: number }): Partial<Limits> {
  return {
    layerSize: f['max-layer-size'] !== undefined ? parseSize(f['max-layer-size'], '--max-layer-size') : undefined,
    archiveSize: f['max-archive-size'] !== undefined ? parseSize(f['max-archive-size'], '--max-archive-size') : undefined,
    ratio: f['max-ratio'],
    entries: f['max-entries'],
  };
}
