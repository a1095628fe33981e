import { ImgtoolCommand, fmtBytes } from '../src/cli';
import { shortDigest } from '../src/digest';
import { listSnapshots } from '../src/snapshots/ops';

export default class Snapshots extends ImgtoolCommand<typeof Snapshots> {
  static override summary = 'List snapshots: chainID, parent, size, images using it.';

  async run(): Promise<void> {
    const rows = await listSnapshots(this.store);
    if (this.flags.json) return this.outJSON(rows);
    this.outTable(rows, [
      { header: 'CHAINID', value: (s) => shortDigest(s.chainId) },
      { header: 'PARENT', value: (s) => (s.parent ? shortDigest(s.parent) : '-') },
      { header: 'SIZE', value: (s) => fmtBytes(s.size), align: 'right' },
      { header: 'REBUILD', value: (s) => (s.reproducible ? 'yes' : 'no') },
      { header: 'IMAGES', value: (s) => s.images.join(',') || '-' },
    ]);
  }
}
