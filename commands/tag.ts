import { ImgtoolCommand, Args } from '../src/cli';
import { tagImage } from '../src/images/ops';

export default class Tag extends ImgtoolCommand<typeof Tag> {
  static override summary = 'Give an image another name.';
  static override args = {
    src: Args.string({ required: true, description: 'existing image' }),
    dst: Args.string({ required: true, description: 'new name' }),
  };

  async run(): Promise<void> {
    const name = tagImage(this.store, this.args.src, this.args.dst);
    if (this.flags.json) this.outJSON({ name });
    else this.out(name);
  }
}
