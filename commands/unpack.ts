import { ImgtoolCommand, Flags, Args } from '../src/cli';
import { shortDigest } from '../src/digest';
import { withCommandLease } from '../src/leases';
import { unpackImage } from '../src/snapshots/ops';
import { limitFlags, limitsFromFlags } from '../src/cli/limits';

export default class Unpack extends ImgtoolCommand<typeof Unpack> {
  static override summary = 'Unpack an image into snapshots, one per layer, keyed by chainID.';
  static override description = `Unpack an image into its snapshot chain: one snapshot per layer, keyed by chainID, parent = the previous chainID.

Snapshots that exist already are not re-applied (the image's layer blobs are still recorded for them). Each layer's diffID is verified while it is applied; a failure commits nothing for that layer.`;

  static override examples = ['<%= config.bin %> unpack busybox', '<%= config.bin %> unpack --platform linux/arm64 alpine:3.20'];

  static override args = { image: Args.string({ required: true, description: 'image to unpack' }) };

  static override flags = {
    platform: Flags.string({ description: 'platform to unpack (os/arch[/variant]); default the host platform' }),
    lease: Flags.string({ description: 'attach the snapshots to this lease' }),
    'max-layer-size': limitFlags['max-layer-size'],
    'max-ratio': limitFlags['max-ratio'],
    'max-entries': limitFlags['max-entries'],
  };

  async run(): Promise<void> {
    const r = await withCommandLease(this.store, this.flags.lease, (lease) =>
      unpackImage(this.store, this.args.image, { platform: this.flags.platform, lease, progress: this.progress, limits: limitsFromFlags(this.flags) }),
    );
    if (this.flags.json) return this.outJSON(r);
    for (const l of r.layers) {
      this.out(`${l.applied ? 'applied' : 'exists '} ${shortDigest(l.chainId)} layer ${l.index + 1}/${r.layers.length} ${shortDigest(l.digest)}${l.source && l.source.kind !== 'blob' ? ` (from ${l.source.kind} ${shortDigest(l.source.digest ?? l.source.chainId ?? '')})` : ''}`);
    }
    this.out(`unpacked ${r.image}${r.platform ? ` ${r.platform}` : ''}: ${r.chainId ?? '(no layers)'}`);
  }
}
