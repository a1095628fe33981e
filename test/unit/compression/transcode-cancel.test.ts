import * as fs from 'node:fs';
import * as crypto from 'node:crypto';
import * as zlib from 'node:zlib';
import { Store } from '../../../src/store';
import { transcodeInWorker } from '../../../src/compression/transcode';
import { cancel } from '../../../src/cancel';
import { CancelledError } from '../../../src/errors';
import { tmpDir, rmrf } from '../../helpers/cli';

// Its own file: cancellation is process-wide (one per process, as in the CLI).
describe('transcode cancellation', () => {
  it('SIGINT (cancel) stops both worker threads and removes the temp file', async () => {
    const dir = tmpDir('imgtool-transcode-cancel-');
    const store = Store.open(`${dir}/root`);
    try {
      // 32 MiB of hex text (~16 MiB of gzip: progress is reported every 4 MiB read), zstd -19:
      // long enough to still be running when cancelled at the first progress report.
      const gz = zlib.gzipSync(Buffer.from(crypto.randomBytes(16 << 20).toString('hex')), { level: 1 });
      const info = await store.content.ingestBuffer(gz);
      const p = transcodeInWorker(store, info.digest, 'gzip', 'zstd', 19, () => cancel('interrupted (test)'));
      const err = await p.catch((e) => e);
      expect(err).toBeInstanceOf(CancelledError);
      expect(err.message).toContain(info.digest);
      expect(fs.readdirSync(store.content.ingestDir)).toEqual([]);
    } finally {
      store.close();
      rmrf(dir);
    }
  }, 60_000);
});
