import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const REPO = path.resolve(__dirname, '..', '..');
export const BIN = path.join(REPO, 'bin', 'run.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Run the built imgtool binary (run `npm run build` first; `npm test` does).
 * `input`: a Buffer or a file path to pipe to stdin. `timeoutMs`: kill the child
 * (SIGKILL) after that long, for tests of inputs that used to hang.
 */
export function runCli(args: string[], opts: { root?: string; input?: Buffer | { file: string }; env?: Record<string, string>; stdoutFile?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, ...(opts.env ?? {}) };
    if (opts.root) env.IMGTOOL_ROOT = opts.root;
    delete env.FORCE_COLOR;
    const out = opts.stdoutFile ? fs.openSync(opts.stdoutFile, 'w') : 'pipe';
    const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['pipe', out, 'pipe'], timeout: opts.timeoutMs, killSignal: 'SIGKILL' });
    const so: Buffer[] = [];
    const se: Buffer[] = [];
    child.stdout?.on('data', (d) => so.push(d));
    child.stderr!.on('data', (d) => se.push(d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (typeof out === 'number') fs.closeSync(out);
      resolve({ code: code ?? -1, stdout: Buffer.concat(so).toString(), stderr: Buffer.concat(se).toString() });
    });
    child.stdin!.on('error', () => {});
    if (opts.input instanceof Buffer) child.stdin!.end(opts.input);
    else if (opts.input) fs.createReadStream(opts.input.file).pipe(child.stdin!);
    else child.stdin!.end();
  });
}

/** A fresh temporary directory, removed by `cleanup()`. */
export function tmpDir(prefix = 'imgtool-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function rmrf(p: string): void {
  fs.rmSync(p, { recursive: true, force: true });
}
