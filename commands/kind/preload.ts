import { ImgtoolCommand, Flags, Args, fmtBytes } from '../../src/cli';
import { shortDigest } from '../../src/digest';
import { kindPreload } from '../../src/kind/preload';

export default class KindPreload extends ImgtoolCommand<typeof KindPreload> {
  static override summary = 'Write archives for preloading images into KIND nodes.';
  static override description = `The archives are what \`ctr --namespace=k8s.io images import --no-unpack --all-platforms --digests\` accepts inside a node, with every image's full name kept. -o FILE writes one tar holding every image; -o DIR (an existing directory, or a path ending in /) writes one tar per image, named after the image (docker.io/library/x:1 -> docker.io_library_x_1.tar), as a node image's /kind/images/ holds. Every archive is verified (as \`imgtool verify --strict\`) before the command succeeds; on failure no archive is left.`;

  static override examples = [
    '<%= config.bin %> kind preload app:1 sidecar:2 -o images.tar',
    '<%= config.bin %> kind preload app:1 sidecar:2 -o kind-images/ --platform linux/amd64',
  ];

  static override strict = false;

  static override args = {
    image: Args.string({ required: true, description: 'image(s) to preload' }),
  };

  static override flags = {
    output: Flags.string({ char: 'o', required: true, description: 'output file (one tar) or directory (one tar per image)' }),
    platform: Flags.string({ description: 'only this platform of each image (os/arch[/variant])' }),
    lease: Flags.string({ description: 'attach the blobs saved to this lease' }),
    'skip-non-distributable': Flags.boolean({ default: false, description: 'leave absent non-distributable (foreign) layers out instead of failing' }),
  };

  async run(): Promise<void> {
    const { argv } = await this.parse(KindPreload);
    const result = await kindPreload(this.store, argv as string[], {
      output: this.flags.output,
      platform: this.flags.platform,
      leaseId: this.flags.lease,
      skipNonDistributable: this.flags['skip-non-distributable'],
      progress: this.progress,
    });
    if (this.flags.json) return this.outJSON(result);
    for (const c of result.changes) {
      this.out(`${c.image}: ${c.kind}${c.platform ? ` ${c.platform}` : ''} ${c.from} -> ${c.to} (${c.reason})`);
    }
    for (const a of result.archives) {
      for (const i of a.images) this.out(`${a.file}: ${i.name} ${shortDigest(i.digest)} ${i.platforms.join(',') || '-'}`);
      this.out(`wrote ${a.file}: ${a.images.length} image(s), ${fmtBytes(a.bytes)}, verified`);
    }
  }
}
