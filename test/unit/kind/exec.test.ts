import { Writable } from 'node:stream';
import { splitCommandLine, nodeCommand, runInNode, NodeCommandError, formatCommand } from '../../../src/kind/exec';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { discoveryEngine, parseNodeList, discoverNodes } from '../../../src/kind/nodes';

describe('exec templates', () => {
  it('splits like a shell (quotes, escapes)', () => {
    expect(splitCommandLine('docker exec --privileged -i {node}')).toEqual(['docker', 'exec', '--privileged', '-i', '{node}']);
    expect(splitCommandLine(`env 'A=a b' "B=\\"q\\" $x" C=c\\ d  `)).toEqual(['env', 'A=a b', 'B="q" $x', 'C=c d']);
    expect(splitCommandLine(`a '' ""`)).toEqual(['a', '', '']);
    expect(() => splitCommandLine(`a 'b`)).toThrow(/unterminated/);
    expect(() => splitCommandLine(`a "b`)).toThrow(/unterminated/);
  });

  it('replaces {node} in every word and appends the command', () => {
    expect(nodeCommand('docker exec --privileged -i {node}', 'kind-worker', ['ctr', 'images', 'ls'])).toEqual([
      'docker', 'exec', '--privileged', '-i', 'kind-worker', 'ctr', 'images', 'ls',
    ]);
    expect(nodeCommand('ssh root@{node}.example -- env X={node}', 'n1', ['ctr'])).toEqual(['ssh', 'root@n1.example', '--', 'env', 'X=n1', 'ctr']);
    expect(nodeCommand('env CONTAINERD_ADDRESS=/tmp/c.sock', 'local', ['ctr'])).toEqual(['env', 'CONTAINERD_ADDRESS=/tmp/c.sock', 'ctr']);
    expect(formatCommand(['ctr', '--namespace=k8s.io', 'a b'])).toBe(`ctr --namespace=k8s.io 'a b'`);
  });

  it('discovery engine follows the template', () => {
    expect(discoveryEngine()).toBe('docker');
    expect(discoveryEngine('podman exec -i {node}')).toBe('podman');
    expect(discoveryEngine('/usr/bin/nerdctl exec -i {node}')).toBe('/usr/bin/nerdctl');
    expect(discoveryEngine('env CONTAINERD_ADDRESS=/x')).toBe('docker');
    expect(parseNodeList('kind-worker\nkind-control-plane\n\nkind-worker\n')).toEqual(['kind-control-plane', 'kind-worker']);
  });

  it('a discovery engine that fails on stdout only is quoted from stdout', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'imgtool-disc-'));
    try {
      const engine = path.join(dir, 'docker');
      fs.writeFileSync(engine, '#!/bin/sh\necho "permission denied while trying to connect to the Docker daemon socket"\nexit 1\n', { mode: 0o755 });
      const e = await discoverNodes('kind', { engine }).catch((x) => x);
      expect(e.message).toMatch(/^cannot list the nodes of KIND cluster "kind": `.*docker ps .*` failed \(exit status 1\): permission denied while trying to connect to the Docker daemon socket; use --nodes to name them$/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('runInNode', () => {
  it('returns stdout of a successful command', async () => {
    const r = await runInNode('env FOO={node}', 'bar', ['sh', '-c', 'echo "$FOO"']);
    expect(r.stdout).toBe('bar\n');
  });

  it('fails naming the node, the command and the last stderr line', async () => {
    const e = await runInNode('env', 'node-7', ['sh', '-c', 'echo first >&2; echo "ctr: boom" >&2; exit 3']).catch((x) => x);
    expect(e).toBeInstanceOf(NodeCommandError);
    expect(e.message).toMatch(/^node "node-7": `sh -c .*` failed \(exit status 3\): ctr: boom$/);
    expect(e.node).toBe('node-7');
    expect(e.exitCode).toBe(3);
  });

  it('a command that reports its failure on stdout only (docker exec, exit 126) is quoted from stdout', async () => {
    // docker exec prints runtime failures on stdout, stderr empty: the message must not be a bare exit status.
    const e = await runInNode('env', 'kind-worker', ['sh', '-c', 'echo "OCI runtime exec failed: exec failed: unable to start container process: operation not permitted: unknown"; exit 126']).catch((x) => x);
    expect(e).toBeInstanceOf(NodeCommandError);
    expect(e.message).toBe('node "kind-worker": `sh -c \'echo "OCI runtime exec failed: exec failed: unable to start container process: operation not permitted: unknown"; exit 126\'` failed (exit status 126): OCI runtime exec failed: exec failed: unable to start container process: operation not permitted: unknown');
    expect(e.exitCode).toBe(126);
    expect(e.stdout).toContain('OCI runtime exec failed');
  });

  it('quotes both streams: the last stderr line in the message, earlier stderr and stdout lines in details', async () => {
    const e = await runInNode('env', 'n5', ['sh', '-c', 'echo "out one"; echo "err one" >&2; echo "out two"; echo "err two" >&2; exit 2']).catch((x) => x);
    expect(e).toBeInstanceOf(NodeCommandError);
    expect(e.message).toMatch(/failed \(exit status 2\): err two$/);
    expect(e.details).toEqual(['stderr: err one', 'stdout: out one', 'stdout: out two']);
  });

  it('quoted output is bounded (last 2 KiB, last lines) and control characters are escaped', async () => {
    const script = 'i=0; while [ $i -lt 5000 ]; do echo "noise line $i"; i=$((i+1)); done; printf "bad \\033[31mred\\033[0m end\\n"; exit 1';
    const e = await runInNode('env', 'n6', ['sh', '-c', script]).catch((x) => x);
    expect(e).toBeInstanceOf(NodeCommandError);
    expect(e.message).toMatch(/failed \(exit status 1\): bad \\x1b\[31mred\\x1b\[0m end$/);
    const quoted = [e.message, ...e.details].join('\n');
    expect(Buffer.byteLength(quoted)).toBeLessThan(3 * 1024);
    expect(quoted).not.toContain('noise line 0\n');
    expect(quoted).toContain('noise line 4999');
    expect(e.details.length).toBeLessThanOrEqual(20);
    expect(quoted).not.toMatch(/\x1b/);
  });

  it('fails naming the node when the template command does not exist', async () => {
    const e = await runInNode('/nonexistent/imgtool-exec {node}', 'n2', ['ctr']).catch((x) => x);
    expect(e).toBeInstanceOf(NodeCommandError);
    expect(e.message).toMatch(/^node "n2": `ctr` failed \(could not run\)/);
  });

  it('streams stdin and counts bytes', async () => {
    const data = Buffer.alloc(3 * 1024 * 1024 + 7, 'x');
    const r = await runInNode('env', 'n', ['sh', '-c', 'wc -c'], {
      input: async (stdin: Writable) => {
        for (let i = 0; i < data.length; i += 65536) {
          if (!stdin.write(data.subarray(i, i + 65536))) await new Promise((res) => stdin.once('drain', res));
        }
        await new Promise<void>((res) => stdin.end(res));
      },
    });
    expect(Number(r.stdout.trim())).toBe(data.length);
    expect(r.inputBytes).toBe(data.length);
  });

  it('a command that exits without reading its input fails, and the writer is stopped', async () => {
    let writerError: unknown;
    const e = await runInNode('env', 'n3', ['sh', '-c', 'echo "no thanks" >&2; exit 1'], {
      input: async (stdin: Writable) => {
        try {
          for (let i = 0; i < 1000; i++) {
            if (!stdin.write(Buffer.alloc(1 << 20))) await new Promise((res, rej) => { stdin.once('drain', res); stdin.once('error', rej); stdin.once('close', () => rej(new Error('closed'))); });
          }
          stdin.end();
        } catch (x) {
          writerError = x;
          throw x;
        }
      },
    }).catch((x) => x);
    expect(e).toBeInstanceOf(NodeCommandError);
    expect(e.message).toMatch(/node "n3".*no thanks/);
    expect(writerError).toBeDefined();
  });

  it('a failing writer stops the command and is the reported error', async () => {
    const e = await runInNode('env', 'n4', ['sh', '-c', 'cat > /dev/null'], {
      input: async (stdin: Writable) => {
        stdin.write('partial');
        throw new Error('archive producer failed');
      },
    }).catch((x) => x);
    expect(e.message).toBe('archive producer failed');
  });
});
