/**
 * Delta archives (issue 14): `have` on the receiver, `save --have/--exclude` on the sender,
 * `load` completing the closure from the store, `verify` reporting a delta as such.
 * Base B (2 layers), app A = B + one layer. Source S holds both; target T loads B only.
 */
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import * as path from 'node:path';
import { Store, saveImages, loadArchive, verifyArchive, MissingContentError, ImgtoolError } from '../../../src';
import type { LayerResolver } from '../../../src';
import { buildInventory, parseInventory, inventoryBytes, deltaExpects } from '../../../src/archive/have';
import type { Inventory } from '../../../src/archive/have';
import { tmpDir, rmrf } from '../../helpers/cli';
import { addImage, addVariant, dropBlob, readTar, entryJSON, FixtureImage } from './export-fixtures';

const host = { os: 'linux', architecture: 'amd64' };
const B = 'docker.io/library/base:1';
const A = 'docker.io/library/app:1';

describe('delta archives', () => {
  let dir: string;
  let src: Store;
  let dst: Store;
  let base: FixtureImage;
  let app: FixtureImage;
  const file = (n: string) => path.join(dir, n);
  beforeEach(async () => {
    dir = tmpDir('imgtool-delta-');
    src = Store.open(file('src'));
    dst = Store.open(file('dst'));
    base = await addImage(src, { layers: [{ 'bin/sh': 'shell' }, { 'etc/os-release': 'base' }], label: 'base' });
    src.images.put(B, base.manifest);
    app = await addImage(src, { baseLayers: base.layers, layers: [{ 'app/run': 'app v1' }], label: 'app' });
    src.images.put(A, app.manifest);
    await saveImages(src, [B], { output: file('base.tar'), host });
    await loadArchive(dst, file('base.tar'), { unpack: false });
    await saveImages(src, [A], { output: file('full-src.tar'), host });
  });
  afterEach(() => {
    src.close();
    dst.close();
    rmrf(dir);
  });

  const blobEntries = async (tar: string) => (await readTar(tar)).filter((e) => e.type === 'file' && e.name.startsWith('blobs/')).map((e) => 'sha256:' + e.name.slice(13)).sort();
  const baseLayers = () => base.layers.map((l) => l.desc.digest).sort();
  /** Never asked: a sender must not produce a blob the receiver holds. */
  const refusing: LayerResolver = { resolveLayer: async (r) => { throw new Error(`resolver asked for ${r.layer.digest}`); } };

  it('have: a deterministic inventory of the complete images, with versions', async () => {
    const inv = await buildInventory(dst);
    expect(inv.format).toBe('imgtool-have');
    expect(inv.formatVersion).toBe(1);
    expect(inv.imgtool).toMatch(/^\d+\.\d+/);
    expect(inv.images).toEqual([{ name: B, digest: base.manifest.digest }]);
    const want = [base.manifest, base.config, ...base.layers.map((l) => l.desc)].map((d) => ({ digest: d.digest, size: d.size }))
      .sort((a, b) => (a.digest < b.digest ? -1 : 1));
    expect(inv.blobs).toEqual(want);
    expect(inventoryBytes(await buildInventory(dst)).equals(inventoryBytes(inv))).toBe(true);
    expect(parseInventory(inventoryBytes(inv), 'x')).toEqual(inv);
    // An incomplete image is not listed by default; named, it lists what it has.
    dropBlob(dst, base.layers[0].desc.digest);
    expect((await buildInventory(dst)).blobs).toEqual([]);
    const warnings: string[] = [];
    const named = await buildInventory(dst, [B], { warn: (m) => warnings.push(m) });
    expect(named.blobs.map((b) => b.digest)).not.toContain(base.layers[0].desc.digest);
    expect(named.blobs).toHaveLength(3);
    expect(warnings.join('\n')).toContain(base.layers[0].desc.digest);
  });

  it('rejects a malformed inventory with one clear line', () => {
    expect(() => parseInventory('{"format":"imgtool-have","formatVersion":1,"blobs":[{"digest":"sha256:zz","size":1}]}', 'f.json')).toThrow(/inventory f.json: blob 0: digest is not a sha256 digest/);
    expect(() => parseInventory('{"format":"imgtool-have","formatVersion":9,"blobs":[]}', 'f.json')).toThrow(/format version 9 is not supported/);
    expect(() => parseInventory('[]', 'f.json')).toThrow(ImgtoolError);
  });

  async function checkDelta(opts: { have?: Inventory; exclude?: string[] }) {
    const res = await saveImages(src, [A], { output: file('delta.tar'), host, layerResolver: refusing, ...opts });
    const held = await blobEntries(file('delta.tar'));
    expect(held).toEqual([app.manifest.digest, app.config.digest, app.layers[2].desc.digest].sort());
    for (const l of baseLayers()) expect(held).not.toContain(l);
    expect(res.expects).toEqual(baseLayers());
    expect(res.omittedBytes).toBe(base.layers.reduce((n, l) => n + l.desc.size, 0));
    const index = entryJSON(await readTar(file('delta.tar')), 'index.json');
    expect(deltaExpects(Buffer.from(JSON.stringify(index)))).toEqual(baseLayers());
    expect(index.annotations['io.imgtool.delta.version']).toBe('1');

    const v = await verifyArchive(file('delta.tar'));
    expect(v.problems).toEqual([]);
    expect(v.ok).toBe(true);
    expect(v.delta?.expects).toEqual(baseLayers());
    expect(v.delta?.referenced.map((r) => r.digest)).toEqual(baseLayers());

    const loaded = await loadArchive(dst, file('delta.tar'), { unpack: false });
    expect(loaded.delta?.expects).toEqual(baseLayers());
    expect(loaded.images.map((i) => i.names)).toEqual([[A]]);
    await saveImages(dst, [A], { output: file('full-dst.tar'), host });
    expect(fs.readFileSync(file('full-dst.tar')).equals(fs.readFileSync(file('full-src.tar')))).toBe(true);
  }

  it('save --have leaves out what the receiver holds; the load completes it; full saves match', async () => {
    await checkDelta({ have: await buildInventory(dst) });
  });

  it('save --exclude BASE gives the same delta', async () => {
    await checkDelta({ exclude: [B] });
  });

  it('a sender that discarded a base layer does not rebuild it for a delta', async () => {
    dropBlob(src, base.layers[0].desc.digest);
    await checkDelta({ have: await buildInventory(dst) });
  });

  it('blobs of a delta are the bytes of a full save', async () => {
    await saveImages(src, [A], { output: file('delta.tar'), host, exclude: [B] });
    await saveImages(src, [A], { output: file('full.tar'), host });
    const full = new Map((await readTar(file('full.tar'))).map((e) => [e.name, e.data]));
    for (const e of (await readTar(file('delta.tar'))).filter((x) => x.name.startsWith('blobs/sha256/') && x.type === 'file')) {
      expect(e.data.equals(full.get(e.name)!)).toBe(true);
    }
  });

  it('a delta loaded into an empty store fails naming every missing blob, registers nothing, keeps nothing', async () => {
    await saveImages(src, [A], { output: file('delta.tar'), host, exclude: [B] });
    const empty = Store.open(file('empty'));
    try {
      const err = await loadArchive(empty, file('delta.tar'), { unpack: false }).catch((e) => e);
      expect(err).toBeInstanceOf(MissingContentError);
      expect(err.message).toMatch(/^delta archive .*delta\.tar: 2 blob\(s\) it leaves out are not in the store/);
      expect(err.message).toContain('nothing loaded');
      const all = [err.message, ...err.details].join('\n');
      for (const [i, l] of base.layers.entries()) {
        expect(all).toContain(l.desc.digest);
        expect(err.details.some((d: string) => d.includes(`layer ${i + 1} ${l.desc.digest}`) && d.includes(A))).toBe(true);
      }
      expect(empty.images.list()).toEqual([]);
      expect(empty.content.list()).toEqual([]);
    } finally {
      empty.close();
    }
  });

  it('a failed load keeps blobs that were in the store before, and blobs an image holds', async () => {
    await saveImages(src, [A], { output: file('delta.tar'), host, exclude: [B] });
    const other = Store.open(file('other'));
    try {
      // The config was there before this load: it stays; nothing else is kept.
      await other.content.ingestBuffer(await src.content.readBuffer(app.config.digest));
      await expect(loadArchive(other, file('delta.tar'), { unpack: false })).rejects.toThrow(MissingContentError);
      expect(other.content.list().map((b) => b.digest)).toEqual([app.config.digest]);
    } finally {
      other.close();
    }
  });

  it('load never trusts the annotation: a blob the store holds with another size than the manifest names fails', async () => {
    // The manifest names layer 0 with a wrong size; the receiver holds the real blob.
    const bad = await addImage(src, { baseLayers: [{ ...base.layers[0], desc: { ...base.layers[0].desc, size: base.layers[0].desc.size + 1 } }], layers: [{ 'x': 'y' }], label: 'bad' });
    src.images.put('docker.io/library/bad:1', bad.manifest);
    dropBlob(src, base.layers[0].desc.digest);
    await saveImages(src, ['docker.io/library/bad:1'], { output: file('bad.tar'), host, omitBlobs: new Set([base.layers[0].desc.digest]) });
    const err = await loadArchive(dst, file('bad.tar'), { unpack: false }).catch((e) => e);
    expect(err).toBeInstanceOf(ImgtoolError);
    expect([err.message, ...err.details].join('\n')).toMatch(new RegExp(`${base.layers[0].desc.digest} is ${base.layers[0].desc.size} bytes, but a descriptor declares ${base.layers[0].desc.size + 1}`));
    expect(dst.images.get('docker.io/library/bad:1')).toBeUndefined();
  });

  it('verify --have checks the expectations against an inventory', async () => {
    await saveImages(src, [A], { output: file('delta.tar'), host, exclude: [B] });
    const inv = await buildInventory(dst);
    expect((await verifyArchive(file('delta.tar'), { have: inv })).ok).toBe(true);
    const short = { ...inv, blobs: inv.blobs.filter((b) => b.digest !== base.layers[1].desc.digest) };
    const r = await verifyArchive(file('delta.tar'), { have: short });
    expect(r.ok).toBe(false);
    expect(r.problems).toEqual([expect.stringContaining(`${base.layers[1].desc.digest} is expected of the receiver, but the inventory does not list it`)]);
  });

  it('under keep, a delta whose manifest would change is refused', async () => {
    // The top layer is absent; the resolver produces another gzip blob for it (other level), so the manifest would change.
    const alt = await src.content.ingestBuffer(zlib.gzipSync(app.layers[2].tar, { level: 1 }));
    dropBlob(src, app.layers[2].desc.digest);
    const resolver: LayerResolver = { resolveLayer: async (r) => ({ mediaType: r.layer.mediaType, digest: alt.digest, size: alt.size }) };
    const err = await saveImages(src, [A], { output: file('d.tar'), host, exclude: [B], layerResolver: resolver }).catch((e) => e);
    expect(err).toBeInstanceOf(ImgtoolError);
    expect(err.message).toMatch(new RegExp(`manifest ${app.manifest.digest} would change .* cannot be sent as a delta`));
    expect(fs.existsSync(file('d.tar'))).toBe(false);
    // A full save may rewrite it (old -> new reported).
    const full = await saveImages(src, [A], { output: file('f.tar'), host, layerResolver: resolver });
    expect(full.changes).toHaveLength(1);
  });

  it('with --compression, the omitted set applies to the written manifests (held variants are not produced)', async () => {
    // The receiver holds B as zstd (as a `save --compression zstd` of B gives it).
    const z = await Promise.all(base.layers.map((l) => addVariant(src, l, 'zstd')));
    await saveImages(src, [B], { output: file('bz.tar'), host, compression: 'zstd' });
    const t2 = Store.open(file('t2'));
    try {
      await loadArchive(t2, file('bz.tar'), { unpack: false });
      const inv = await buildInventory(t2);
      for (const d of z) dropBlob(src, d.digest); // the sender no longer has them: it must not reconvert
      const res = await saveImages(src, [A], { output: file('dz.tar'), host, compression: 'zstd', have: inv });
      expect(res.expects).toEqual(z.map((d) => d.digest).sort());
      const held = await blobEntries(file('dz.tar'));
      for (const d of z) expect(held).not.toContain(d.digest);
    } finally {
      t2.close();
    }
  });

  it('a Docker-only delta is refused (nowhere to record the expectations)', async () => {
    await expect(saveImages(src, [A], { output: file('x.tar'), host, format: 'docker', exclude: [B] })).rejects.toThrow(/delta archive .* index\.json/);
  });
});
