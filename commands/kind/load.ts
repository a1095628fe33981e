import { ImgtoolCommand, Flags, Args, fmtBytes } from '../../src/cli';
import { InvalidArgumentError } from '../../src/errors';
import { DEFAULT_EXEC_TEMPLATE } from '../../src/kind/exec';
import { kindLoad } from '../../src/kind/load';
import type { KindLoadResult } from '../../src/kind/load';

export default class KindLoad extends ImgtoolCommand<typeof KindLoad> {
  static override summary = 'Load images from the store into the nodes of a KIND cluster.';
  static override description = `Streams an archive into each node's \`ctr --namespace=k8s.io images import --all-platforms --digests --snapshotter=S -\` (S read from the node's \`containerd config dump\`), nodes in parallel, as \`kind load\` does. Delta by default: images a node already has are skipped (or retagged when only the name differs) and blobs that the node's images already hold are left out of the stream. Afterwards every image must be complete on every node, else a full archive is sent. --full always sends everything.

--exec is the prefix that runs a command in a node, {node} replaced by the node's name; the ctr command is appended. Without --nodes, nodes are found with \`docker ps --filter label=io.x-k8s.kind.cluster=NAME\`.`;

  static override examples = [
    '<%= config.bin %> kind load app:1 --name kind',
    '<%= config.bin %> kind load app:1 sidecar:2 --name dev --nodes dev-worker,dev-worker2 --full',
    "<%= config.bin %> kind load app:1 --nodes local --exec 'env CONTAINERD_ADDRESS=/run/containerd/containerd.sock'",
  ];

  static override strict = false;

  static override args = {
    image: Args.string({ required: true, description: 'image(s) to load' }),
  };

  static override flags = {
    name: Flags.string({ char: 'n', default: 'kind', description: 'KIND cluster name' }),
    nodes: Flags.string({ description: 'comma-separated node names (default: every node of the cluster)' }),
    exec: Flags.string({ default: DEFAULT_EXEC_TEMPLATE, description: 'prefix that runs a command in a node; {node} is replaced by its name' }),
    full: Flags.boolean({ default: false, description: 'send every blob of every image (no skipping, no delta)' }),
    pin: Flags.boolean({ default: false, description: 'label the images io.cri-containerd.pinned=pinned on each node' }),
    snapshotter: Flags.string({ description: "snapshotter to unpack with (default: the node's CRI snapshotter)" }),
    lease: Flags.string({ description: 'attach the blobs read to this lease' }),
  };

  async run(): Promise<void> {
    const { argv } = await this.parse(KindLoad);
    const nodes = this.flags.nodes?.split(',').map((n) => n.trim()).filter(Boolean);
    if (this.flags.nodes !== undefined && !nodes?.length) throw new InvalidArgumentError('--nodes lists no node');
    const result = await kindLoad(this.store, argv as string[], {
      cluster: this.flags.name,
      nodes,
      exec: this.flags.exec,
      full: this.flags.full,
      pin: this.flags.pin,
      snapshotter: this.flags.snapshotter,
      leaseId: this.flags.lease,
      progress: this.progress,
    });
    if (this.flags.json) return this.outJSON(result);
    for (const l of summary(result, this.flags.full)) this.out(l);
  }
}

function summary(r: KindLoadResult, full: boolean): string[] {
  const lines: string[] = [];
  for (const n of r.nodes) {
    for (const i of n.images) {
      const how = i.action === 'retagged' ? `retagged from ${i.from}` : i.action;
      lines.push(`${n.node}: ${i.name} ${how}`);
    }
    const mode = full ? 'full' : n.fallback ? 'delta, then full' : 'delta';
    const left = n.omittedBlobs ? `, ${n.omittedBlobs} blob(s) already on the node left out` : '';
    const pinned = n.pinned.length ? `, pinned ${n.pinned.length}` : '';
    lines.push(`${n.node}: sent ${fmtBytes(n.bytesSent)} of a ${fmtBytes(n.fullBytes)} full archive (${mode}${left}; snapshotter ${n.snapshotter}${pinned})`);
  }
  return lines;
}
