/**
 * Fixture images for the KIND interop tests: built with src/builder into a blob directory,
 * then ingested blob by blob into a store and named.
 */
import * as path from 'node:path';
import { Store } from '../../src/store';
import { BlobDir, buildLayer, buildImage, buildIndex, closure, BuiltLayer } from '../../src/builder';
import { Descriptor } from '../../src/images/types';
import { Compression } from '../../src/compression/codecs';

export class Fixtures {
  readonly blobs: BlobDir;
  constructor(dir: string, readonly store: Store) {
    this.blobs = new BlobDir(path.join(dir, 'fixture-blobs'));
  }

  layer(seed: string, size: number, compression: Compression = 'gzip'): Promise<BuiltLayer> {
    return buildLayer(this.blobs, [
      { path: 'data/', type: 'dir' },
      { path: `data/${seed}.bin`, content: { size, seed } },
    ], { compression });
  }

  /** Ingest every blob under `target` into the store and point `names` at it. */
  async put(target: Descriptor, names: string[]): Promise<Descriptor> {
    for (const d of closure(this.blobs, target)) {
      if (this.store.content.has(d.digest)) continue;
      await this.store.content.ingest(this.blobs.open(d.digest), { digest: d.digest, size: d.size });
    }
    const t: Descriptor = { mediaType: target.mediaType, digest: target.digest, size: target.size };
    for (const n of names) this.store.images.put(n, t);
    return t;
  }

  /**
   * A two-platform (linux/amd64, linux/arm64) OCI index: per platform a large base layer
   * (`baseSize` incompressible bytes) and a small top layer whose content is `topSeed`.
   */
  async twoPlatformApp(topSeed: string, baseSize = 1 << 20, compression: Compression = 'gzip'): Promise<Descriptor> {
    const images = [];
    for (const arch of ['amd64', 'arm64']) {
      const base = await this.layer(`base-${arch}`, baseSize, compression);
      const top = await this.layer(`top-${arch}-${topSeed}`, 2048, compression);
      images.push(buildImage(this.blobs, { layers: [base, top], platform: `linux/${arch}`, format: 'oci' }));
    }
    return buildIndex(this.blobs, { images, format: 'oci' }).descriptor;
  }

  /** A single-platform image (Docker media types) with the given layers. */
  async simple(seeds: string[], size = 4096, platform = 'linux/amd64'): Promise<Descriptor> {
    const layers = [];
    for (const s of seeds) layers.push(await this.layer(s, size));
    return buildImage(this.blobs, { layers, platform }).descriptor;
  }

  /** Every blob digest of the image under `target`. */
  closure(target: Descriptor): string[] {
    return closure(this.blobs, target).map((d) => d.digest);
  }
}
