import * as fs from 'node:fs';
import * as path from 'node:path';
import { Store } from '../../../src/store';
import { Descriptor, Label } from '../../../src/images/types';
import { layerCompression } from '../../../src/images/mediatypes';
import { ImageBuilder, Built, BuiltImage, BuiltLayer, LayerEntry, closure } from '../../../src/builder';
import { Compression } from '../../../src/compression/codecs';
import { tmpDir, rmrf } from '../../helpers/cli';
import { normalizeReference } from '../../../src/reference';

/** A temporary store plus a builder writing into a separate blob directory. */
export interface Env {
  dir: string;
  store: Store;
  b: ImageBuilder;
  cleanup(): void;
}

export function env(): Env {
  const dir = tmpDir('imgtool-compression-');
  const store = Store.open(path.join(dir, 'root'));
  const b = new ImageBuilder(path.join(dir, 'build'));
  return { dir, store, b, cleanup: () => { store.close(); rmrf(dir); } };
}

/** Layer entries with a few files of compressible text (size bytes each) and some random bytes. */
export function entries(seed: number, size = 64 * 1024): LayerEntry[] {
  return [
    { path: `d${seed}/`, type: 'dir' },
    { path: `d${seed}/text`, content: { size, seed, text: true } },
    { path: `d${seed}/bin`, content: { size: Math.floor(size / 4), seed: seed + 1000 } },
    { path: `d${seed}/link`, type: 'symlink', target: 'text' },
  ];
}

export async function layers(e: Env, seeds: number[], compression: Compression = 'gzip', size?: number): Promise<BuiltLayer[]> {
  const out: BuiltLayer[] = [];
  for (const s of seeds) out.push(await e.b.layer(entries(s, size), { compression }));
  return out;
}

/**
 * Copy a built image's closure into the store (like a load), recording a variant for
 * each layer blob, and name it. `skip`: blob digests to leave out (absent content).
 */
export async function put(e: Env, built: Built, name: string, opts: { skip?: Set<string>; record?: boolean } = {}): Promise<Descriptor> {
  for (const d of closure(e.b.blobs, built.descriptor)) {
    if (opts.skip?.has(d.digest)) continue;
    await e.store.content.ingestBuffer(fs.readFileSync(e.b.blobs.path(d.digest)), { digest: d.digest, size: d.size });
  }
  if (opts.record !== false) for (const img of images(built)) recordLayers(e, img, opts.skip);
  const target: Descriptor = { mediaType: built.descriptor.mediaType, digest: built.descriptor.digest, size: built.descriptor.size };
  e.store.images.put(normalizeReference(name), target);
  return target;
}

export function images(built: Built): BuiltImage[] {
  return built.kind === 'index' ? built.images : [built];
}

function recordLayers(e: Env, img: BuiltImage, skip?: Set<string>): void {
  img.layers.forEach((l, i) => {
    if (skip?.has(l.digest)) return;
    const mt = img.manifest.layers[i].mediaType;
    e.store.variants.recordProof({ digest: l.digest, diffId: l.diffId, compression: layerCompression(mt) ?? l.compression, size: l.size, mediaType: mt });
  });
}

export { Label };
