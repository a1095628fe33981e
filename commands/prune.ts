import { ImgtoolCommand, Flags, fmtBytes } from '../src/cli';
import { prune } from '../src/gc/prune';

export default class Prune extends ImgtoolCommand<typeof Prune> {
  static override summary = 'Remove what no image and no live lease retains.';
  static override description = `Remove every blob and snapshot that no image and no live lease retains, variant rows of removed blobs, leases of exited processes and expired leases, and abandoned temp files. Other variants of an image's layers are a cache and go unless a lease holds them.`;
  static override flags = {
    all: Flags.boolean({ description: 'also remove snapshots that only images hold (except the only remaining source of a layer)', default: false }),
    'dry-run': Flags.boolean({ char: 'n', description: 'list what would be removed, change nothing', default: false }),
  };

  async run(): Promise<void> {
    const r = prune(this.store, { all: this.flags.all, dryRun: this.flags['dry-run'] });
    if (this.flags.json) return this.outJSON(r);
    const verb = r.dryRun ? 'would remove' : 'removed';
    for (const l of r.leases) this.out(`${verb} lease ${l}`);
    for (const s of r.snapshots) this.out(`${verb} snapshot ${s.chainId} (${fmtBytes(s.size)})`);
    for (const b of r.blobs) this.out(`${verb} blob ${b.digest} (${fmtBytes(b.size)})`);
    for (const v of r.variants) this.out(`${verb} variant record ${v}`);
    for (const t of r.tempFiles) this.out(`${verb} temp ${t.path} (${fmtBytes(t.size)})`);
    this.out(
      `${r.dryRun ? 'would free' : 'freed'} ${fmtBytes(r.bytesFreed)}: ${r.blobs.length} blob(s), ${r.snapshots.length} snapshot(s), ` +
        `${r.variants.length} variant record(s), ${r.leases.length} lease(s), ${r.tempFiles.length} temp file(s)`,
    );
  }
}
