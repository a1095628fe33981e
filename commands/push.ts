import { ImgtoolCommand, Flags, Args, fmtBytes } from '../src/cli';
import { withCommandLease } from '../src/leases';
import { shortDigest } from '../src/digest';
import { pushImage, PUSH_COMPRESSIONS } from '../src/registry/push';
import type { PushCompression, PushResult } from '../src/registry/push';

export default class Push extends ImgtoolCommand<typeof Push> {
  static override summary = 'Push an image from the store to a registry (OCI distribution API).';
  static override description = `REF defaults to IMAGE's name. Blobs the registry has are skipped (HEAD); a blob known to live in another repository of the same registry is mounted instead of uploaded; the rest is streamed from the store. A layer absent from the store is produced first through the layer module (converted from another variant or rebuilt from its snapshot); if any cannot be produced, nothing is uploaded and every one is named. Manifests go after their blobs and the tag last. A partial image is pushed as its present platforms under a new index (old -> new printed); with --all-platforms that is an error. A byte-identical mirror needs pull --all-platforms. Prints the pushed digest.`;

  static override examples = [
    '<%= config.bin %> push app:1 registry.example.com/team/app:1',
    '<%= config.bin %> push --insecure 127.0.0.1:5000/app:1 --compression zstd',
  ];

  static override args = {
    image: Args.string({ required: true, description: 'image in the store' }),
    ref: Args.string({ required: false, description: 'destination reference [default: IMAGE]' }),
  };

  static override flags = {
    platform: Flags.string({ multiple: true, multipleNonGreedy: true, description: 'push only this platform (os/arch[/variant]); repeatable', exclusive: ['all-platforms'] }),
    'all-platforms': Flags.boolean({ default: false, description: 'every platform of the index must be in the store' }),
    compression: Flags.string({ options: [...PUSH_COMPRESSIONS], default: 'keep', description: 'layer compression to push' }),
    jobs: Flags.integer({ default: 4, min: 1, max: 64, description: 'parallel blob transfers' }),
    insecure: Flags.boolean({ default: false, description: 'allow plain HTTP and unverified TLS' }),
    'ca-file': Flags.string({ description: 'extra CA certificate(s) (PEM) to trust' }),
  };

  async run(): Promise<void> {
    const f = this.flags;
    const result = await withCommandLease(this.store, undefined, (lease) =>
      pushImage(this.store, this.args.image, this.args.ref, {
        platforms: f.platform, allPlatforms: f['all-platforms'], compression: f.compression as PushCompression,
        jobs: f.jobs, insecure: f.insecure, caFile: f['ca-file'], lease, progress: this.progress,
      }),
    );
    for (const w of result.warnings) this.warn_(w);
    if (f.json) return this.outJSON(result);
    for (const l of summary(result)) this.out(l);
  }
}

function summary(r: PushResult): string[] {
  const lines: string[] = [];
  for (const c of r.changes) lines.push(`${c.image}: ${c.kind}${c.platform ? ` ${c.platform}` : ''} ${c.from} -> ${c.to} (${c.reason})`);
  const b = r.blobs;
  lines.push(`pushed ${r.ref} ${r.digest} ${r.platforms.join(',') || '-'}${r.leftOut.length ? ` (left out: ${r.leftOut.join(',')})` : ''}`);
  lines.push(`  blobs: ${b.uploaded} uploaded (${fmtBytes(b.bytes)}), ${b.mounted} mounted, ${b.skipped} already there; manifests: ${r.manifests.uploaded} uploaded, ${r.manifests.skipped} already there`);
  void shortDigest;
  return lines;
}
