import { NotFoundError, InvalidArgumentError, ImgtoolError } from '../errors';
import { runArgv, splitCommandLine, DEFAULT_EXEC_TEMPLATE, NodeCommandError, formatCommand, quoteOutput } from './exec';

/** The label KIND puts on every node container of a cluster. */
export const KIND_CLUSTER_LABEL = 'io.x-k8s.kind.cluster';

/** Container engines whose `ps` KIND-style discovery understands. */
const ENGINES = new Set(['docker', 'podman', 'nerdctl']);

/**
 * The container engine for node discovery: the first word of the exec template when it is
 * docker, podman or nerdctl (so `podman exec -i {node}` discovers with podman), else docker.
 */
export function discoveryEngine(template: string = DEFAULT_EXEC_TEMPLATE): string {
  const first = splitCommandLine(template)[0];
  const base = first ? first.split('/').pop()! : '';
  return ENGINES.has(base) ? first : 'docker';
}

export function parseNodeList(out: string): string[] {
  return [...new Set(out.split('\n').map((l) => l.trim()).filter(Boolean))].sort();
}

/**
 * Node containers of a KIND cluster: `docker ps --filter label=io.x-k8s.kind.cluster=NAME
 * --format '{{.Names}}'`, sorted. No node is an error naming the cluster.
 */
export async function discoverNodes(cluster: string, opts: { engine?: string } = {}): Promise<string[]> {
  if (!cluster) throw new InvalidArgumentError('a cluster name is required to find its nodes');
  const engine = opts.engine ?? 'docker';
  const argv = [engine, 'ps', '--filter', `label=${KIND_CLUSTER_LABEL}=${cluster}`, '--format', '{{.Names}}'];
  let r;
  try {
    r = await runArgv('(host)', argv, formatCommand(argv));
  } catch (e) {
    if (!(e instanceof NodeCommandError)) throw e;
    const { last, details } = quoteOutput(e.stderr, e.stdout);
    const why = e.exitCode === null ? `${engine} could not be run` : `exit status ${e.exitCode}`;
    throw new ImgtoolError(
      'PRECONDITION',
      `cannot list the nodes of KIND cluster ${JSON.stringify(cluster)}: \`${formatCommand(argv)}\` failed (${why})${last ? `: ${last}` : ''}; use --nodes to name them`,
      details,
    );
  }
  const nodes = parseNodeList(r.stdout);
  if (!nodes.length) throw new NotFoundError(`no nodes found for KIND cluster ${JSON.stringify(cluster)} (${engine} ps with label ${KIND_CLUSTER_LABEL}=${cluster})`);
  return nodes;
}
