import { ImgtoolCommand, Flags, fmtBytes } from '../src/cli';
import { shortDigest } from '../src/digest';
import { listImages } from '../src/images/ops';

export default class Images extends ImgtoolCommand<typeof Images> {
  static override summary = 'List images in the store: name, digest, platforms present, size.';
  static override flags = {
    digests: Flags.boolean({ description: 'show full digests', default: false }),
  };

  async run(): Promise<void> {
    const rows = await listImages(this.store);
    for (const r of rows) if (r.unreadable) this.warn_(`${r.name}: unreadable: ${r.unreadable} (run imgtool fsck)`);
    if (this.flags.json) return this.outJSON(rows);
    this.outTable(rows, [
      { header: 'NAME', value: (r) => r.name },
      { header: 'DIGEST', value: (r) => (this.flags.digests ? r.digest : shortDigest(r.digest)) },
      { header: 'PLATFORMS', value: (r) => `${r.platforms.join(',') || '-'}${r.unreadable ? ' (unreadable)' : r.partial ? ' (partial)' : ''}` },
      { header: 'SIZE', value: (r) => fmtBytes(r.size), align: 'right' },
    ]);
  }
}
