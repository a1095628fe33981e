import { spawn } from 'node:child_process';
import { PassThrough, Writable } from 'node:stream';
import { ImgtoolError, InvalidArgumentError } from '../errors';

/**
 * Running commands inside KIND nodes. A node is reached through an exec *template*: the
 * prefix that runs a command in it, `{node}` replaced by the node's name, with the command
 * appended — `docker exec --privileged -i {node}` by default, as KIND does. Tests and non-docker
 * setups use e.g. `env CONTAINERD_ADDRESS=/run/x.sock` with a node called `local`.
 */
export const DEFAULT_EXEC_TEMPLATE = 'docker exec --privileged -i {node}';

/** Bytes of each stream quoted in a failure (the tail), and lines of each at most. */
const QUOTE_BYTES = 2048;
const QUOTE_LINES = 10;

/** The last lines of a command's output, bounded, control characters escaped (`\x1b`). */
function tailLines(text: string): string[] {
  let t = text;
  if (Buffer.byteLength(t) > QUOTE_BYTES) {
    const buf = Buffer.from(t);
    t = buf.subarray(buf.length - QUOTE_BYTES).toString('utf8');
    // The first line is cut: drop it unless it is all there is.
    const nl = t.search(/[\r\n]/);
    if (nl >= 0) t = t.slice(nl + 1);
  }
  const lines = t
    .split(/\r?\n|\r/)
    .map((l) => l.trim().replace(/[\x00-\x08\x0b-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`))
    .filter(Boolean);
  return lines.slice(-QUOTE_LINES);
}

/**
 * What a failed command printed, for one error line: the last line of stderr — or of stdout when
 * stderr is empty (`docker exec` prints its own failures, e.g. `OCI runtime exec failed`, on
 * stdout) — and the other lines of both streams (bounded) as details, `stderr: `/`stdout: ` first.
 */
export function quoteOutput(stderr: string, stdout = ''): { last: string; details: string[] } {
  const err = tailLines(stderr);
  const out = tailLines(stdout);
  let last = '';
  if (err.length) last = err.pop()!;
  else if (out.length) last = out.pop()!;
  return { last, details: [...err.map((l) => `stderr: ${l}`), ...out.map((l) => `stdout: ${l}`)] };
}

/** A command run in a node failed (or could not be started). Names the node; quotes both streams. */
export class NodeCommandError extends ImgtoolError {
  readonly node: string;
  readonly exitCode: number | null;
  readonly stderr: string;
  /** What the command printed on stdout before failing (some ctr commands print a table and exit 1). */
  readonly stdout: string;
  constructor(node: string, command: string, exitCode: number | null, output: { stderr: string; stdout?: string }, cause?: unknown) {
    const { last, details } = quoteOutput(output.stderr, output.stdout);
    const how = exitCode === null ? 'could not run' : `exit status ${exitCode}`;
    super('PRECONDITION', `node ${JSON.stringify(node)}: \`${command}\` failed (${how})${last ? `: ${last}` : ''}`, details, { cause });
    this.name = 'NodeCommandError';
    this.node = node;
    this.exitCode = exitCode;
    this.stderr = output.stderr;
    this.stdout = output.stdout ?? '';
  }
}

/**
 * Split a command line the way a POSIX shell splits words (no expansions): whitespace
 * separates words; single quotes keep everything literally; double quotes keep everything
 * but `\"`, `\\`, `\$` and `` \` `` escapes; a backslash outside quotes escapes the next character.
 */
export function splitCommandLine(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    if (c === "'") {
      const end = s.indexOf("'", i + 1);
      if (end < 0) throw new InvalidArgumentError(`unterminated single quote in ${JSON.stringify(s)}`);
      cur += s.slice(i + 1, end);
      inWord = true;
      i = end + 1;
    } else if (c === '"') {
      i++;
      let closed = false;
      while (i < s.length) {
        const d = s[i];
        if (d === '"') {
          closed = true;
          i++;
          break;
        }
        if (d === '\\' && i + 1 < s.length && '"\\$`'.includes(s[i + 1])) {
          cur += s[i + 1];
          i += 2;
          continue;
        }
        cur += d;
        i++;
      }
      if (!closed) throw new InvalidArgumentError(`unterminated double quote in ${JSON.stringify(s)}`);
      inWord = true;
    } else if (c === '\\') {
      if (i + 1 >= s.length) throw new InvalidArgumentError(`trailing backslash in ${JSON.stringify(s)}`);
      cur += s[i + 1];
      inWord = true;
      i += 2;
    } else if (/\s/.test(c)) {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
      i++;
    } else {
      cur += c;
      inWord = true;
      i++;
    }
  }
  if (inWord) out.push(cur);
  return out;
}

/** argv for running `command` in `node` through `template` (`{node}` replaced in every word). */
export function nodeCommand(template: string, node: string, command: string[]): string[] {
  const prefix = splitCommandLine(template).map((w) => w.split('{node}').join(node));
  const argv = [...prefix, ...command];
  if (!argv.length) throw new InvalidArgumentError('empty exec template and command');
  return argv;
}

/** Quote argv for messages (not for a shell to run). */
export function formatCommand(argv: string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./{}-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /**
   * Write the command's stdin: called with a stream that ends the child's stdin when it ends.
   * Its rejection fails the run (unless the command itself failed first, which is then reported).
   */
  input?: (stdin: Writable) => Promise<void>;
  /** Called with the running count of bytes written to stdin. */
  onInputBytes?: (bytes: number) => void;
  /** Cap on captured stdout (default 256 MiB): more is an error. */
  maxOutput?: number;
  /** Kill the command after this many milliseconds (default: no limit). */
  timeoutMs?: number;
}

/** Result of a run with stdin: output plus bytes fed. */
export interface RunInputResult extends RunResult {
  inputBytes: number;
}

/**
 * Run argv (already including the template prefix) for `node`; resolve its output, reject with
 * a NodeCommandError naming the node when it cannot start or exits non-zero.
 * `label` is the command shown in messages (the part imgtool appended, e.g. `ctr … images import`).
 */
export function runArgv(node: string, argv: string[], label: string, opts: RunOptions = {}): Promise<RunInputResult> {
  const maxOut = opts.maxOutput ?? 256 * 1024 * 1024;
  return new Promise((resolve, reject) => {
    let child;
    try {
      child = spawn(argv[0], argv.slice(1), { stdio: [opts.input ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    } catch (e) {
      reject(new NodeCommandError(node, label, null, { stderr: (e as Error).message }, e));
      return;
    }
    const so: Buffer[] = [];
    const se: Buffer[] = [];
    let soLen = 0;
    let seLen = 0;
    let overflow = false;
    let spawnError: Error | undefined;
    let inputError: unknown;
    let inputDone = !opts.input;
    let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let inputBytes = 0;
    let killedForInput = false;
    let timer: NodeJS.Timeout | undefined;

    child.stdout!.on('data', (d: Buffer) => {
      soLen += d.length;
      if (soLen > maxOut) {
        if (!overflow) {
          overflow = true;
          child.kill('SIGKILL');
        }
        return;
      }
      so.push(d);
    });
    child.stderr!.on('data', (d: Buffer) => {
      // Keep the last 1 MiB of stderr: enough for any error message.
      se.push(d);
      seLen += d.length;
      while (seLen > 1 << 20 && se.length > 1) seLen -= se.shift()!.length;
    });

    const finish = () => {
      if (!exited || !inputDone) return;
      if (timer) clearTimeout(timer);
      const stdout = Buffer.concat(so).toString('utf8');
      const stderr = Buffer.concat(se).toString('utf8');
      if (spawnError) return reject(new NodeCommandError(node, label, null, { stderr: `${argv[0]}: ${spawnError.message}` }, spawnError));
      if (overflow) return reject(new NodeCommandError(node, label, null, { stderr: `output larger than ${maxOut} bytes` }));
      // We stopped it because its input failed: the input's error is the cause.
      if (killedForInput && exited.code === null) return reject(inputError);
      if (exited.code !== 0) {
        const why = exited.code === null ? `${stderr}\nkilled by ${exited.signal}` : stderr;
        return reject(new NodeCommandError(node, label, exited.code ?? -1, { stderr: why, stdout }, inputError));
      }
      if (inputError) return reject(inputError);
      resolve({ stdout, stderr, inputBytes });
    };

    child.on('error', (e) => {
      spawnError = e;
      // 'close' follows 'error' for spawn failures only sometimes: settle here as well.
      exited ??= { code: null, signal: null };
      inputDone = true;
      finish();
    });
    child.on('close', (code, signal) => {
      exited = { code, signal };
      if (!inputDone && feed) {
        // The command is gone: whatever still writes its stdin must stop now.
        feed.destroy(Object.assign(new Error(`${label} exited before reading all of its input`), { code: 'EPIPE' }));
      }
      finish();
    });
    if (opts.timeoutMs) {
      timer = setTimeout(() => {
        se.push(Buffer.from(`\ntimed out after ${opts.timeoutMs} ms`));
        child.kill('SIGKILL');
      }, opts.timeoutMs);
    }

    let feed: PassThrough | undefined;
    if (opts.input) {
      const stdin = child.stdin!;
      feed = new PassThrough({ highWaterMark: 1 << 20 });
      feed.on('data', (chunk: Buffer) => {
        inputBytes += chunk.length;
        opts.onInputBytes?.(inputBytes);
      });
      stdin.on('error', (e) => feed!.destroy(e));
      feed.pipe(stdin);
      feed.on('error', () => stdin.destroy());
      opts.input(feed).then(
        () => {
          inputDone = true;
          finish();
        },
        (e) => {
          inputError = e;
          inputDone = true;
          // Stop the command: its input is incomplete.
          if (!exited) {
            killedForInput = true;
            child.kill('SIGTERM');
          }
          finish();
        },
      );
    }
  });
}

/** Run `command` in `node` through `template`. */
export function runInNode(template: string, node: string, command: string[], opts: RunOptions = {}): Promise<RunInputResult> {
  return runArgv(node, nodeCommand(template, node, command), formatCommand(command), opts);
}
