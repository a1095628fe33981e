/**
 * Flag and argument definitions of the commands: the subset of oclif's `Flags` / `Args` API that
 * commands/ use (audited: string, boolean, integer flags; string args), so command files read as
 * before. A definition is plain data; ./parse.ts reads argv against it and ./help.ts renders it.
 * The phantom type `T` of `Flag<T>` / `Arg<T>` is what the parsed value's type will be
 * (`InferredFlags`), so `this.flags.level` is `number | undefined` and `this.flags.platform`
 * `string[] | undefined`.
 *
 * Supported on every flag: `char` (one letter, `-q`), `description`, `helpGroup` (its own help
 * section), `required`, `exclusive` (names that may not be given with it), `exactlyOne` (exactly
 * one of these names must be given), `dependsOn`, `hidden`. On value flags: `default`, `multiple`
 * (repeatable; oclif's greedy form also takes the following words up to the next flag unless
 * `multipleNonGreedy`), `options` (allowed values); integers: `min`, `max`.
 */

export interface FlagCommon {
  description?: string;
  char?: string;
  helpGroup?: string;
  required?: boolean;
  exclusive?: readonly string[];
  exactlyOne?: readonly string[];
  dependsOn?: readonly string[];
  hidden?: boolean;
}

interface ValueOpts<V> extends FlagCommon {
  default?: V;
  multiple?: boolean;
  multipleNonGreedy?: boolean;
}

export interface StringFlagOpts extends ValueOpts<string> {
  options?: readonly string[];
}

export interface IntegerFlagOpts extends ValueOpts<number> {
  min?: number;
  max?: number;
}

export interface BooleanFlagOpts extends FlagCommon {
  default?: boolean;
}

/** A parsed flag definition. `T` is the type of its value after parsing (phantom). */
export interface Flag<T = unknown> extends FlagCommon {
  type: 'boolean' | 'option';
  /** For option flags: what a value must be ('string' | 'integer'). */
  kind?: 'string' | 'integer';
  default?: unknown;
  multiple?: boolean;
  multipleNonGreedy?: boolean;
  options?: readonly string[];
  min?: number;
  max?: number;
  /** Never set: carries T for InferredFlags. */
  readonly __type?: T;
}

export interface Arg<T = unknown> {
  description?: string;
  required?: boolean;
  default?: string;
  readonly __type?: T;
}

export type FlagMap = Record<string, Flag>;
export type ArgMap = Record<string, Arg>;

export type InferredFlags<F> = { [K in keyof F]: F[K] extends Flag<infer T> ? T : never };
export type InferredArgs<A> = { [K in keyof A]: A[K] extends Arg<infer T> ? T : never };

function string(o: StringFlagOpts & { multiple: true; required: true }): Flag<string[]>;
function string(o: StringFlagOpts & { multiple: true }): Flag<string[] | undefined>;
function string(o: StringFlagOpts & ({ required: true } | { default: string })): Flag<string>;
function string(o?: StringFlagOpts): Flag<string | undefined>;
function string(o: StringFlagOpts = {}): Flag {
  return { ...o, type: 'option', kind: 'string' };
}

function integer(o: IntegerFlagOpts & { multiple: true }): Flag<number[] | undefined>;
function integer(o: IntegerFlagOpts & ({ required: true } | { default: number })): Flag<number>;
function integer(o?: IntegerFlagOpts): Flag<number | undefined>;
function integer(o: IntegerFlagOpts = {}): Flag {
  return { ...o, type: 'option', kind: 'integer' };
}

function boolean(o: BooleanFlagOpts = {}): Flag<boolean> {
  return { ...o, type: 'boolean' };
}

export const Flags = { string, integer, boolean };

function argString(o: Arg & ({ required: true } | { default: string })): Arg<string>;
function argString(o?: Arg): Arg<string | undefined>;
function argString(o: Arg = {}): Arg {
  return { ...o };
}

export const Args = { string: argString };
