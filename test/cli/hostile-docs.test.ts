/**
 * Issue 11 (parts 2, 3, 5): every JSON document read from an archive is shape-checked before
 * use. A table of hostile documents (index.json, manifest, config, Docker manifest.json,
 * oci-layout) goes through `load`, `load --no-unpack`, `verify` and `ls-archive` on the
 * built binary: each exits non-zero with `imgtool: error: ...` naming the document and the
 * field, no stack trace, no "undefined", no raw Node error, and nothing registered. A store
 * that holds such a document (planted directly) still lists its other images, and `fsck`
 * reports just that image.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runCli, tmpDir, rmrf } from '../helpers/cli';
import {
  makeImage, makeLayer, imageBlobs, blobEntry, tar, doc, ociArchive, ociImageArchive, OCI_LAYOUT, ownStderr, TarEntry,
} from '../unit/archive/import-fixtures';
import { MediaType } from '../../src/images/mediatypes';
import { Store } from '../../src';
import type { Descriptor } from '../../src/images/types';

const NAME = 'x.io/hostile:1';
const ann = { 'io.containerd.image.name': NAME, 'org.opencontainers.image.ref.name': NAME };
const layer = makeLayer({ 'etc/hello': 'hello\n' }, 'gzip');
const base = makeImage({ layers: [layer] });
const goodConfig = JSON.parse(base.config.bytes.toString());
const goodManifest = JSON.parse(base.manifest.bytes.toString());

/** An OCI archive of one image whose manifest (and optionally config) documents are `manifest`/`config`. */
function withDocs(opts: { manifest?: (m: Record<string, unknown>, cfg: Descriptor) => unknown; config?: unknown; configBytes?: Buffer; entryPlatform?: unknown; manifestBytes?: Buffer }): Buffer {
  const cfg = opts.configBytes ? doc(MediaType.OCI_CONFIG, opts.configBytes) : opts.config !== undefined ? doc(MediaType.OCI_CONFIG, opts.config) : base.config;
  const m = opts.manifestBytes
    ? doc(MediaType.OCI_MANIFEST, opts.manifestBytes)
    : doc(MediaType.OCI_MANIFEST, opts.manifest ? opts.manifest({ ...goodManifest, config: cfg.desc }, cfg.desc) : { ...goodManifest, config: cfg.desc });
  const entry: Record<string, unknown> = { ...m.desc, annotations: ann };
  if (opts.entryPlatform !== undefined) entry.platform = opts.entryPlatform;
  return ociArchive([entry as unknown as Descriptor], [blobEntry(cfg.bytes), blobEntry(layer.blob), blobEntry(m.bytes)]);
}

/** An OCI archive whose index.json is `index` (raw bytes or a value). */
function withIndexJson(index: unknown, blobs: TarEntry[] = imageBlobs(base)): Buffer {
  const bytes = Buffer.isBuffer(index) ? index : Buffer.from(JSON.stringify(index));
  return tar([OCI_LAYOUT, ...blobs, { name: 'index.json', data: bytes }]);
}

/** `depth` indexes nested in each other, the innermost pointing at the base image. */
function nestedIndexes(depth: number): Buffer {
  const blobs: TarEntry[] = imageBlobs(base);
  let inner: Descriptor = base.manifest.desc;
  for (let i = 0; i < depth; i++) {
    const d = doc(MediaType.OCI_INDEX, { schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: [inner] });
    blobs.push(blobEntry(d.bytes));
    inner = d.desc;
  }
  return withIndexJson({ schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: [{ ...inner, annotations: ann }] }, blobs);
}

const deepArray = (n: number) => Buffer.from('['.repeat(n) + ']'.repeat(n));
const layerWith = (patch: Record<string, unknown>) => (m: Record<string, unknown>) => ({ ...m, layers: [{ ...layer.desc, ...patch }] });
const layerWithout = (field: string) => (m: Record<string, unknown>) => {
  const l: Record<string, unknown> = { ...layer.desc };
  delete l[field];
  return { ...m, layers: [l] };
};
const cfgWith = (patch: Record<string, unknown>) => ({ ...goodConfig, ...patch });

function dockerWith(manifestJson: unknown, config?: unknown): Buffer {
  const entries: TarEntry[] = [];
  if (config !== undefined) entries.push({ name: 'c.json', data: JSON.stringify(config) });
  entries.push({ name: 'l.tar.gz', data: layer.blob });
  entries.push({ name: 'manifest.json', data: JSON.stringify(manifestJson) });
  return tar(entries);
}

const M = 'manifest sha256:[0-9a-f]{64}';
const C = 'config sha256:[0-9a-f]{64}';

/** [case, archive, what the error names: the document and the field]. */
const cases: Array<[string, Buffer, RegExp]> = [
  ['manifest layer is a string', withDocs({ manifest: (m) => ({ ...m, layers: ['sha256:abc'] }) }), new RegExp(`${M}: field layers\\[0\\]: must be an object, got string`)],
  ['manifest layer is a number', withDocs({ manifest: (m) => ({ ...m, layers: [7] }) }), new RegExp(`${M}: field layers\\[0\\]: must be an object, got number`)],
  ['manifest layers is an object', withDocs({ manifest: (m) => ({ ...m, layers: {} }) }), new RegExp(`${M}: field layers: must be an array, got object`)],
  ['layer without digest', withDocs({ manifest: layerWithout('digest') }), new RegExp(`${M}: field layers\\[0\\]\\.digest: is missing`)],
  ['layer without size', withDocs({ manifest: layerWithout('size') }), new RegExp(`${M}: field layers\\[0\\]\\.size: is missing`)],
  ['layer without mediaType', withDocs({ manifest: layerWithout('mediaType') }), new RegExp(`${M}: field layers\\[0\\]\\.mediaType: is missing`)],
  ['layer size -1', withDocs({ manifest: layerWith({ size: -1 }) }), new RegExp(`${M}: field layers\\[0\\]\\.size: must be >= 0, got number -1`)],
  ['layer size 1.5', withDocs({ manifest: layerWith({ size: 1.5 }) }), new RegExp(`${M}: field layers\\[0\\]\\.size: must be an integer, got number 1.5`)],
  ['layer size "12"', withDocs({ manifest: layerWith({ size: '12' }) }), new RegExp(`${M}: field layers\\[0\\]\\.size: must be an integer, got string "12"`)],
  ['layer size 2^60', withDocs({ manifest: layerWith({ size: 2 ** 60 }) }), new RegExp(`${M}: field layers\\[0\\]\\.size: must be a safe integer`)],
  ['layer digest sha256:xyz', withDocs({ manifest: layerWith({ digest: 'sha256:xyz' }) }), new RegExp(`${M}: field layers\\[0\\]\\.digest: must be a sha256 digest .*got string "sha256:xyz"`)],
  ['layer digest is a number', withDocs({ manifest: layerWith({ digest: 12 }) }), new RegExp(`${M}: field layers\\[0\\]\\.digest: must be a string, got number`)],
  ['layer annotation value is a number', withDocs({ manifest: layerWith({ annotations: { a: 1 } }) }), new RegExp(`${M}: field layers\\[0\\]\\.annotations\\.a: must be a string, got number`)],
  ['layer urls is a string', withDocs({ manifest: layerWith({ urls: 'http://x' }) }), new RegExp(`${M}: field layers\\[0\\]\\.urls: must be an array`)],
  ['manifest config is an array', withDocs({ manifest: (m) => ({ ...m, config: [] }) }), new RegExp(`${M}: field config: must be an object, got array`)],
  ['manifest config missing', withDocs({ manifest: (m) => ({ ...m, config: undefined }) }), new RegExp(`${M}: field config: is missing`)],
  ['manifest is an array', withDocs({ manifestBytes: Buffer.from('[]') }), new RegExp(`${M}: must be a JSON object`)],
  ['manifest 100k-deep array', withDocs({ manifestBytes: deepArray(100000) }), new RegExp(`${M}: (must be a JSON object|nested more than \\d+ levels deep)`)],
  ['manifest schemaVersion 1', withDocs({ manifest: (m) => ({ ...m, schemaVersion: 1 }) }), new RegExp(`${M}: field schemaVersion: must be 2, got number 1`)],
  ['config is an array', withDocs({ config: [] }), new RegExp(`${C}: must be a JSON object`)],
  ['config architecture is an object', withDocs({ config: cfgWith({ architecture: {} }) }), new RegExp(`${C}: field architecture: must be a string, got object`)],
  ['config os is a number', withDocs({ config: cfgWith({ os: 5 }) }), new RegExp(`${C}: field os: must be a string, got number`)],
  ['config variant is an array', withDocs({ config: cfgWith({ variant: [] }) }), new RegExp(`${C}: field variant: must be a string, got array`)],
  ['config without rootfs', withDocs({ config: cfgWith({ rootfs: undefined }) }), new RegExp(`${C}: field rootfs: is missing`)],
  ['config diff_ids is a string', withDocs({ config: cfgWith({ rootfs: { type: 'layers', diff_ids: 'x' } }) }), new RegExp(`${C}: field rootfs\\.diff_ids: must be an array, got string`)],
  ['config diff_id not a digest', withDocs({ config: cfgWith({ rootfs: { type: 'layers', diff_ids: ['sha256:xyz'] } }) }), new RegExp(`${C}: field rootfs\\.diff_ids\\[0\\]: must be a sha256 digest`)],
  ['config history is an object', withDocs({ config: cfgWith({ history: {} }) }), new RegExp(`${C}: field history: must be an array, got object`)],
  ['config 100k-deep field', withDocs({ configBytes: Buffer.from(`{"architecture":"amd64","os":"linux","x":${deepArray(100000)}}`) }), new RegExp(`${C}: nested more than \\d+ levels deep`)],
  ['index.json manifests is an object', withIndexJson({ schemaVersion: 2, manifests: {} }), /index\.json: field manifests: must be an array, got object/],
  ['index.json entry is a string', withIndexJson({ schemaVersion: 2, manifests: ['x'] }), /index\.json: field manifests\[0\]: must be an object, got string/],
  ['index.json entry platform.os is an object', withIndexJson({ schemaVersion: 2, manifests: [{ ...base.manifest.desc, annotations: ann, platform: { os: {}, architecture: 'amd64' } }] }), /index\.json: field manifests\[0\]\.platform\.os: must be a string, got object/],
  ['index.json entry platform.architecture is a number', withIndexJson({ schemaVersion: 2, manifests: [{ ...base.manifest.desc, annotations: ann, platform: { os: 'linux', architecture: 5 } }] }), /index\.json: field manifests\[0\]\.platform\.architecture: must be a string, got number/],
  ['index.json is an array', withIndexJson([]), /index\.json: must be a JSON object, got array/],
  ['index.json 100k-deep array', withIndexJson(deepArray(100000)), /index\.json: nested more than \d+ levels deep/],
  ['index.json 100k-deep manifests', withIndexJson(Buffer.from(`{"schemaVersion":2,"manifests":${deepArray(100000)}}`)), /index\.json: nested more than \d+ levels deep/],
  ['nested index 100 deep', nestedIndexes(100), /index sha256:[0-9a-f]{64}: indexes nested more than 8 deep/],
  ['oci-layout is an array', tar([{ name: 'oci-layout', data: '[]' }, ...imageBlobs(base), { name: 'index.json', data: JSON.stringify({ schemaVersion: 2, manifests: [base.manifest.desc] }) }]), /oci-layout: must be a JSON object, got array/],
  ['oci-layout version is a number', tar([{ name: 'oci-layout', data: '{"imageLayoutVersion":1}' }, ...imageBlobs(base), { name: 'index.json', data: JSON.stringify({ schemaVersion: 2, manifests: [base.manifest.desc] }) }]), /oci-layout: field imageLayoutVersion: must be a string, got number/],
  ['manifest.json entry is a string', dockerWith(['x']), /manifest\.json: field \[0\]: must be an object, got string/],
  ['manifest.json Layers is a string', dockerWith([{ Config: 'c.json', RepoTags: ['a:1'], Layers: 'l.tar.gz' }], goodConfig), /manifest\.json: field \[0\]\.Layers: must be an array, got string/],
  ['manifest.json RepoTags has a number', dockerWith([{ Config: 'c.json', RepoTags: [1], Layers: ['l.tar.gz'] }], goodConfig), /manifest\.json: field \[0\]\.RepoTags\[0\]: must be a string, got number/],
  ['manifest.json Config is a number', dockerWith([{ Config: 5, RepoTags: null, Layers: ['l.tar.gz'] }], goodConfig), /manifest\.json: field \[0\]\.Config: must be a string, got number/],
  ['manifest.json is an object', dockerWith({ Config: 'c.json' }), /manifest\.json: must be a JSON array, got object/],
  ['docker config architecture is an object', dockerWith([{ Config: 'c.json', RepoTags: ['a:1'], Layers: ['l.tar.gz'] }], cfgWith({ architecture: {} })), /config "c\.json": field architecture: must be a string, got object/],
  ['docker config is an array', dockerWith([{ Config: 'c.json', RepoTags: ['a:1'], Layers: ['l.tar.gz'] }], []), /(config "c\.json"|c\.json): must be a JSON object/],
];

/** What is wrong with a hostile document's stderr (empty when it is a clean refusal). */
function stderrIssues(stderr: string, re: RegExp): string[] {
  const err = ownStderr(stderr);
  const out: string[] = [];
  if (!/^imgtool: error: /m.test(err)) out.push('no "imgtool: error:" line');
  // The document and the field are named on a single line.
  if (!err.split('\n').some((l) => re.test(l))) out.push(`no line matches ${re}`);
  for (const bad of [/undefined/, /\n\s+at .*:\d+:\d+/, /Maximum call stack/, /TypeError|RangeError|SyntaxError/, /is not a function/, /Cannot read prop/, /\[object Object\]/, /\/ingest\//]) {
    if (bad.test(err)) out.push(`stderr matches ${bad}`);
  }
  return out.length ? [...out, `stderr was: ${JSON.stringify(err.slice(0, 400))}`] : [];
}

/** Run `fn` over `items`, two at a time (the machine is shared). */
async function pool<T>(items: T[], fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all([0, 1].map(async () => {
    while (next < items.length) await fn(items[next++]);
  }));
}

describe('hostile documents (CLI)', () => {
  let dir: string;
  beforeAll(() => {
    dir = tmpDir('imgtool-hostile-docs-');
  });
  afterAll(() => rmrf(dir));

  it('the good base archive loads (the table changes one thing each)', async () => {
    const f = path.join(dir, 'good.tar');
    fs.writeFileSync(f, ociImageArchive(base, NAME));
    const root = path.join(dir, 'good-store');
    const r = await runCli(['load', '-i', f], { root });
    expect(ownStderr(r.stderr)).toBe('');
    expect(r.code).toBe(0);
  });

  for (const cmd of ['load', 'load --no-unpack', 'verify', 'ls-archive'] as const) {
    it(`${cmd}: each hostile document is refused with one clear line naming the document and field`, async () => {
      const failures: string[] = [];
      await pool(cases.map((c, i) => [i, ...c] as const), async ([i, label, archive, re]) => {
        const f = path.join(dir, `case-${cmd.replace(/\W/g, '')}-${i}.tar`);
        fs.writeFileSync(f, archive);
        const root = path.join(dir, `store-${cmd.replace(/\W/g, '')}-${i}`);
        const args = cmd === 'load' ? ['load', '-i', f] : cmd === 'load --no-unpack' ? ['load', '--no-unpack', '-i', f] : [cmd, f];
        const r = await runCli(args, { root, timeoutMs: 60_000 });
        const issues = r.code === 0 ? ['exit code 0'] : stderrIssues(r.stderr, re);
        if (cmd.startsWith('load')) {
          const imgs = await runCli(['images', '--json'], { root });
          if (imgs.code !== 0) issues.push(`images failed afterwards: ${imgs.stderr.trim()}`);
          else if (JSON.parse(imgs.stdout).length) issues.push(`registered: ${imgs.stdout.replace(/\s+/g, ' ')}`);
        }
        if (issues.length) failures.push(`${cmd}: ${label}: ${issues.join('; ')}`);
      });
      expect(failures).toEqual([]);
    }, 600_000);
  }
});

describe('a store holding a hostile document (planted directly)', () => {
  let dir: string;
  let root: string;
  beforeEach(() => {
    dir = tmpDir('imgtool-planted-');
    root = path.join(dir, 'store');
  });
  afterEach(() => rmrf(dir));

  /** Load a good image, then plant `bad` (its manifest, config and layer) under `x.io/bad:1`. */
  async function plant(bad: { manifest: Buffer; config: Buffer; platform?: unknown }): Promise<void> {
    const f = path.join(dir, 'good.tar');
    fs.writeFileSync(f, ociImageArchive(makeImage({ layers: [makeLayer({ 'etc/good': 'good\n' })] }), 'x.io/good:1'));
    expect((await runCli(['load', '-i', f], { root })).code).toBe(0);
    const s = Store.open(root);
    try {
      await s.content.ingestBuffer(layer.blob);
      await s.content.ingestBuffer(bad.config);
      const m = await s.content.ingestBuffer(bad.manifest);
      s.images.put('x.io/bad:1', { mediaType: MediaType.OCI_MANIFEST, digest: m.digest, size: m.size });
    } finally {
      s.close();
    }
  }

  const badConfig = (patch: Record<string, unknown>) => {
    const cfg = Buffer.from(JSON.stringify(cfgWith(patch)));
    const cd = doc(MediaType.OCI_CONFIG, cfg);
    return { config: cfg, manifest: Buffer.from(JSON.stringify({ ...goodManifest, config: cd.desc })) };
  };

  const planted: Array<[string, () => { manifest: Buffer; config: Buffer }, RegExp]> = [
    ['config architecture is an object', () => badConfig({ architecture: {} }), new RegExp(`${C}: field architecture: must be a string, got object`)],
    ['config os is a number', () => badConfig({ os: 5 }), new RegExp(`${C}: field os: must be a string, got number`)],
    ['manifest layer is a string', () => ({ config: base.config.bytes, manifest: Buffer.from(JSON.stringify({ ...goodManifest, layers: ['x'] })) }), new RegExp(`${M}: field layers\\[0\\]: must be an object, got string`)],
    ['manifest layer size is "12"', () => ({ config: base.config.bytes, manifest: Buffer.from(JSON.stringify({ ...goodManifest, layers: [{ ...layer.desc, size: '12' }] })) }), new RegExp(`${M}: field layers\\[0\\]\\.size: must be an integer`)],
  ];

  for (const [label, make, re] of planted) {
    it(`${label}: images lists the other image (and names the bad one); fsck reports just that image`, async () => {
      await plant(make());
      const imgs = await runCli(['images', '--json'], { root });
      expect(ownStderr(imgs.stderr)).not.toMatch(/undefined|is not a function|TypeError|\n\s+at /);
      expect(imgs.code).toBe(0);
      const rows = JSON.parse(imgs.stdout) as Array<{ name: string; unreadable?: string }>;
      expect(rows.map((r) => r.name).sort()).toEqual(['x.io/bad:1', 'x.io/good:1']);
      expect(rows.find((r) => r.name === 'x.io/good:1')!.unreadable).toBeUndefined();
      expect(rows.find((r) => r.name === 'x.io/bad:1')!.unreadable).toMatch(re);
      const human = await runCli(['images'], { root });
      expect(human.code).toBe(0);
      expect(human.stdout).toMatch(/x\.io\/good:1/);
      expect(ownStderr(human.stderr)).toMatch(new RegExp(`x\\.io/bad:1.*${re.source}`));

      const f = await runCli(['fsck', '--json'], { root });
      expect(f.code).not.toBe(0);
      const j = JSON.parse(f.stdout) as { problems: Array<{ kind: string; subject: string; message: string }> };
      const errs = j.problems.filter((p) => (p as { severity?: string }).severity === 'error');
      expect(errs.map((p) => [p.kind, p.subject])).toEqual([['image-unreadable', 'x.io/bad:1']]);
      expect(errs[0].message).toMatch(re);
      expect(errs[0].message).not.toMatch(/undefined|is not a function|\n/);

      // The other image is still fully usable.
      const out = path.join(dir, 'out.tar');
      const save = await runCli(['save', '-o', out, 'x.io/good:1'], { root });
      expect(ownStderr(save.stderr)).not.toMatch(/error/);
      expect(save.code).toBe(0);
    }, 120_000);
  }
});

