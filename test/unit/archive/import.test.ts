import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { Store } from '../../../src/store';
import { importArchive } from '../../../src/archive/import';
import { MediaType } from '../../../src/images/mediatypes';
import { sha256 } from '../../../src/digest';
import { tmpDir, rmrf } from '../../helpers/cli';
import { makeImage, makeLayer, ociImageArchive, dockerArchive, compress } from './import-fixtures';

let dir: string;
let store: Store;
beforeEach(() => {
  dir = tmpDir('imgtool-import-');
  store = Store.open(path.join(dir, 'root'));
});
afterEach(() => {
  store.close();
  rmrf(dir);
});

function write(name: string, buf: Buffer): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, buf);
  return p;
}

describe('importArchive: OCI', () => {
  it('loads a named single-manifest OCI archive and records variants', async () => {
    const img = makeImage();
    const file = write('a.tar', ociImageArchive(img, 'docker.io/library/hello:1'));
    const r = await importArchive(store, file);
    expect(r.format).toBe('oci');
    expect(r.images).toEqual([expect.objectContaining({ names: ['docker.io/library/hello:1'], digest: img.manifest.digest, platforms: ['linux/amd64'], partial: false })]);
    expect(store.images.get('docker.io/library/hello:1')!.target.digest).toBe(img.manifest.digest);
    const v = store.variants.get(img.layers[0].digest)!;
    expect(v).toEqual(expect.objectContaining({ diffId: img.layers[0].diffId, compression: 'gzip', mediaType: MediaType.OCI_LAYER_GZIP }));
    expect(store.content.labels(img.layers[0].digest)['containerd.io/uncompressed']).toBe(img.layers[0].diffId);
  });
});
