import { ImgtoolCommand, Flags, Args, fmtBytes } from '../src/cli';
import { buildInventory, inventoryBytes, writeInventoryFile } from '../src/archive/have';

export default class Have extends ImgtoolCommand<typeof Have> {
  static override summary = 'Inventory of what the store holds, for "save --have" on another machine.';
  static override description = `A small deterministic JSON document: the digest and size of every blob of every complete image (or of the named images), with this imgtool's version and a format version.`;

  static override examples = [
    '<%= config.bin %> have -o have.json',
    '<%= config.bin %> have -o - base:1 | ssh build imgtool save -o - app:1 --have /dev/stdin',
  ];

  static override strict = false;

  static override args = {
    image: Args.string({ required: false, description: 'image(s) to list (default: every complete image)' }),
  };

  static override flags = {
    output: Flags.string({ char: 'o', default: '-', description: 'inventory file, or - for stdout' }),
  };

  async run(): Promise<void> {
    const { argv } = await this.parse(Have);
    const inv = await buildInventory(this.store, argv as string[], { warn: (m) => this.warn_(m) });
    const output = this.flags.output;
    if (output === '-') {
      process.stdout.write(inventoryBytes(inv));
      return;
    }
    writeInventoryFile(inv, output);
    if (this.flags.json) return this.outJSON({ output, images: inv.images.length, blobs: inv.blobs.length, bytes: inv.blobs.reduce((n, b) => n + b.size, 0) });
    this.out(`wrote ${output}: ${inv.images.length} image(s), ${inv.blobs.length} blob(s) of ${fmtBytes(inv.blobs.reduce((n, b) => n + b.size, 0))}`);
  }
}
