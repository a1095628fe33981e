import { Writable } from 'node:stream';
import { Store } from '../store';
import { planSave, saveImages, SavePlan } from '../archive/export';
import { ResourceHolder } from '../content';
import { withCommandLease } from '../leases';
import { ImgtoolError, InvalidArgumentError } from '../errors';
import { Progress, silentProgress } from '../progress';
import { NodeCtr, CtrImage, CtrBlob, reachableBlobs, PINNED_LABEL } from './ctr';
import { DEFAULT_EXEC_TEMPLATE, NodeCommandError } from './exec';
import { discoverNodes, discoveryEngine } from './nodes';
import { archiveBytes } from './plan';

export interface KindLoadOptions {
  /** KIND cluster name: its nodes are found with `docker ps` (unless `nodes` is given). */
  cluster?: string;
  /** Node names to load into (skips discovery). */
  nodes?: string[];
  /** Prefix that runs a command in a node, `{node}` replaced (default `docker exec --privileged -i {node}`). */
  exec?: string;
  /** Send every blob of every image, skipping nothing. */
  full?: boolean;
  /** Label each image `io.cri-containerd.pinned=pinned` after loading (as `kind build node-image`). */
  pin?: boolean;
  /** Snapshotter to unpack with; default: read from the node's `containerd config dump`, as KIND does. */
  snapshotter?: string;
  progress?: Progress;
  /** Holds the blobs read against GC (default: a per-process lease). */
  lease?: ResourceHolder;
  leaseId?: string;
}

export type KindImageAction = 'skipped' | 'retagged' | 'imported';

export interface KindNodeImage {
  name: string;
  digest: string;
  action: KindImageAction;
  /** For `retagged`: the name on the node that already pointed at the digest. */
  from?: string;
}

export interface KindNodeResult {
  node: string;
  snapshotter: string;
  images: KindNodeImage[];
  /** Names skipped: already on the node with the same digest (and complete). */
  skipped: string[];
  /** Names created with `ctr images tag --force` from another name with the same digest. */
  retagged: Array<{ name: string; from: string }>;
  /** Names sent in an archive. */
  imported: string[];
  /** Archive bytes streamed into the node (all imports, fallback included). */
  bytesSent: number;
  /** Bytes of a full archive of all requested images (what `--full` or `kind load` would send). */
  fullBytes: number;
  /** Blobs left out of the delta stream because the node's images already hold them. */
  omittedBlobs: number;
  /** The delta was not enough (import failed or left an image incomplete): a full archive followed. */
  fallback?: string;
  /** Names labelled `io.cri-containerd.pinned=pinned`. */
  pinned: string[];
}

export interface KindLoadResult {
  cluster?: string;
  images: Array<{ name: string; digest: string }>;
  nodes: KindNodeResult[];
  bytesSent: number;
  fullBytes: number;
  warnings: string[];
}

/** One requested image with the archive-side view of it. */
interface Wanted {
  requested: string;
  name: string;
  /** Target digest the archive writes (may differ from the store's when an index is rewritten). */
  digest: string;
  /** Every blob the archive references for it. */
  blobs: Set<string>;
}

/** A failure on one or more nodes. Names every failed node. */
export class KindLoadError extends ImgtoolError {
  constructor(readonly failures: Array<{ node: string; error: unknown }>) {
    const msg = (e: unknown) => (e instanceof Error ? e.message : String(e));
    const first = failures[0];
    const line = (f: { node: string; error: unknown }) => (msg(f.error).includes(`node ${JSON.stringify(f.node)}`) ? msg(f.error) : `node ${JSON.stringify(f.node)}: ${msg(f.error)}`);
    super(
      first.error instanceof ImgtoolError ? first.error.code : 'PRECONDITION',
      failures.length === 1 ? `kind load: ${line(first)}` : `kind load failed on ${failures.length} nodes (${failures.map((f) => f.node).join(', ')}): ${line(first)}`,
      failures.length === 1 ? (first.error instanceof ImgtoolError ? first.error.details : []) : failures.map(line),
    );
    this.name = 'KindLoadError';
  }
}

/**
 * Load images from the store into the containerd of every node of a KIND cluster, as
 * `kind load` does (`ctr --namespace=k8s.io images import --all-platforms --digests
 * --snapshotter=S -`, the archive streamed on stdin, nodes in parallel) — but delta by default:
 * images a node has are skipped or retagged, and blobs reachable from the node's images are left
 * out of the stream. Every image must be complete on every node afterwards (`ctr images check`
 * and every blob of it in `ctr content ls`), else a full archive is sent.
 */
export async function kindLoad(store: Store, refs: string[], opts: KindLoadOptions = {}): Promise<KindLoadResult> {
  if (!refs.length) throw new InvalidArgumentError('no image to load');
  const template = opts.exec ?? DEFAULT_EXEC_TEMPLATE;
  if (!template.trim()) throw new InvalidArgumentError('empty --exec template');
  const progress = opts.progress ?? silentProgress;
  const run = async (lease: ResourceHolder): Promise<KindLoadResult> => {
    const warnings: string[] = [];
    const warn = (m: string) => {
      warnings.push(m);
      progress.warn(m);
    };
    // Plan before touching any node: a missing image or blob fails here.
    const plan = await planSave(store, refs, { progress: warningsTo(warn), lease, dockerWarnings: false });
    const wanted = await wantedImages(store, refs);
    const fullBytes = archiveBytes(plan);
    const nodes = opts.nodes?.length
      ? [...new Set(opts.nodes)]
      : await discoverNodes(requireCluster(opts.cluster), { engine: discoveryEngine(template) });

    const ctx: NodeContext = { store, refs, wanted, plan, fullBytes, template, opts, progress, warn, lease };
    const settled = await Promise.allSettled(nodes.map((n) => loadNode(ctx, n)));
    const failures: Array<{ node: string; error: unknown }> = [];
    const results: KindNodeResult[] = [];
    settled.forEach((s, i) => {
      if (s.status === 'fulfilled') results.push(s.value);
      else failures.push({ node: nodes[i], error: s.reason });
    });
    if (failures.length) throw new KindLoadError(failures);
    return {
      cluster: opts.cluster,
      images: plan.images.map((i) => ({ name: i.name, digest: i.digest })),
      nodes: results,
      bytesSent: results.reduce((s, r) => s + r.bytesSent, 0),
      fullBytes,
      warnings,
    };
  };
  if (opts.lease) return run(opts.lease);
  return withCommandLease(store, opts.leaseId, run);
}

function requireCluster(c: string | undefined): string {
  if (!c) throw new InvalidArgumentError('a cluster name (--name) or a node list (--nodes) is required');
  return c;
}

function warningsTo(warn: (m: string) => void): Progress {
  return { task: silentProgress.task, warn };
}

/** Archive name, target digest and blob closure of each requested image. */
async function wantedImages(store: Store, refs: string[]): Promise<Wanted[]> {
  const out = new Map<string, Wanted>();
  for (const r of refs) {
    const p = await planSave(store, [r], { dockerWarnings: false });
    const img = p.images[0];
    if (out.has(img.name)) continue;
    out.set(img.name, { requested: r, name: img.name, digest: img.digest, blobs: new Set(p.blobs.map((b) => b.digest)) });
  }
  return [...out.values()];
}

interface NodeContext {
  store: Store;
  refs: string[];
  wanted: Wanted[];
  plan: SavePlan;
  fullBytes: number;
  template: string;
  opts: KindLoadOptions;
  progress: Progress;
  warn: (m: string) => void;
  lease: ResourceHolder;
}

interface NodeState {
  images: CtrImage[];
  content: CtrBlob[];
}

async function nodeState(ctr: NodeCtr): Promise<NodeState> {
  // Images first: a blob listed by content ls after the image list cannot belong to an image
  // the list missed (an image added in between only makes more blobs reachable).
  const images = await ctr.listImages();
  const content = await ctr.listContent();
  return { images, content };
}

/** Which wanted images are complete on the node: ctr says complete and every blob is there. */
function incompleteOn(ctx: NodeContext, checks: Awaited<ReturnType<NodeCtr['checkImages']>>, content: CtrBlob[]): Array<{ w: Wanted; why: string }> {
  const present = new Set(content.map((b) => b.digest));
  const byName = new Map(checks.map((c) => [c.name, c]));
  const out: Array<{ w: Wanted; why: string }> = [];
  for (const w of ctx.wanted) {
    const c = byName.get(w.name);
    if (!c) {
      out.push({ w, why: `${w.name} is not on the node` });
      continue;
    }
    if (c.digest !== w.digest) {
      out.push({ w, why: `${w.name} is ${c.digest} on the node, not ${w.digest}` });
      continue;
    }
    const absent = [...w.blobs].filter((d) => !present.has(d));
    // `unavailable`: an index without the node's platform; ctr cannot judge it, the content list can.
    if (!c.complete && !(c.status === 'unavailable' && !absent.length)) {
      out.push({ w, why: `ctr images check: ${w.name} is ${c.status}${c.total !== undefined ? ` (${c.present}/${c.total})` : ''}` });
      continue;
    }
    if (absent.length) out.push({ w, why: `${w.name}: ${absent.length} blob(s) absent from the node's content store (first ${absent[0]})` });
  }
  return out;
}

async function loadNode(ctx: NodeContext, node: string): Promise<KindNodeResult> {
  const ctr = new NodeCtr(ctx.template, node);
  const full = !!ctx.opts.full;
  // Both queries at once; a failure is reported in a fixed order (snapshotter first).
  const [snap, st] = await Promise.allSettled([
    ctx.opts.snapshotter ? Promise.resolve(ctx.opts.snapshotter) : ctr.snapshotter(),
    full ? Promise.resolve<NodeState>({ images: [], content: [] }) : nodeState(ctr),
  ]);
  if (snap.status === 'rejected') throw snap.reason;
  if (st.status === 'rejected') throw st.reason;
  const snapshotter = snap.value;
  const state = st.value;
  const res: KindNodeResult = {
    node, snapshotter, images: [], skipped: [], retagged: [], imported: [], bytesSent: 0,
    fullBytes: ctx.fullBytes, omittedBlobs: 0, pinned: [],
  };
  const task = ctx.progress.task(`node ${node}`, full ? ctx.fullBytes : undefined);
  let sentBefore = 0;
  const send = async (wanted: Wanted[], omit: Set<string>): Promise<void> => {
    const base = sentBefore;
    const r = await ctr.importArchive(
      (stdin: Writable) => saveImages(ctx.store, wanted.map((w) => w.requested), { output: stdin, omitBlobs: omit, lease: ctx.lease, dockerWarnings: false }).then(() => undefined),
      { snapshotter, allPlatforms: true, digests: true },
      (n) => task.update(base + n),
    );
    sentBefore += r.inputBytes;
    res.bytesSent += r.inputBytes;
  };

  try {
    // Decide per image: skip, retag, or send.
    const onNode = new Map(state.images.map((i) => [i.name, i.digest]));
    const toSend: Wanted[] = [];
    const action = new Map<string, KindNodeImage>();
    for (const w of ctx.wanted) {
      if (full) {
        toSend.push(w);
        continue;
      }
      if (onNode.get(w.name) === w.digest) {
        action.set(w.name, { name: w.name, digest: w.digest, action: 'skipped' });
        continue;
      }
      const same = state.images.filter((i) => i.digest === w.digest).map((i) => i.name);
      if (same.length) {
        // Prefer a real name over ctr's `import-DATE@sha256:…` digest names.
        const from = same.find((n) => !/^import-\d{4}-\d{2}-\d{2}@/.test(n)) ?? same[0];
        action.set(w.name, { name: w.name, digest: w.digest, action: 'retagged', from });
        continue;
      }
      toSend.push(w);
    }

    // Delta: leave out only blobs the node's images keep alive (GC would take anything else).
    let omit = new Set<string>();
    if (!full && toSend.length) {
      const reachable = reachableBlobs(state.images, state.content);
      const needed = new Set<string>();
      for (const w of toSend) for (const d of w.blobs) needed.add(d);
      omit = new Set([...needed].filter((d) => reachable.has(d)));
    }
    res.omittedBlobs = omit.size;
    if (!full) task.update(0, toSend.length ? archiveBytes(await planSave(ctx.store, toSend.map((w) => w.requested), { dockerWarnings: false }), omit) : 0);

    if (toSend.length) {
      try {
        await send(toSend, omit);
      } catch (e) {
        // A delta that ctr rejects (a blob vanished between listing and import): send it all.
        if (!omit.size || !(e instanceof NodeCommandError)) throw e;
        res.fallback = `delta import failed (${e.message}); sent the full archive`;
        ctx.warn(`node ${JSON.stringify(node)}: ${res.fallback}`);
        omit = new Set();
        await send(toSend, omit);
      }
      for (const w of toSend) action.set(w.name, { name: w.name, digest: w.digest, action: 'imported' });
    }
    for (const a of action.values()) {
      if (a.action === 'retagged') await ctr.tag(a.from!, a.name);
    }

    // Every image complete, or a full archive for the ones that are not.
    const names = ctx.wanted.map((w) => w.name);
    // Both queries at once: each is a round trip into the node (`docker exec`).
    const judge = async () => {
      const [checks, content] = await Promise.all([ctr.checkImages(names), ctr.listContent()]);
      return incompleteOn(ctx, checks, content);
    };
    let bad = await judge();
    if (bad.length && !full) {
      const reason = bad.map((b) => b.why).join('; ');
      res.fallback = res.fallback ? `${res.fallback}; then ${reason}` : `${reason}; sent a full archive`;
      ctx.warn(`node ${JSON.stringify(node)}: ${reason}; sending a full archive of ${bad.map((b) => b.w.name).join(', ')}`);
      const again = bad.map((b) => b.w);
      await send(again, new Set());
      for (const w of again) action.set(w.name, { name: w.name, digest: w.digest, action: 'imported' });
      bad = await judge();
    }
    if (bad.length) {
      throw new ImgtoolError(
        'MISSING_CONTENT',
        `node ${JSON.stringify(node)}: image ${bad[0].w.name} (${bad[0].w.digest}) is not complete after import: ${bad[0].why}`,
        bad.map((b) => b.why),
      );
    }

    if (ctx.opts.pin) {
      for (const w of ctx.wanted) {
        await ctr.label(w.name, PINNED_LABEL, 'pinned');
        res.pinned.push(w.name);
      }
    }
    for (const w of ctx.wanted) {
      const a = action.get(w.name)!;
      res.images.push(a);
      if (a.action === 'skipped') res.skipped.push(a.name);
      else if (a.action === 'retagged') res.retagged.push({ name: a.name, from: a.from! });
      else res.imported.push(a.name);
    }
    return res;
  } finally {
    task.finish();
  }
}
