/**
 * `save`, writing: plan (export-plan), then hold every stored blob for the lease and check it
 * is still there under the write lock GC takes, then write the metadata files and the blobs
 * (documents from memory, stored blobs re-verified while copying) to the output (temp +
 * fsync + rename for files; removed on error).
 */
import type { Store } from '../store';
import { isLayerType } from '../images/mediatypes';
import { shortDigest } from '../digest';
import { InvalidArgumentError, MissingContentError } from '../errors';
import { silentProgress } from '../progress';
import { archiveOutput, FileOutput, CompressedOutput, compressedArchiveWarning } from './output';
import { TarWriter, BLOB_MODE, FILE_MODE } from './writer';
import type { SaveOptions, SaveResult } from './export';
import { planSave } from './export-plan';
import { BLOB_DIR, blobPath } from './export-metadata';

/**
 * Save images to one tar. Plans everything first (nothing is created when the plan
 * fails), then writes deterministic entries, re-verifying each blob while copying.
 */
export async function saveImages(store: Store, refs: string[], opts: SaveOptions): Promise<SaveResult> {
  if (opts.output === undefined || opts.output === '') throw new InvalidArgumentError('no output given (a file path, - for stdout, or a stream)');
  if (typeof opts.output === 'string' && opts.output !== '-') FileOutput.checkTarget(opts.output);
  const progress = opts.progress ?? silentProgress;
  const plan = await planSave(store, refs, opts);

  // Hold every stored blob for the lease and check it is still there, under the write
  // lock GC takes, so nothing planned can vanish before it is copied.
  const fromStore = plan.blobs.filter((b) => !b.data && !b.omitted);
  store.meta.write(() => {
    const gone = fromStore.filter((b) => !store.content.has(b.digest));
    if (gone.length) {
      throw new MissingContentError(`cannot save: ${gone.length} blob(s) disappeared from the store while planning (first: ${gone[0].digest})`, gone.map((b) => `${b.mediaType} ${b.digest}`));
    }
    if (opts.lease) for (const b of fromStore) opts.lease.attach('content', b.digest);
  });

  const out = archiveOutput(opts.output);
  if (out instanceof CompressedOutput) progress.warn(compressedArchiveWarning(out.compression));
  const verify = opts.verify !== false;
  const toWrite = plan.blobs.filter((b) => !b.omitted);
  const total = toWrite.reduce((s, b) => s + b.size, 0);
  const overall = progress.task(`saving ${plan.images.length} image${plan.images.length === 1 ? '' : 's'}`, total);
  let done = 0;
  await out.open();
  const tw = new TarWriter(out);
  try {
    for (const f of plan.files) await tw.addBuffer(f.name, f.data, FILE_MODE);
    if (toWrite.length) {
      await tw.addDir('blobs/');
      await tw.addDir(BLOB_DIR);
    }
    for (const b of toWrite) {
      const name = blobPath(b.digest);
      if (b.data) {
        await tw.addBuffer(name, b.data, BLOB_MODE);
        done += b.size;
        overall.update(done);
        continue;
      }
      const big = b.size >= 1024 * 1024;
      const t = big ? progress.task(`${isLayerType(b.mediaType) ? 'layer' : 'blob'} ${shortDigest(b.digest).slice(7)}`, b.size) : undefined;
      const base = done;
      const what = `${b.mediaType} ${b.digest}`;
      const onBytes = (n: number) => {
        t?.update(n);
        overall.update(base + n);
      };
      // Files: reused buffers + positional writes; streams: the store's (verifying) read stream.
      await tw.addFile(name, b.size, store.content.blobPath(b.digest), BLOB_MODE, { digest: verify ? b.digest : undefined, what, onBytes },
        () => store.content.openRead(b.digest, { verify, what }));
      t?.finish();
      done += b.size;
    }
    await tw.finish();
    await out.commit();
  } catch (e) {
    tw.destroy(e);
    await out.abort(e);
    throw e;
  } finally {
    overall.finish();
  }
  return {
    output: typeof opts.output === 'string' ? opts.output : out.label,
    format: plan.format,
    compression: plan.compression,
    images: plan.images,
    changes: plan.changes,
    blobs: toWrite.length,
    omitted: plan.blobs.filter((b) => b.omitted).map((b) => b.digest),
    expects: plan.expects,
    omittedBytes: plan.blobs.filter((b) => b.omitted).reduce((n, b) => n + b.size, 0),
    bytes: tw.bytes,
    warnings: plan.warnings,
  };
}
