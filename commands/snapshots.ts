import { ImgtoolCommand, listSnapshots, fmtBytes, shortDigest } from '../src/index';

export default class Snapshots extends ImgtoolCommand<typeof Snapshots> {
  static override description = 'List snapshots: chainID, parent, size, images using it.';

  async run(): Promise<void> {
    const rows = await listSnapshots(this.store);
    if (this.flags.json) return this.outJSON(rows);
    this.out(`${'CHAINID'.padEnd(19)}  ${'PARENT'.padEnd(19)}  ${'SIZE'.padStart(9)}  REBUILD  IMAGES`);
    for (const s of rows) {
      this.out(`${shortDigest(s.chainId).padEnd(19)}  ${(s.parent ? shortDigest(s.parent) : '-').padEnd(19)}  ${fmtBytes(s.size).padStart(9)}  ${(s.reproducible ? 'yes' : 'no').padEnd(7)}  ${s.images.join(',') || '-'}`);
    }
  }
}
