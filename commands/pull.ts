import { ImgtoolCommand, Flags, Args, fmtBytes } from '../src/cli';
import { withCommandLease } from '../src/leases';
import { shortDigest } from '../src/digest';
import { pullImages } from '../src/registry/pull';
import { limitFlags, limitsFromFlags } from '../src/cli/limits';
import type { PullResult } from '../src/registry/pull';

export default class Pull extends ImgtoolCommand<typeof Pull> {
  static override summary = 'Pull images from a registry (OCI distribution API) into the store.';
  static override description = `Registered under REF's normalised name (a digest REF gives NAME@DIGEST; --digests also adds NAME@DIGEST). Every blob is digest- and size-verified while it streams into the store, and every blob of the pulled image is stored even when snapshots for its layers already exist. By default an index gives its host-platform manifest (the image is then partial, as after load); --platform picks others, --all-platforms fetches every one. The pulled platforms are unpacked unless --no-unpack. An image already complete in the store costs one manifest request. All-or-nothing: a failed pull registers nothing.

HTTPS by default; a loopback registry (localhost, 127.0.0.1) may answer over plain HTTP, but credentials go over plain HTTP only with --insecure (which also skips TLS verification).`;

  static override examples = [
    '<%= config.bin %> pull alpine:3.20',
    '<%= config.bin %> pull --insecure 127.0.0.1:5000/app:1 --platform linux/arm64',
  ];

  static override strict = false;
  static override args = { ref: Args.string({ required: true, description: 'image reference(s) to pull' }) };

  static override flags = {
    platform: Flags.string({ multiple: true, multipleNonGreedy: true, description: 'pull this platform (os/arch[/variant]); repeatable', exclusive: ['all-platforms'] }),
    'all-platforms': Flags.boolean({ default: false, description: 'pull every platform of an index' }),
    'no-unpack': Flags.boolean({ default: false, description: 'store content only, do not unpack into snapshots' }),
    digests: Flags.boolean({ default: false, description: 'also register each image as NAME@DIGEST' }),
    jobs: Flags.integer({ default: 4, min: 1, max: 64, description: 'parallel blob transfers' }),
    insecure: Flags.boolean({ default: false, description: 'allow plain HTTP and unverified TLS' }),
    'ca-file': Flags.string({ description: 'extra CA certificate(s) (PEM) to trust' }),
    'max-layer-size': limitFlags['max-layer-size'],
    'max-ratio': limitFlags['max-ratio'],
    'max-entries': limitFlags['max-entries'],
  };

  async run(): Promise<void> {
    const { argv } = await this.parse(Pull);
    const f = this.flags;
    const result = await withCommandLease(this.store, undefined, (lease) =>
      pullImages(this.store, argv as string[], {
        platforms: f.platform, allPlatforms: f['all-platforms'], unpack: !f['no-unpack'], digests: f.digests,
        jobs: f.jobs, insecure: f.insecure, caFile: f['ca-file'], limits: limitsFromFlags(f), lease, progress: this.progress,
      }),
    );
    for (const w of result.warnings) if (!w.includes(': not unpacked: ')) this.warn_(w);
    if (f.json) return this.outJSON(result);
    for (const l of summary(result)) this.out(l);
  }
}

function summary(r: PullResult): string[] {
  const lines: string[] = [];
  for (const i of r.images) {
    const plats = i.platforms.length ? i.platforms.join(',') : '-';
    const partial = i.partial ? ` (partial: ${i.absent.filter((a) => a.platform !== 'unknown/unknown').map((a) => a.platform ?? shortDigest(a.digest)).join(',')} not pulled)` : '';
    for (const n of i.names) lines.push(`pulled ${n} ${shortDigest(i.digest)} ${plats}${partial}`);
    lines.push(`  ${i.blobs.fetched} blob(s) fetched (${fmtBytes(i.blobs.bytes)}), ${i.blobs.present} already present`);
  }
  for (const u of r.unpacked) {
    const applied = u.layers.filter((l) => l.applied).length;
    lines.push(`unpacked ${u.image}${u.platform ? ` ${u.platform}` : ''}: ${u.layers.length} layer(s), ${applied} applied, ${u.layers.length - applied} already present`);
  }
  return lines;
}
