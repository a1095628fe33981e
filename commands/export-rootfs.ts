import { ImgtoolCommand, Flags, Args, fmtBytes } from '../src/cli';
import { InvalidArgumentError } from '../src/errors';
import { withCommandLease } from '../src/leases';
import { exportRootfs } from '../src/snapshots/export';

export default class ExportRootfs extends ImgtoolCommand<typeof ExportRootfs> {
  static override summary = 'Export an image\'s merged root filesystem, as a tar (like crane export) or into a directory.';
  static override description = `From its snapshots when the image is unpacked, else by applying its layers into temporary directories (nothing is committed). The tar is deterministic: entries in path order. -o FILE writes a temp file, fsyncs and renames; -o - writes to stdout. --dir DIR must be empty or not exist; ownership and device nodes are applied only as root, xattrs only in tars.`;

  static override examples = ['<%= config.bin %> export-rootfs busybox -o rootfs.tar', '<%= config.bin %> export-rootfs alpine --dir ./rootfs'];

  static override args = { image: Args.string({ required: true, description: 'image to export' }) };

  static override flags = {
    output: Flags.string({ char: 'o', description: 'output tar file, or - for stdout', exactlyOne: ['output', 'dir'] }),
    dir: Flags.string({ description: 'write the filesystem into this directory', exactlyOne: ['output', 'dir'] }),
    platform: Flags.string({ description: 'platform (os/arch[/variant]); default the host platform' }),
    lease: Flags.string({ description: 'attach the snapshots used to this lease' }),
  };

  async run(): Promise<void> {
    const { output, dir } = this.flags;
    if (output === '-' && process.stdout.isTTY) throw new InvalidArgumentError('refusing to write a tar to a terminal; use -o FILE or redirect stdout');
    const r = await withCommandLease(this.store, this.flags.lease, (lease) =>
      exportRootfs(this.store, this.args.image, dir !== undefined ? { dir } : { output: output! }, { platform: this.flags.platform, lease, progress: this.progress }),
    );
    this.endProgress();
    const write = (s: string) => (output === '-' ? process.stderr : process.stdout).write(s + '\n');
    if (this.flags.json) return void write(JSON.stringify(r, null, 2));
    if (this.flags.quiet && output === '-') return;
    write(`exported ${r.image} (${r.fromSnapshots ? 'from snapshots' : 'layers applied'}): ${r.entries} entries, ${fmtBytes(r.bytes)} of file data to ${dir ?? (output === '-' ? 'stdout' : output)}`);
  }
}
