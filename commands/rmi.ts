import { ImgtoolCommand, Args } from '../src/cli';
import { removeImages } from '../src/images/ops';

export default class Rmi extends ImgtoolCommand<typeof Rmi> {
  static override summary = 'Remove image names. Content stays until `imgtool prune`.';
  static override strict = false;
  static override args = { image: Args.string({ required: true, description: 'image(s) to remove' }) };

  async run(): Promise<void> {
    const { argv } = await this.parse(Rmi);
    const removed = removeImages(this.store, argv as string[]);
    if (this.flags.json) this.outJSON({ removed });
    else for (const n of removed) this.out(`removed ${n}`);
  }
}
