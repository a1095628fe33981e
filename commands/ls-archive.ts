import { ImgtoolCommand, Args, fmtBytes } from '../src/cli';
import { InvalidArchiveError, InvalidArgumentError } from '../src/errors';
import { shortDigest } from '../src/digest';
import { listArchive } from '../src/archive/list';
import type { ArchiveListing } from '../src/archive/list';

export default class LsArchive extends ImgtoolCommand<typeof LsArchive> {
  static override summary = 'List images, names, platforms and layers in an archive without importing it.';
  static override description = `Reads the archive once, without a store. Exits non-zero when the archive has problems (\`imgtool verify\` explains them).`;

  static override examples = ['<%= config.bin %> ls-archive images.tar', 'docker save alpine | <%= config.bin %> ls-archive -'];

  static override args = {
    file: Args.string({ required: true, description: 'archive to list, or - for stdin' }),
  };

  async run(): Promise<void> {
    const file = this.args.file;
    if (file === '-' && process.stdin.isTTY) throw new InvalidArgumentError('no archive on stdin');
    const l = await listArchive(file, { progress: this.progress });
    for (const w of l.warnings) this.warn_(w);
    if (this.flags.json) this.outJSON(l);
    else for (const line of render(l)) this.out(line);
    if (l.problems.length) throw new InvalidArchiveError(`${l.source}: ${l.problems.length} problem(s)`, l.problems);
  }
}

function render(l: ArchiveListing): string[] {
  const out: string[] = [];
  if (l.format) out.push(`${l.source}: ${l.format} archive${l.compression && l.compression !== 'none' ? ` (${l.compression})` : ''}, ${l.images.length} image(s)`);
  for (const i of l.images) {
    const partial = i.partial ? ` (partial: ${i.absent.map((a) => a.platform ?? shortDigest(a.digest)).join(',')} absent)` : '';
    out.push(`${i.names.length ? i.names.join(', ') : '(no name)'}  ${i.digest}  ${i.platforms.join(',') || '-'}${partial}`);
    for (const m of i.manifests) {
      const what = m.attestation ? 'attestation' : m.platform ?? 'manifest';
      out.push(`  ${what}  manifest ${shortDigest(m.digest)}  config ${shortDigest(m.config.digest)}`);
      m.layers.forEach((ly, n) => {
        const comp = ly.compression ?? '?';
        const diff = ly.diffId ? `  diffID ${shortDigest(ly.diffId)}` : '';
        out.push(`    ${m.attestation ? 'blob ' : 'layer'} ${n + 1}  ${shortDigest(ly.digest)}  ${fmtBytes(ly.size)}  ${ly.present ? comp : 'absent'}${diff}`);
      });
    }
  }
  return out;
}
