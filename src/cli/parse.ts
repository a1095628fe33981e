/**
 * The command-line parser: `node:util` parseArgs tokenises (long and short flags, `--flag=value`,
 * `-ovalue`, grouped short booleans `-qn`, `--`), this module checks the tokens against a
 * command's definitions (./flags.ts) with oclif's rules and wording, so scripts and users see the
 * same errors as before the switch:
 * - an unknown flag: `Nonexistent flag: --bogus`; a value flag without a value (or followed by
 *   another of the command's flags): `Flag --x expects a value` (`expects one of these values: …`
 *   when it has options); a value outside `options`: `Expected --x=v to be one of: a, b`;
 * - integers: `Parsing --jobs: Expected an integer but received: abc` (and min/max);
 * - a non-multiple value flag given twice: `Flag --x can only be specified once`; a boolean given
 *   a value (`--quiet=yes`): `Flag --quiet does not take a value`;
 * - arguments: `Missing 1 required arg: dst (name of the new image)`, `Unexpected argument: c`
 *   (unless the command is `strict = false`: the extra words are in `argv`);
 * - relationships: `Missing required flag --output`, `--b cannot also be provided when using --a`
 *   (`exclusive`), `Exactly one of the following must be provided: --dir, --output`,
 *   `--a= requires --b` (`dependsOn`).
 * A word starting with `-` that is not a known flag is taken as a value after a value flag
 * (`-o -`, `--level -1`); `-` alone and everything after `--` are arguments. Every error is a
 * UsageError (exit status 2).
 */
import { parseArgs } from 'node:util';
import { ImgtoolError } from '../errors';
import type { ArgMap, Flag, FlagMap } from './flags';

/** A command line that does not fit the command's definitions; the CLI exits with status 2. */
export class UsageError extends ImgtoolError {
  readonly exitCode = 2;
  constructor(message: string) {
    super('INVALID_ARGUMENT', message);
    this.name = 'UsageError';
  }
}

export interface ParseSpec {
  flags: FlagMap;
  args?: ArgMap;
  /** false: arguments past the defined ones are allowed (all of them are in `argv`). */
  strict?: boolean;
}

export interface ParseResult {
  flags: Record<string, unknown>;
  args: Record<string, string | undefined>;
  /** Every argument, in order. */
  argv: string[];
}

const plural = (n: number, word: string) => `${word}${n === 1 ? '' : 's'}`;

export function parseCommandLine(argv: readonly string[], spec: ParseSpec): ParseResult {
  const defs = spec.flags;
  const byChar = new Map<string, string>();
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {};
  for (const [name, f] of Object.entries(defs)) {
    // A boolean given a value (`--quiet=yes`) still shows the value in its token: refused below.
    options[name] = { type: f.type === 'boolean' ? 'boolean' : 'string' };
    if (f.char) {
      options[name].short = f.char;
      byChar.set(f.char, name);
    }
  }
  const { tokens } = parseArgs({ args: [...argv], options, strict: false, allowPositionals: true, tokens: true });

  const isKnownFlag = (word: string) =>
    word.startsWith('--') ? Object.hasOwn(defs, word.slice(2).split('=')[0]) : /^-[^-]/.test(word) && byChar.has(word[1]);
  const values = new Map<string, string[]>();
  const booleans = new Set<string>();
  const nonexistent: string[] = [];
  const positionals: string[] = [];
  /** The last flag given, if it is a greedy multiple one (takes following words as values). */
  let greedy: string | undefined;

  for (const t of tokens) {
    if (t.kind === 'option-terminator') {
      greedy = undefined;
      continue;
    }
    if (t.kind === 'positional') {
      if (greedy) values.get(greedy)!.push(t.value);
      else positionals.push(t.value);
      continue;
    }
    const name = t.name;
    const f: Flag | undefined = Object.hasOwn(defs, name) ? defs[name] : undefined;
    if (!f) {
      nonexistent.push(t.rawName.startsWith('--') ? `--${name}` : t.rawName);
      greedy = undefined;
      continue;
    }
    if (f.type === 'boolean') {
      if (t.value !== undefined) throw new UsageError(`Flag --${name} does not take a value`);
      booleans.add(name);
      greedy = undefined;
      continue;
    }
    let value = t.value;
    // `-o=file` (oclif accepts it): the `=` is not part of the value.
    if (value !== undefined && t.inlineValue && !t.rawName.startsWith('--') && value.startsWith('=')) value = value.slice(1);
    if (value === undefined || (!t.inlineValue && isKnownFlag(value))) {
      throw new UsageError(f.options ? `Flag --${name} expects one of these values: ${f.options.join(', ')}` : `Flag --${name} expects a value`);
    }
    const list = values.get(name) ?? [];
    if (list.length && !f.multiple) throw new UsageError(`Flag --${name} can only be specified once`);
    list.push(value);
    values.set(name, list);
    greedy = f.multiple && !f.multipleNonGreedy ? name : undefined;
  }
  if (nonexistent.length) throw new UsageError(`Nonexistent ${plural(nonexistent.length, 'flag')}: ${nonexistent.join(', ')}`);

  const flags: Record<string, unknown> = {};
  const given = new Set<string>([...booleans, ...values.keys()]);
  for (const [name, f] of Object.entries(defs)) {
    if (f.type === 'boolean') {
      flags[name] = booleans.has(name) ? true : f.default ?? false;
      continue;
    }
    const raw = values.get(name);
    if (!raw) {
      if (f.default !== undefined) flags[name] = f.default;
      continue;
    }
    const parsed = raw.map((v) => parseValue(name, f, v));
    flags[name] = f.multiple ? parsed : parsed[0];
  }

  // Arguments: as many as defined, in order; the rest is for non-strict commands only.
  const argDefs = Object.entries(spec.args ?? {});
  const args: Record<string, string | undefined> = {};
  const missing: string[] = [];
  argDefs.forEach(([name, a], i) => {
    const v = positionals[i] ?? a.default;
    args[name] = v;
    if (v === undefined && a.required) missing.push(a.description ? `${name.toUpperCase()} (${a.description})` : name.toUpperCase());
  });
  if (missing.length) throw new UsageError(`Missing ${missing.length} required ${plural(missing.length, 'arg')}: ${missing.join(', ')}`);
  if (spec.strict !== false && positionals.length > argDefs.length) {
    const extra = positionals.slice(argDefs.length);
    throw new UsageError(`Unexpected ${plural(extra.length, 'argument')}: ${extra.join(', ')}`);
  }

  // Relationships between flags, on what was given on the command line (not defaults).
  for (const [name, f] of Object.entries(defs)) {
    if (f.required && !given.has(name)) throw new UsageError(`Missing required flag --${name}`);
    if (given.has(name)) {
      for (const other of f.exclusive ?? []) {
        if (given.has(other)) throw new UsageError(`--${other} cannot also be provided when using --${name}`);
      }
      for (const other of f.dependsOn ?? []) {
        if (!given.has(other)) throw new UsageError(`--${name} requires --${other}`);
      }
    }
    if (f.exactlyOne) {
      const set = f.exactlyOne.filter((n) => given.has(n));
      if (set.length !== 1) {
        const names = [...f.exactlyOne].sort().map((n) => `--${n}`).join(', ');
        throw new UsageError(set.length ? `Only one of the following can be provided: ${names}` : `Exactly one of the following must be provided: ${names}`);
      }
    }
  }
  return { flags, args, argv: positionals };
}

function parseValue(name: string, f: Flag, v: string): string | number {
  if (f.options && !f.options.includes(v)) throw new UsageError(`Expected --${name}=${v} to be one of: ${f.options.join(', ')}`);
  if (f.kind !== 'integer') return v;
  if (!/^-?\d+$/.test(v)) throw new UsageError(`Parsing --${name}: Expected an integer but received: ${v}`);
  const n = Number(v);
  if (f.min !== undefined && n < f.min) throw new UsageError(`Parsing --${name}: Expected an integer greater than or equal to ${f.min} but received: ${v}`);
  if (f.max !== undefined && n > f.max) throw new UsageError(`Parsing --${name}: Expected an integer less than or equal to ${f.max} but received: ${v}`);
  return n;
}
