import { ImgtoolCommand, Flags, Args, fmtBytes } from '../src/cli';
import { InvalidArgumentError } from '../src/errors';
import { shortDigest } from '../src/digest';
import { parsePlatform } from '../src/platform';
import { withCommandLease } from '../src/leases';
import { saveImages, SAVE_FORMATS, SAVE_COMPRESSIONS } from '../src/archive/export';
import type { SaveFormat, SaveResult } from '../src/archive/export';
import type { SaveCompression } from '../src/layers';
import { readInventory } from '../src/archive/have';

export default class Save extends ImgtoolCommand<typeof Save> {
  static override summary = 'Save images to one tar archive (OCI layout + Docker manifest.json by default).';
  static override description = `Every platform whose content is in the store is saved; a complete index is written unchanged. With --platform (or when some platforms are absent) a new index is written and its old -> new digest printed. The whole archive is planned before the first byte is written: a layer that is absent, or wanted in another --compression, is taken from a stored variant, converted from another one, or rebuilt from its snapshot (then its manifest changes and old -> new is printed; --format docker has no manifest or index, so no old -> new line is printed for it: its image ID, the config digest, stays and manifest.json names the new layers); if any blob cannot be produced, nothing is written and every missing blob is listed. A Docker archive holds one manifest per image name: --format docker writes the host's platform (or the one --platform names) and warns which it left out; it refuses --all-platforms and zstd. In the default oci+docker, an image with zstd layers is warned about: Docker before 23 cannot load it from manifest.json (podman, skopeo, containerd and Docker 23+ can); --compression gzip makes it loadable. -o FILE writes FILE.tmp-*, fsyncs and renames; -o - writes to stdout (messages then go to stderr).`;

  static override examples = [
    '<%= config.bin %> save -o busybox.tar busybox',
    '<%= config.bin %> save -o - --platform linux/amd64 alpine:3.20 nginx | gzip > images.tar.gz',
    '<%= config.bin %> save -o app.tar --format docker --compression gzip app:1',
  ];

  static override strict = false;

  static override args = {
    image: Args.string({ required: true, description: 'image(s) to save' }),
  };

  static override flags = {
    output: Flags.string({ char: 'o', required: true, description: 'output file, or - for stdout' }),
    platform: Flags.string({ multiple: true, multipleNonGreedy: true, description: 'only this platform (os/arch[/variant]); repeatable', exclusive: ['all-platforms'] }),
    'all-platforms': Flags.boolean({ default: false, description: 'every platform of each index; an absent one is an error (not with --format docker)' }),
    compression: Flags.string({ options: [...SAVE_COMPRESSIONS], default: 'keep', description: 'layer compression in the archive' }),
    format: Flags.string({ options: [...SAVE_FORMATS], default: 'oci+docker', description: 'archive layout' }),
    lease: Flags.string({ description: 'attach the blobs saved (and any produced) to this lease' }),
    have: Flags.string({ description: "delta: leave out every blob this inventory (imgtool have on the receiver) lists" }),
    exclude: Flags.string({ multiple: true, multipleNonGreedy: true, description: "delta: leave out every blob of this image's closure (the receiver holds it); repeatable" }),
    'skip-non-distributable': Flags.boolean({ default: false, description: 'leave absent non-distributable (foreign) layers out of the archive instead of failing' }),
  };

  async run(): Promise<void> {
    const { argv } = await this.parse(Save);
    const refs = argv as string[];
    const output = this.flags.output;
    if (output === '-' && process.stdout.isTTY) {
      throw new InvalidArgumentError('refusing to write an archive to a terminal; use -o FILE or redirect stdout');
    }
    const platforms = (this.flags.platform ?? []).map(parsePlatform);
    const have = this.flags.have ? readInventory(this.flags.have) : undefined;
    const result = await withCommandLease(this.store, this.flags.lease, (lease) =>
      saveImages(this.store, refs, {
        output,
        platforms: platforms.length ? platforms : undefined,
        allPlatforms: this.flags['all-platforms'],
        format: this.flags.format as SaveFormat,
        compression: this.flags.compression as SaveCompression,
        lease,
        progress: this.progress,
        skipNonDistributable: this.flags['skip-non-distributable'],
        have,
        exclude: this.flags.exclude,
      }),
    );
    // The archive owns stdout with -o -: messages go to stderr then.
    this.endProgress();
    const write = (s: string) => (output === '-' ? process.stderr : process.stdout).write(s + '\n');
    if (this.flags.json) return void write(JSON.stringify(result, null, 2));
    if (this.flags.quiet && output === '-') return;
    for (const line of summary(result)) write(line);
  }
}

function summary(r: SaveResult): string[] {
  const lines: string[] = [];
  for (const c of r.changes) {
    lines.push(`${c.image}: ${c.kind}${c.platform ? ` ${c.platform}` : ''} ${c.from} -> ${c.to} (${c.reason})`);
  }
  for (const i of r.images) {
    const plats = i.platforms.length ? i.platforms.join(',') : '-';
    const left = i.leftOut.length ? ` (left out: ${i.leftOut.join(',')})` : '';
    lines.push(`saved ${i.name} ${shortDigest(i.digest)} ${plats}${left}`);
  }
  const omitted = r.omitted.length ? `, ${r.omitted.length} left out on request (${fmtBytes(r.omittedBytes)})` : '';
  if (r.expects.length) lines.push(`delta: left out ${r.expects.length} blob(s), ${fmtBytes(r.omittedBytes)} that the receiver holds (recorded on index.json)`);
  lines.push(`wrote ${r.output === '-' ? 'stdout' : r.output}: ${r.images.length} image(s), ${r.blobs} blob(s)${omitted}, ${fmtBytes(r.bytes)} (${r.format}, compression ${r.compression})`);
  return lines;
}
