import { ImgtoolCommand, Flags, Args, fmtBytes } from '../src/cli';
import { shortDigest } from '../src/digest';
import { withCommandLease } from '../src/leases';
import type { Compression } from '../src/compression/codecs';
import { convertImage } from '../src/compression/convert';
import type { ConvertResult } from '../src/compression/convert';

export default class Convert extends ImgtoolCommand<typeof Convert> {
  static override summary = 'Write a new image DST whose layers use another compression.';
  static override description = `The config never changes (same diffIDs, same image ID). zstd forces OCI media types (Docker's schema2 has none for zstd); --oci converts all Docker media types to OCI. Layers are taken from existing variants when the store has them, else converted from another variant, else rebuilt from their snapshot; new variants are recorded, so converting again is fast. Layers are converted in parallel. Default platforms: every platform present in the store (absent ones are left out with a warning); --all-platforms makes an absent platform an error. DST is registered only when every layer was produced.`;

  static override examples = [
    '<%= config.bin %> convert --compression zstd alpine:3.20 alpine:3.20-zstd',
    '<%= config.bin %> convert --compression gzip --level 9 --oci --platform linux/arm64 app:1 app:1-arm64',
  ];

  static override args = {
    src: Args.string({ required: true, description: 'image to convert' }),
    dst: Args.string({ required: true, description: 'name of the new image' }),
  };

  static override flags = {
    compression: Flags.string({ required: true, options: ['gzip', 'zstd', 'none'], description: 'layer compression' }),
    level: Flags.integer({ description: 'compression level (gzip 0..9, default 6; zstd 1..19, default 3); only variants made at this level are reused' }),
    oci: Flags.boolean({ default: false, description: 'convert Docker media types to OCI' }),
    platform: Flags.string({ multiple: true, multipleNonGreedy: true, description: 'only this platform (os/arch[/variant]); repeatable', exclusive: ['all-platforms'] }),
    'all-platforms': Flags.boolean({ default: false, description: 'every platform of the index; an absent one is an error' }),
    deterministic: Flags.boolean({ default: false, description: 'reuse only variants imgtool made with this codec version and level (reproducible digests)' }),
    lease: Flags.string({ description: 'attach what the conversion produces or uses to this lease' }),
  };

  async run(): Promise<void> {
    const started = Date.now();
    const r = await withCommandLease(this.store, this.flags.lease, (lease) =>
      convertImage(this.store, this.args.src, this.args.dst, {
        compression: this.flags.compression as Compression,
        level: this.flags.level,
        oci: this.flags.oci,
        platforms: this.flags.platform,
        allPlatforms: this.flags['all-platforms'],
        deterministic: this.flags.deterministic,
        lease,
        progress: this.progress,
      }),
    );
    if (this.flags.json) return this.outJSON({ ...r, seconds: (Date.now() - started) / 1000 });
    for (const line of summary(r)) this.out(line);
  }
}

function summary(r: ConvertResult): string[] {
  const lines: string[] = [];
  const counts = new Map<string, number>();
  const seen = new Set<string>();
  let before = 0;
  let after = 0;
  for (const l of r.layers) {
    counts.set(l.source, (counts.get(l.source) ?? 0) + 1);
    if (!seen.has(l.from.digest)) before += l.from.size;
    if (!seen.has(l.to.digest)) after += l.to.size;
    seen.add(l.from.digest);
    seen.add(l.to.digest);
  }
  for (const m of r.manifests) {
    if (!m.attestation && m.from !== m.to) lines.push(`${m.platform ?? 'manifest'}: ${shortDigest(m.from)} -> ${shortDigest(m.to)}`);
  }
  const how = ['converted', 'rebuilt', 'existing', 'unchanged'].filter((k) => counts.get(k)).map((k) => `${counts.get(k)} ${k}`).join(', ');
  lines.push(`${r.name} ${r.target.digest}`);
  lines.push(`layers: ${r.layers.length} (${how || 'none'}); ${fmtBytes(before)} -> ${fmtBytes(after)}`);
  return lines;
}
