import { Command } from './command';
import { Flags } from './flags';
import type { InferredArgs, InferredFlags } from './flags';
import { UsageError } from './parse';
import { Store, defaultRoot } from '../store';
import { isImgtoolError } from '../errors';
import { terminalProgress } from './progress';
import { renderTable } from './table';
import type { Column } from './table';
import { Progress } from '../progress';
import { commandSettled, installSignalHandlers, interruptedStatus } from './signals';

export type BaseFlags<T extends typeof Command> = InferredFlags<(typeof ImgtoolCommand)['baseFlags'] & T['flags']>;
export type BaseArgs<T extends typeof Command> = InferredArgs<T['args']>;

/**
 * Base of every imgtool command: `--root`, `--json`, `--quiet`, `--debug`; one clear
 * error line on stderr (stack only with --debug) and a non-zero exit code: 2 for a command line
 * that does not parse (UsageError, with a pointer to --help), 1 otherwise. SIGINT/SIGTERM
 * cancel the running library call (see ./signals.ts): it cleans up, then the process exits
 * with 130/143.
 */
export abstract class ImgtoolCommand<T extends typeof Command> extends Command {
  static override baseFlags = {
    root: Flags.string({ description: 'store directory [default: $IMGTOOL_ROOT or ~/.local/share/imgtool]', helpGroup: 'GLOBAL' }),
    json: Flags.boolean({ description: 'print machine-readable JSON on stdout', helpGroup: 'GLOBAL', default: false }),
    quiet: Flags.boolean({ char: 'q', description: 'no progress output', helpGroup: 'GLOBAL', default: false }),
    debug: Flags.boolean({ description: 'show stack traces on errors', helpGroup: 'GLOBAL', default: false }),
  };

  protected flags!: BaseFlags<T>;
  protected args!: BaseArgs<T>;
  private store_: Store | undefined;
  private progress_: (Progress & { stop(): void }) | undefined;

  public override async init(): Promise<void> {
    installSignalHandlers(() => this.progress_?.stop());
    await super.init();
    const { args, flags } = await this.parse();
    this.flags = flags as BaseFlags<T>;
    this.args = args as BaseArgs<T>;
  }

  /** The global flags, typed without the command's own (generic in T here). */
  private get global(): Partial<InferredFlags<(typeof ImgtoolCommand)['baseFlags']>> {
    return (this.flags ?? {}) as Partial<InferredFlags<(typeof ImgtoolCommand)['baseFlags']>>;
  }

  /** The store at --root, opened on first use and closed when the command ends. */
  protected get store(): Store {
    if (!this.store_) this.store_ = Store.open(this.global.root ?? defaultRoot());
    return this.store_;
  }

  protected get progress(): Progress {
    if (!this.progress_) this.progress_ = terminalProgress({ quiet: this.global.quiet, json: this.global.json });
    return this.progress_;
  }

  /**
   * End the progress bars (their block ends with a newline), so that what is printed next starts
   * on its own line instead of being drawn over by the bars.
   */
  protected endProgress(): void {
    this.progress_?.stop();
  }

  /** Print a line on stdout (suppressed in --json mode); the progress bars end first. */
  protected out(line: string): void {
    if (this.global.json) return;
    this.endProgress();
    process.stdout.write(line + '\n');
  }

  /** Print a listing as a table on stdout (see ./table.ts); nothing in --json mode. */
  protected outTable<R>(rows: readonly R[], columns: readonly Column<R>[]): void {
    for (const line of renderTable(rows, columns)) this.out(line);
  }

  protected outJSON(v: unknown): void {
    this.endProgress();
    process.stdout.write(JSON.stringify(v, null, 2) + '\n');
  }

  protected warn_(message: string): void {
    this.progress.warn(message);
  }

  protected override async catch(err: Error): Promise<unknown> {
    this.progress_?.stop();
    if (err instanceof UsageError) {
      process.stderr.write(`imgtool: error: ${err.message}\nSee more help with: imgtool ${this.ctor.id} --help\n`);
      process.exitCode = 2;
      return undefined;
    }
    const debug = this.global.debug || process.argv.includes('--debug');
    let msg = err?.message ?? String(err);
    if (isImgtoolError(err) && err.details.length) msg += '\n' + err.details.map((d) => `  ${d}`).join('\n');
    process.stderr.write(`imgtool: error: ${msg}\n`);
    if (debug && err?.stack) process.stderr.write(err.stack + '\n');
    process.exitCode = interruptedStatus() ?? 1;
    return undefined;
  }

  protected override async finally(err: Error | undefined): Promise<unknown> {
    try {
      this.progress_?.stop();
      this.store_?.close();
      return await super.finally(err);
    } finally {
      commandSettled();
    }
  }
}
