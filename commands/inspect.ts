import { ImgtoolCommand, Flags, Args } from '../src/cli';
import { inspectImage } from '../src/compression/inspect';

export default class Inspect extends ImgtoolCommand<typeof Inspect> {
  static override summary = 'Show what the store knows about an image, as JSON.';
  static override description = `Prints the index, manifests and configs, and per layer its diffID, chainID, every known variant (digest, size, media type, compression, level, present or not) and whether a snapshot exists.`;

  static override examples = ['<%= config.bin %> inspect alpine:3.20 --platform linux/arm64'];

  static override args = {
    image: Args.string({ required: true, description: 'image name or digest' }),
  };

  static override flags = {
    platform: Flags.string({ description: 'only this platform (os/arch[/variant]) and its attestations' }),
  };

  async run(): Promise<void> {
    this.outJSON(await inspectImage(this.store, this.args.image, { platform: this.flags.platform }));
  }
}
