import { ImgtoolCommand, Flags, Args, fmtBytes } from '../src/cli';
import { InvalidArchiveError, InvalidArgumentError } from '../src/errors';
import { shortDigest } from '../src/digest';
import { verifyArchive } from '../src/archive/verify';
import type { VerifyReport } from '../src/archive/verify';
import { readInventory } from '../src/archive/have';
import { limitFlags, limitsFromFlags } from '../src/cli/limits';

export default class Verify extends ImgtoolCommand<typeof Verify> {
  static override summary = 'Check an archive offline, without a store.';
  static override description = `The tar is well-formed and not truncated; every blob's digest and size is right; every manifest, config and layer that index.json or manifest.json references is present (absent platforms of an index are reported as partial, an error with --strict); media types are known or warned about. With --strict, every layer is also decompressed and hashed: it must give the diffID its config names. Prints a summary on stdout; exits non-zero listing every problem.`;

  static override examples = ['<%= config.bin %> verify images.tar', 'curl -s https://example.com/x.tar.gz | <%= config.bin %> verify -'];

  static override args = {
    file: Args.string({ required: true, description: 'archive to check, or - for stdin' }),
  };

  static override flags = {
    have: Flags.string({ description: "a delta archive: check that this inventory (imgtool have) lists every blob it expects" }),
    strict: Flags.boolean({ default: false, description: 'an index with absent platforms is an error, and every layer must decompress to its config\'s diffID (decodes each layer)' }),
    'max-archive-size': limitFlags['max-archive-size'],
    'max-layer-size': limitFlags['max-layer-size'],
    'max-ratio': limitFlags['max-ratio'],
  };

  async run(): Promise<void> {
    const file = this.args.file;
    if (file === '-' && process.stdin.isTTY) throw new InvalidArgumentError('no archive on stdin');
    const have = this.flags.have ? readInventory(this.flags.have) : undefined;
    const r = await verifyArchive(file, { strict: this.flags.strict, diffIds: this.flags.strict, progress: this.progress, have, limits: limitsFromFlags(this.flags) });
    for (const w of r.warnings) this.warn_(w);
    if (this.flags.json) this.outJSON(r);
    else for (const l of summary(r)) this.out(l);
    if (!r.ok) throw new InvalidArchiveError(`${r.source}: ${r.problems.length} problem(s)`, r.problems);
  }
}

function summary(r: VerifyReport): string[] {
  const lines: string[] = [];
  if (r.format) {
    lines.push(`${r.source}: ${r.format} archive${r.compression && r.compression !== 'none' ? ` (${r.compression})` : ''}, ${r.entries} entries, ${r.blobs.count} blob(s), ${fmtBytes(r.blobs.bytes)}`);
  }
  for (const i of r.images) {
    const names = i.names.length ? i.names.join(', ') : '(no name)';
    const partial = i.partial ? ` (partial: ${i.absent.map((a) => a.platform ?? shortDigest(a.digest)).join(',')} absent)` : '';
    lines.push(`  ${names} ${shortDigest(i.digest)} ${i.platforms.join(',') || '-'}${partial}`);
  }
  if (r.delta) {
    const bytes = r.delta.referenced.reduce((n, d) => n + d.size, 0);
    lines.push(`  delta: holds ${r.blobs.count} blob(s); expects the receiver to hold ${r.delta.expects.length} (${fmtBytes(bytes)} named by its manifests)${r.delta.checkedAgainst ? `, checked against the ${r.delta.checkedAgainst}` : ''}`);
    for (const d of r.delta.referenced) lines.push(`    expects ${d.digest} ${d.mediaType} ${fmtBytes(d.size)} (${d.image})`);
  }
  lines.push(r.ok ? 'OK' : `FAILED: ${r.problems.length} problem(s)`);
  return lines;
}
