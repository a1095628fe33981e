import { ImgtoolCommand, Flags, listImages, fmtBytes } from '../src/index';

export default class Images extends ImgtoolCommand<typeof Images> {
  static override description = 'List images in the store: name, digest, platforms present, size.';
  static override flags = {
    digests: Flags.boolean({ description: 'show full digests', default: false }),
  };

  async run(): Promise<void> {
    const rows = await listImages(this.store);
    for (const r of rows) if (r.unreadable) this.warn_(`${r.name}: unreadable: ${r.unreadable} (run imgtool fsck)`);
    if (this.flags.json) return this.outJSON(rows);
    const w = Math.max(4, ...rows.map((r) => r.name.length));
    this.out(`${'NAME'.padEnd(w)}  DIGEST${' '.repeat(this.flags.digests ? 65 : 13)}PLATFORMS  SIZE`);
    for (const r of rows) {
      const d = this.flags.digests ? r.digest : r.digest.slice(0, 19);
      this.out(`${r.name.padEnd(w)}  ${d.padEnd(this.flags.digests ? 71 : 19)}  ${(r.platforms.join(',') || '-')}${r.unreadable ? ' (unreadable)' : r.partial ? ' (partial)' : ''}  ${fmtBytes(r.size)}`);
    }
  }
}
