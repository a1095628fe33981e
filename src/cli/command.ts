/**
 * The command base class: the part of oclif's `Command` that commands/ use, without oclif's
 * start-up cost (~150 ms to load `@oclif/core/command` on this kind of machine; see
 * docs/ARCHITECTURE.md "CLI start-up"). A command class declares static `summary`, `description`,
 * `examples`, `flags`, `baseFlags`, `args`, `strict`, `aliases`; `run()` does the work. The
 * dispatcher (./dispatch.ts) sets the static `id` and calls `Cmd.run(argv)`, which runs
 * `init()` (parses argv: ./parse.ts), `run()`, then `catch(err)` on an error and `finally()`.
 * `this.parse(Cmd)` returns the one parse of argv (`{ flags, args, argv }`).
 */
import type { ArgMap, FlagMap } from './flags';
import { parseCommandLine } from './parse';
import type { ParseResult } from './parse';

// A closed stdout (`imgtool images | head -1`) is not an error of the command.
let epipeHandled = false;
function swallowStdoutEpipe(): void {
  if (epipeHandled) return;
  epipeHandled = true;
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err && err.code === 'EPIPE') return;
    throw err;
  });
}

export type CommandClass = (new (argv: string[]) => Command) & typeof Command;

export abstract class Command {
  /** The command's id as typed (`kind load`), set by the dispatcher. */
  static id = '';
  static summary?: string;
  static description?: string;
  static examples?: string[];
  static flags: FlagMap = {};
  static baseFlags: FlagMap = {};
  static args: ArgMap = {};
  static strict = true;
  static aliases: string[] = [];

  /** Run the command on `argv` (the words after its id). */
  static async run(this: CommandClass, argv: string[] = []): Promise<unknown> {
    // `this` is the concrete subclass; abstract only to TypeScript.
    const cmd = new (this as unknown as new (a: string[]) => Command)(argv);
    return cmd._run();
  }

  readonly argv: string[];
  private parsed: ParseResult | undefined;

  constructor(argv: string[]) {
    this.argv = argv;
  }

  get ctor(): typeof Command {
    return this.constructor as typeof Command;
  }

  abstract run(): Promise<unknown>;

  protected async _run(): Promise<unknown> {
    let err: Error | undefined;
    let result: unknown;
    try {
      await this.init();
      result = await this.run();
    } catch (e) {
      err = e as Error;
      await this.catch(err);
    } finally {
      await this.finally(err);
    }
    return result;
  }

  /** Parse argv against the command's flags (its baseFlags included) and args, once. */
  protected async parse(_cmd?: typeof Command): Promise<ParseResult> {
    if (!this.parsed) {
      const c = this.ctor;
      this.parsed = parseCommandLine(this.argv, { flags: { ...c.baseFlags, ...c.flags }, args: c.args, strict: c.strict });
    }
    return this.parsed;
  }

  protected async init(): Promise<void> {
    swallowStdoutEpipe();
  }

  /** Default: rethrow (the dispatcher prints it). ImgtoolCommand prints imgtool's error line. */
  protected async catch(err: Error): Promise<unknown> {
    throw err;
  }

  protected async finally(_err: Error | undefined): Promise<unknown> {
    return undefined;
  }
}
