/**
 * Small deterministic images written straight into a store, for the export tests
 * (unit, CLI and interop). Layers are real tars (gzip/zstd/none) with correct diffIDs.
 */
import * as zlib from 'node:zlib';
import * as fs from 'node:fs';
import { Readable } from 'node:stream';
import * as tar from 'tar-stream';
import { Store, Descriptor, MediaType, Platform, sha256 } from '../../../src';
import { compressStream } from '../../../src/compression/codecs';
import { Annotation } from '../../../src/images/types';
import { layerMediaType } from '../../../src/images/mediatypes';

export type LayerCompression = 'gzip' | 'zstd' | 'none';

export async function collect(stream: AsyncIterable<Buffer | Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

/** A deterministic tar of `files` (path -> content). */
export async function tarOf(files: Record<string, string | Buffer>): Promise<Buffer> {
  const pack = tar.pack();
  const done = collect(pack as unknown as AsyncIterable<Buffer>);
  for (const name of Object.keys(files).sort()) {
    const data = Buffer.isBuffer(files[name]) ? (files[name] as Buffer) : Buffer.from(files[name] as string);
    await new Promise<void>((res, rej) => pack.entry({ name, mode: 0o644, mtime: new Date(0), uid: 0, gid: 0 }, data, (e) => (e ? rej(e) : res())));
  }
  pack.finalize();
  return done;
}

export async function compress(data: Buffer, c: LayerCompression): Promise<Buffer> {
  if (c === 'none') return data;
  if (c === 'gzip') return zlib.gzipSync(data, { level: 6 });
  return collect(Readable.from([data]).pipe(compressStream('zstd')));
}

export interface FixtureLayer {
  desc: Descriptor;
  diffId: string;
  tar: Buffer;
}

/** Store a layer (and record it as a variant). */
export async function addLayer(store: Store, files: Record<string, string | Buffer>, c: LayerCompression = 'gzip', docker = false): Promise<FixtureLayer> {
  const t = await tarOf(files);
  const diffId = sha256(t);
  const blob = await compress(t, c);
  const info = await store.content.ingestBuffer(blob);
  const desc: Descriptor = { mediaType: layerMediaType(c, !docker), digest: info.digest, size: info.size };
  store.variants.recordProof({ digest: info.digest, diffId, compression: c, size: info.size, mediaType: desc.mediaType });
  return { desc, diffId, tar: t };
}

/** Store a variant of an existing layer in another compression (as a converter would). */
export async function addVariant(store: Store, layer: FixtureLayer, c: LayerCompression): Promise<Descriptor> {
  const blob = await compress(layer.tar, c);
  const info = await store.content.ingestBuffer(blob);
  store.variants.recordProof({ digest: info.digest, diffId: layer.diffId, compression: c, size: info.size, mediaType: layerMediaType(c, true) });
  return { mediaType: layerMediaType(c, true), digest: info.digest, size: info.size };
}

export interface FixtureImage {
  manifest: Descriptor;
  config: Descriptor;
  layers: FixtureLayer[];
  platform: Platform;
}

export interface ImageSpec {
  platform?: Platform;
  /** Files of each layer, base first. */
  layers: Array<Record<string, string | Buffer>>;
  compression?: LayerCompression;
  docker?: boolean;
  /** Reuse already stored layers (shared base) before `layers`. */
  baseLayers?: FixtureLayer[];
  /** Extra config field to make configs differ. */
  label?: string;
}

export async function addImage(store: Store, spec: ImageSpec): Promise<FixtureImage> {
  const platform = spec.platform ?? { os: 'linux', architecture: 'amd64' };
  const docker = !!spec.docker;
  const layers: FixtureLayer[] = [...(spec.baseLayers ?? [])];
  for (const f of spec.layers) layers.push(await addLayer(store, f, spec.compression ?? 'gzip', docker));
  const config = {
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    created: '1970-01-01T00:00:00Z',
    config: { Env: ['PATH=/bin'], Labels: spec.label ? { fixture: spec.label } : undefined },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: layers.map(() => ({ created: '1970-01-01T00:00:00Z', created_by: 'fixture' })),
  };
  const cbuf = Buffer.from(JSON.stringify(config));
  const cinfo = await store.content.ingestBuffer(cbuf);
  const configDesc: Descriptor = { mediaType: docker ? MediaType.DOCKER_CONFIG : MediaType.OCI_CONFIG, digest: cinfo.digest, size: cinfo.size };
  const manifest = {
    schemaVersion: 2,
    mediaType: docker ? MediaType.DOCKER_MANIFEST : MediaType.OCI_MANIFEST,
    config: configDesc,
    layers: layers.map((l) => l.desc),
  };
  const mbuf = Buffer.from(JSON.stringify(manifest));
  const minfo = await store.content.ingestBuffer(mbuf);
  return {
    manifest: { mediaType: manifest.mediaType, digest: minfo.digest, size: minfo.size },
    config: configDesc,
    layers,
    platform,
  };
}

/** An attestation manifest (in-toto layer) describing `subject`. */
export async function addAttestation(store: Store, subject: Descriptor): Promise<Descriptor> {
  const statement = Buffer.from(JSON.stringify({ _type: 'https://in-toto.io/Statement/v0.1', subject: [{ digest: { sha256: subject.digest.slice(7) } }] }));
  const sinfo = await store.content.ingestBuffer(statement);
  const cfg = Buffer.from(JSON.stringify({ architecture: 'unknown', os: 'unknown', config: {}, rootfs: { type: 'layers', diff_ids: [sinfo.digest] } }));
  const cinfo = await store.content.ingestBuffer(cfg);
  const m = {
    schemaVersion: 2,
    mediaType: MediaType.OCI_MANIFEST,
    config: { mediaType: MediaType.OCI_CONFIG, digest: cinfo.digest, size: cinfo.size },
    layers: [{ mediaType: MediaType.IN_TOTO, digest: sinfo.digest, size: sinfo.size, annotations: { 'in-toto.io/predicate-type': 'https://slsa.dev/provenance/v0.2' } }],
  };
  const mbuf = Buffer.from(JSON.stringify(m));
  const minfo = await store.content.ingestBuffer(mbuf);
  return {
    mediaType: MediaType.OCI_MANIFEST, digest: minfo.digest, size: minfo.size,
    platform: { os: 'unknown', architecture: 'unknown' },
    annotations: { [Annotation.DOCKER_REFERENCE_TYPE]: 'attestation-manifest', [Annotation.DOCKER_REFERENCE_DIGEST]: subject.digest },
  };
}

/** Store an index over `images` (+ extra entries such as attestations). */
export async function addIndex(store: Store, images: FixtureImage[], extra: Descriptor[] = [], docker = false): Promise<Descriptor> {
  const idx = {
    schemaVersion: 2,
    mediaType: docker ? MediaType.DOCKER_MANIFEST_LIST : MediaType.OCI_INDEX,
    manifests: [...images.map((i) => ({ ...i.manifest, platform: i.platform })), ...extra],
  };
  const buf = Buffer.from(JSON.stringify(idx));
  const info = await store.content.ingestBuffer(buf);
  return { mediaType: idx.mediaType, digest: info.digest, size: info.size };
}

/** Remove a blob from the store (to make content absent). */
export function dropBlob(store: Store, digest: string): void {
  store.meta.write(() => store.content.deleteLocked(digest));
}

export interface TarEntry {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  mtime: number;
  size: number;
  data: Buffer;
}

/** Every entry of a tar (file path or buffer), in order. */
export async function readTar(src: string | Buffer): Promise<TarEntry[]> {
  const ex = tar.extract();
  const out: TarEntry[] = [];
  const done = (async () => {
    for await (const entry of ex as unknown as AsyncIterable<NodeJS.ReadableStream & { header: tar.Headers }>) {
      const data = await collect(entry as unknown as AsyncIterable<Buffer>);
      const h = entry.header;
      out.push({
        name: h.name, type: h.type ?? 'file', mode: h.mode ?? 0, uid: h.uid ?? 0, gid: h.gid ?? 0,
        uname: h.uname ?? '', gname: h.gname ?? '', mtime: h.mtime ? h.mtime.getTime() : 0, size: h.size ?? 0, data,
      });
    }
  })();
  const input = typeof src === 'string' ? fs.createReadStream(src) : Readable.from([src]);
  input.pipe(ex as unknown as NodeJS.WritableStream);
  await done;
  return out;
}

export function entryJSON<T = any>(entries: TarEntry[], name: string): T {
  const e = entries.find((x) => x.name === name);
  if (!e) throw new Error(`no ${name} in archive; entries: ${entries.map((x) => x.name).join(', ')}`);
  return JSON.parse(e.data.toString('utf8')) as T;
}
