import { Writable } from 'node:stream';
import { isDigest } from '../digest';
import { runInNode, RunInputResult, NodeCommandError } from './exec';

/**
 * containerd's `ctr` as KIND nodes have it (1.6 and later), driven through an exec template,
 * and parsers for its table output.
 */

export const K8S_NAMESPACE = 'k8s.io';
export const PINNED_LABEL = 'io.cri-containerd.pinned';
export const DEFAULT_SNAPSHOTTER = 'overlayfs';
const GC_CONTENT_PREFIX = 'containerd.io/gc.ref.content.';

/** A row of `ctr images ls`. */
export interface CtrImage {
  name: string;
  mediaType: string;
  digest: string;
}

/** A row of `ctr content ls`. */
export interface CtrBlob {
  digest: string;
  labels: Record<string, string>;
}

/** A row of `ctr images check`. */
export interface CtrImageCheck {
  name: string;
  mediaType: string;
  digest: string;
  /** `complete`, `incomplete`, … as ctr prints it. */
  status: string;
  complete: boolean;
  /** `(present/total)` blob counts for the host platform, as ctr counts them. */
  present?: number;
  total?: number;
  unpacked: boolean;
}

function dataLines(out: string, header: string): string[] {
  return out
    .split('\n')
    .map((l) => l.replace(/\r$/, ''))
    .filter((l) => l.trim() && !l.startsWith(header));
}

/** Parse `ctr images ls` (REF TYPE DIGEST SIZE PLATFORMS LABELS). */
export function parseImagesLs(out: string): CtrImage[] {
  const res: CtrImage[] = [];
  for (const l of dataLines(out, 'REF')) {
    const f = l.trim().split(/\s+/);
    if (f.length < 3 || !isDigest(f[2])) continue;
    res.push({ name: f[0], mediaType: f[1], digest: f[2] });
  }
  return res;
}

/**
 * Parse a LABELS cell: `k=v,k2=v2` or `-`. Values may themselves hold commas
 * (`containerd.io/distribution.source.docker.io=library/a,library/b`): a piece without `=`
 * continues the previous value.
 */
export function parseLabels(cell: string): Record<string, string> {
  const labels: Record<string, string> = {};
  const s = cell.trim();
  if (!s || s === '-') return labels;
  let lastKey: string | undefined;
  for (const piece of s.split(',')) {
    const eq = piece.indexOf('=');
    if (eq > 0) {
      lastKey = piece.slice(0, eq);
      labels[lastKey] = piece.slice(eq + 1);
    } else if (lastKey !== undefined) {
      labels[lastKey] += ',' + piece;
    }
  }
  return labels;
}

/** Parse `ctr content ls` (DIGEST SIZE AGE LABELS, tab-separated; AGE holds spaces). */
export function parseContentLs(out: string): CtrBlob[] {
  const res: CtrBlob[] = [];
  for (const l of dataLines(out, 'DIGEST')) {
    const f = l.split(/\t+/);
    const digest = f[0].trim();
    if (!isDigest(digest)) continue;
    res.push({ digest, labels: f.length >= 4 ? parseLabels(f.slice(3).join('\t')) : {} });
  }
  return res;
}

/** Parse `ctr images check` (REF TYPE DIGEST STATUS SIZE UNPACKED; STATUS like `complete (3/3)`). */
export function parseImagesCheck(out: string): CtrImageCheck[] {
  const res: CtrImageCheck[] = [];
  for (const l of dataLines(out, 'REF')) {
    const f = l.trim().split(/\s+/);
    if (f.length < 4 || !isDigest(f[2])) continue;
    const row: CtrImageCheck = {
      name: f[0], mediaType: f[1], digest: f[2], status: f[3], complete: f[3] === 'complete',
      unpacked: f[f.length - 1] === 'true',
    };
    const m = f[4] ? /^\((\d+)\/(\d+)\)$/.exec(f[4]) : null;
    if (m) {
      row.present = Number(m[1]);
      row.total = Number(m[2]);
    }
    res.push(row);
  }
  return res;
}

/**
 * Blobs of the node that containerd's garbage collector keeps because of its images: each image
 * target, and everything reachable from it through `containerd.io/gc.ref.content.*` labels —
 * restricted to blobs actually present. Only these may be left out of a delta stream.
 */
export function reachableBlobs(images: CtrImage[], blobs: CtrBlob[]): Set<string> {
  const byDigest = new Map(blobs.map((b) => [b.digest, b]));
  const seen = new Set<string>();
  const stack = images.map((i) => i.digest);
  while (stack.length) {
    const d = stack.pop()!;
    if (seen.has(d)) continue;
    const b = byDigest.get(d);
    if (!b) continue;
    seen.add(d);
    for (const [k, v] of Object.entries(b.labels)) {
      if (k.startsWith(GC_CONTENT_PREFIX) && isDigest(v) && !seen.has(v)) stack.push(v);
    }
  }
  return seen;
}

// ---------------------------------------------------------------------------------------------
// containerd config: just enough TOML for `containerd config dump`.

type TomlValue = string | number | boolean | TomlValue[];

/** Split a dotted TOML key (`plugins."io.containerd.grpc.v1.cri".containerd`) into its parts. */
export function splitTomlKey(s: string): string[] {
  const parts: string[] = [];
  let i = 0;
  const src = s.trim();
  while (i < src.length) {
    while (src[i] === ' ' || src[i] === '\t') i++;
    let part = '';
    if (src[i] === '"' || src[i] === "'") {
      const q = src[i];
      i++;
      while (i < src.length && src[i] !== q) {
        if (q === '"' && src[i] === '\\' && i + 1 < src.length) {
          part += src[i + 1];
          i += 2;
          continue;
        }
        part += src[i++];
      }
      i++;
    } else {
      while (i < src.length && src[i] !== '.' && src[i] !== ' ' && src[i] !== '\t') part += src[i++];
    }
    parts.push(part);
    while (src[i] === ' ' || src[i] === '\t') i++;
    if (src[i] === '.') i++;
  }
  return parts;
}

function parseTomlValue(raw: string): TomlValue {
  const v = raw.trim();
  if (v.startsWith('"')) {
    let out = '';
    for (let i = 1; i < v.length; i++) {
      if (v[i] === '\\' && i + 1 < v.length) {
        const e = v[++i];
        out += e === 'n' ? '\n' : e === 't' ? '\t' : e;
        continue;
      }
      if (v[i] === '"') break;
      out += v[i];
    }
    return out;
  }
  if (v.startsWith("'")) return v.slice(1, v.indexOf("'", 1) < 0 ? undefined : v.indexOf("'", 1));
  if (v === 'true' || v === 'false') return v === 'true';
  if (/^[+-]?\d+$/.test(v)) return Number(v);
  return v;
}

/**
 * Flat view of a TOML document: `path\0to\0key` → scalar value. Tables (`[a."b.c"]`) set the
 * prefix; arrays of tables and multi-line values are skipped (config dump needs neither here).
 */
export function parseTomlFlat(text: string): Map<string, TomlValue> {
  const out = new Map<string, TomlValue>();
  let table: string[] | null = [];
  for (const rawLine of text.split('\n')) {
    const line = rawLine.trim();
    if (!line || line.startsWith('#')) continue;
    if (line.startsWith('[[')) {
      table = null; // array of tables: not needed
      continue;
    }
    if (line.startsWith('[')) {
      const end = line.lastIndexOf(']');
      table = splitTomlKey(line.slice(1, end < 0 ? undefined : end));
      continue;
    }
    if (table === null) continue;
    const eq = findAssign(line);
    if (eq < 0) continue;
    const key = splitTomlKey(line.slice(0, eq));
    const value = line.slice(eq + 1).trim();
    if (value.startsWith('[') || value.startsWith('{')) continue;
    out.set([...table, ...key].join('\0'), parseTomlValue(stripComment(value)));
  }
  return out;
}

/** Index of the `=` that separates key from value (outside quotes). */
function findAssign(line: string): number {
  let q: string | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (q) {
      if (c === q) q = null;
    } else if (c === '"' || c === "'") q = c;
    else if (c === '=') return i;
  }
  return -1;
}

function stripComment(v: string): string {
  let q: string | null = null;
  for (let i = 0; i < v.length; i++) {
    const c = v[i];
    if (q) {
      if (c === '\\' && q === '"') i++;
      else if (c === q) q = null;
    } else if (c === '"' || c === "'") q = c;
    else if (c === '#') return v.slice(0, i).trim();
  }
  return v;
}

/**
 * The CRI snapshotter from `containerd config dump`, as KIND reads it: config version 2:
 * `plugins."io.containerd.grpc.v1.cri".containerd.snapshotter`; versions 3/4:
 * `plugins."io.containerd.cri.v1.images".snapshotter`; version 1: `plugins.cri.containerd.snapshotter`.
 * Default `overlayfs`.
 */
export function parseSnapshotter(configDump: string): string {
  const t = parseTomlFlat(configDump);
  const get = (...p: string[]) => {
    const v = t.get(p.join('\0'));
    return typeof v === 'string' && v ? v : undefined;
  };
  const version = t.get('version');
  const v2 = () => get('plugins', 'io.containerd.grpc.v1.cri', 'containerd', 'snapshotter');
  const v3 = () => get('plugins', 'io.containerd.cri.v1.images', 'snapshotter');
  const v1 = () => get('plugins', 'cri', 'containerd', 'snapshotter');
  let s: string | undefined;
  if (version === 2) s = v2();
  else if (typeof version === 'number' && version >= 3) s = v3();
  else s = v1();
  return s ?? v2() ?? v3() ?? v1() ?? DEFAULT_SNAPSHOTTER;
}

// ---------------------------------------------------------------------------------------------

export interface ImportFlags {
  snapshotter?: string;
  noUnpack?: boolean;
  allPlatforms?: boolean;
  digests?: boolean;
}

/** `ctr` in one node, namespace k8s.io, through an exec template. */
export class NodeCtr {
  constructor(
    readonly template: string,
    readonly node: string,
    readonly namespace: string = K8S_NAMESPACE,
  ) {}

  private ctr(args: string[], opts: Parameters<typeof runInNode>[3] = {}): Promise<RunInputResult> {
    return runInNode(this.template, this.node, ['ctr', `--namespace=${this.namespace}`, ...args], opts);
  }

  async listImages(): Promise<CtrImage[]> {
    return parseImagesLs((await this.ctr(['images', 'ls'])).stdout);
  }

  async listContent(): Promise<CtrBlob[]> {
    return parseContentLs((await this.ctr(['content', 'ls'])).stdout);
  }

  /**
   * `ctr images check` for the named images (all when `names` is empty). ctr exits 1 when an
   * index has no manifest for the node's platform but still prints its table (status
   * `unavailable`): those rows are returned as they are.
   */
  async checkImages(names: string[] = []): Promise<CtrImageCheck[]> {
    const filters = names.map((n) => `name==${JSON.stringify(n)}`);
    try {
      return parseImagesCheck((await this.ctr(['images', 'check', ...filters])).stdout);
    } catch (e) {
      if (e instanceof NodeCommandError && e.exitCode !== null) {
        const rows = parseImagesCheck(e.stdout);
        if (rows.length) return rows;
      }
      throw e;
    }
  }

  /** `containerd config dump` in the node → its CRI snapshotter. */
  async snapshotter(): Promise<string> {
    const r = await runInNode(this.template, this.node, ['containerd', 'config', 'dump']);
    return parseSnapshotter(r.stdout);
  }

  /** `ctr images import [flags] -` with the archive streamed on stdin by `write`. */
  importArchive(write: (stdin: Writable) => Promise<void>, flags: ImportFlags, onBytes?: (n: number) => void): Promise<RunInputResult> {
    const args = ['images', 'import'];
    if (flags.noUnpack) args.push('--no-unpack');
    if (flags.allPlatforms !== false) args.push('--all-platforms');
    if (flags.digests !== false) args.push('--digests');
    if (flags.snapshotter) args.push(`--snapshotter=${flags.snapshotter}`);
    args.push('-');
    return this.ctr(args, { input: write, onInputBytes: onBytes });
  }

  async tag(source: string, target: string): Promise<void> {
    await this.ctr(['images', 'tag', '--force', source, target]);
  }

  async label(name: string, key: string, value: string): Promise<void> {
    await this.ctr(['images', 'label', name, `${key}=${value}`]);
  }
}
