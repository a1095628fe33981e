// imgtool as a library: build an image archive, load it into a store, convert it to zstd,
// save and verify the result, then clean up. Run: node dist/examples/library.js DIR
import * as path from 'node:path';
import { Store, loadArchive, convertImage, saveImages, verifyArchive, listImages, removeImages, prune, fsck, isImgtoolError } from 'imgtool';
import type { Progress } from 'imgtool';
import { ImageBuilder } from 'imgtool/builder';

async function main(dir: string): Promise<void> {
  // A one-layer OCI archive, made by the deterministic builder (same bytes on every run).
  const b = new ImageBuilder(path.join(dir, 'build'));
  const layer = await b.layer([
    { path: 'etc/', type: 'dir' },
    { path: 'etc/motd', content: 'hello from imgtool\n' },
    { path: 'data.bin', content: { size: 1 << 20, seed: 'example' } },
  ]);
  const image = b.image({ layers: [layer], format: 'oci' });
  const archive = path.join(dir, 'hello.tar');
  await b.ociArchive(archive, { images: [{ target: image, names: ['example.com/hello:1'] }] });

  // Progress is optional; this one only prints warnings.
  const progress: Progress = { task: () => ({ update() {}, finish() {} }), warn: (m) => console.error(`warning: ${m}`) };

  const store = Store.open(path.join(dir, 'store')); // created if absent; one per process
  try {
    // load: stream the archive in (digests verified), then unpack the host platform.
    const loaded = await loadArchive(store, archive, { progress });
    for (const img of loaded.images) console.log(`loaded ${img.names.join(', ')} ${img.digest}`);

    // convert: a new image whose layers are zstd; the config (image ID) stays the same.
    const converted = await convertImage(store, 'example.com/hello:1', 'example.com/hello:zstd', { compression: 'zstd', progress });
    console.log(`converted ${converted.name}: ${converted.layers.map((l) => l.source).join(', ')}`);

    // save + verify: an OCI archive, checked offline down to every layer's diffID.
    const out = path.join(dir, 'hello-zstd.tar');
    const saved = await saveImages(store, ['example.com/hello:zstd'], { output: out, format: 'oci', progress });
    const report = await verifyArchive(out, { strict: true, diffIds: true });
    console.log(`saved ${saved.images.length} image(s), ${saved.blobs} blob(s): ${report.ok ? 'verified' : report.problems.join('; ')}`);

    for (const i of await listImages(store)) console.log(`image ${i.name} ${i.platforms.join(',')} ${i.size} bytes`);

    // Errors are ImgtoolError subclasses with a stable code and one clear line.
    try {
      await saveImages(store, ['example.com/absent:1'], { output: path.join(dir, 'absent.tar') });
    } catch (e) {
      if (!isImgtoolError(e)) throw e;
      console.log(`error ${e.code}: ${e.message}`);
    }

    // rmi + prune: what no image (and no lease) holds any more goes.
    removeImages(store, ['example.com/hello:zstd']);
    const pruned = prune(store);
    console.log(`pruned ${pruned.blobs.length} blob(s)`);
    const check = await fsck(store);
    console.log(`fsck: ${check.ok ? 'ok' : `${check.errors} error(s)`}`);
  } finally {
    store.close();
  }
}

main(process.argv[2] ?? '.').catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
