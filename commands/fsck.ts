import { ImgtoolCommand, Flags, fmtBytes } from '../src/cli';
import { ImgtoolError } from '../src/errors';
import { fsck } from '../src/gc/fsck';

export default class Fsck extends ImgtoolCommand<typeof Fsck> {
  static override summary = 'Check the store for damage: blobs, database rows, image closures and snapshot chains.';
  static override description = `Check the store: every blob's digest and size, every database row against the files (and files without rows), every image's closure, every snapshot chain. Exits non-zero when damage is found. Orphans (garbage) are reported but are not damage.`;
  static override flags = {
    repair: Flags.boolean({ description: 'remove orphans and rows of lost content; report what is unrecoverable', default: false }),
  };

  async run(): Promise<void> {
    const task = this.progress.task('checking blobs');
    const r = await fsck(this.store, { repair: this.flags.repair, onProgress: (done, total) => task.update(done, total) });
    task.finish();
    if (this.flags.json) this.outJSON(r);
    else {
      for (const p of r.problems) {
        const tail = p.repaired ? ` [${p.repaired}${p.unrecoverable ? '; unrecoverable' : ''}]` : p.unrecoverable ? ' [unrecoverable]' : '';
        this.out(`${p.severity}: ${p.message}${tail}`);
      }
      this.out(
        `checked ${r.blobs} blob(s) (${fmtBytes(r.bytes)}), ${r.snapshots} snapshot(s), ${r.images} image(s): ` +
          `${r.errors} error(s), ${r.orphans} orphan(s)`,
      );
    }
    if (!r.ok) {
      const first = r.problems.find((p) => p.severity === 'error')!;
      throw new ImgtoolError('PRECONDITION', `store check found ${r.errors} error(s); first: ${first.message}${this.flags.repair ? '' : ' (see imgtool fsck --repair)'}`);
    }
  }
}
