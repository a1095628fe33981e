import { ImgtoolCommand, Flags, fmtBytes } from '../src/cli';
import { InvalidArgumentError } from '../src/errors';
import { shortDigest } from '../src/digest';
import { withCommandLease } from '../src/leases';
import { loadArchive } from '../src/archive/load';
import type { LoadResult } from '../src/archive/load';
import { limitFlags, limitsFromFlags } from '../src/cli/limits';

export default class Load extends ImgtoolCommand<typeof Load> {
  static override summary = 'Load a Docker or OCI archive (plain, gzip or zstd) into the store.';
  static override description = `Reads Docker archives (\`docker save\`, old and 25+ layouts) and OCI archives, either wrapped in gzip or zstd, from a file or stdin.

One streaming pass: every blob is stored as it streams, its digest and size verified; references are resolved at the end. An index whose other platforms' content is absent (as Docker exports them) loads what is present and is reported as partial; --all-platforms and --strict make that an error. Unknown media types are kept and warned about. Names follow "Naming on load": io.containerd.image.name, a full org.opencontainers.image.ref.name, BASE:TAG with --base-name, Docker RepoTags; --digests also adds NAME@DIGEST (or BASE@DIGEST, default import-YYYY-MM-DD). All-or-nothing: a failed load registers nothing.

Then unpacks the host platform (or each --platform) of every image into snapshots, keyed by chainID, verifying each layer's diffID; --no-unpack stores content only. --discard-layers then deletes each compressed layer blob, but only after rebuilding that layer from the committed snapshot has been verified to give its diffID (save rebuilds it when needed).`;

  static override examples = [
    '<%= config.bin %> load -i busybox.tar',
    'docker save alpine | <%= config.bin %> load',
    '<%= config.bin %> load -i images.tar.zst --platform linux/arm64 --digests',
    '<%= config.bin %> load -i oci.tar --base-name registry.local/app --index-name registry.local/app:all',
  ];

  static override flags = {
    input: Flags.string({ char: 'i', description: 'archive to read, or - for stdin [default: stdin]' }),
    'no-unpack': Flags.boolean({ default: false, description: 'store content only, do not unpack into snapshots' }),
    'discard-layers': Flags.boolean({ default: false, description: 'after unpacking, delete layer blobs that can be rebuilt from snapshots (needs unpacking)' }),
    platform: Flags.string({ multiple: true, multipleNonGreedy: true, description: 'only this platform (os/arch[/variant]); repeatable; its absence is an error', exclusive: ['all-platforms'] }),
    'all-platforms': Flags.boolean({ default: false, description: 'every platform an index lists must be in the archive' }),
    digests: Flags.boolean({ default: false, description: 'also register each image as NAME@DIGEST (BASE@DIGEST when unnamed)' }),
    'base-name': Flags.string({ description: 'repository for bare-tag ref.names (BASE:TAG) and for BASE@DIGEST' }),
    'index-name': Flags.string({ description: "register the archive's whole index under this name" }),
    strict: Flags.boolean({ default: false, description: 'an index with absent platforms is an error' }),
    lease: Flags.string({ description: 'attach the blobs and names loaded to this lease' }),
    ...limitFlags,
  };

  async run(): Promise<void> {
    const f = this.flags;
    if (f['discard-layers'] && f['no-unpack']) throw new InvalidArgumentError('--discard-layers needs unpacking; it cannot be combined with --no-unpack');
    const input = f.input ?? '-';
    if (input === '-' && process.stdin.isTTY) throw new InvalidArgumentError('no archive given: use -i FILE, or pipe one on stdin');
    const result = await withCommandLease(this.store, f.lease, (lease) =>
      loadArchive(this.store, input, {
        unpack: !f['no-unpack'],
        discardLayers: f['discard-layers'],
        platforms: f.platform,
        allPlatforms: f['all-platforms'],
        strict: f.strict,
        digests: f.digests,
        baseName: f['base-name'],
        indexName: f['index-name'],
        lease,
        progress: this.progress,
        limits: limitsFromFlags(f),
      }),
    );
    for (const w of result.warnings) if (!w.includes(': not unpacked: ')) this.warn_(w);
    if (f.json) return this.outJSON(result);
    for (const l of summary(result)) this.out(l);
  }
}

function summary(r: LoadResult): string[] {
  const lines: string[] = [];
  for (const i of r.images) {
    const plats = i.platforms.length ? i.platforms.join(',') : '-';
    const partial = i.partial ? ` (partial: ${i.absent.map((a) => a.platform ?? shortDigest(a.digest)).join(',')} absent)` : '';
    for (const n of i.names) lines.push(`loaded ${n} ${shortDigest(i.digest)} ${plats}${partial}`);
  }
  for (const u of r.unpacked) {
    const applied = u.layers.filter((l) => l.applied).length;
    const freed = u.discarded ? `; discarded ${u.discarded.filter((d) => d.freed > 0).length} layer blob(s), ${fmtBytes(u.discarded.reduce((n, d) => n + d.freed, 0))} freed` : '';
    lines.push(`unpacked ${u.image}${u.platform ? ` ${u.platform}` : ''}: ${u.layers.length} layer(s), ${applied} applied, ${u.layers.length - applied} already present${freed}`);
  }
  if (r.index) lines.push(`loaded ${r.index.name} ${shortDigest(r.index.digest)} (whole index)`);
  if (r.delta) lines.push(`delta archive: ${r.delta.expects.length} blob(s) it left out were already in the store`);
  const skipped = r.skipped.length ? `, ${r.skipped.length} skipped (no name)` : '';
  lines.push(`read ${r.source}: ${r.format} archive${r.compression !== 'none' ? ` (${r.compression})` : ''}, ${r.blobs.count} blob(s), ${fmtBytes(r.blobs.bytes)}; ${r.images.length} image(s)${skipped}`);
  return lines;
}
