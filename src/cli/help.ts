/**
 * `--help` text, in oclif's layout: sections (USAGE, ARGUMENTS, FLAGS, <GROUP> FLAGS,
 * DESCRIPTION, ALIASES, EXAMPLES; for the root VERSION, USAGE, TOPICS, COMMANDS) whose bodies are
 * indented two spaces; two-column lists (flags, commands) with the right column wrapped beside the
 * widest left cell; every paragraph wrapped greedily at the terminal width (`OCLIF_COLUMNS`, kept
 * for scripts written for oclif, else the terminal's columns, at least 40, else 80). Descriptions
 * are written as paragraphs (no line breaks inside one): wrapping is done here.
 *
 * The root and topic helps are rendered from the command table (ids and summaries, built at
 * `npm run build`), so they load no command module; a command's help loads that command only.
 */
import type { Flag } from './flags';
import type { CommandClass } from './command';

export const BIN = 'imgtool';

export function helpWidth(): number {
  const env = Number.parseInt(process.env.OCLIF_COLUMNS ?? '', 10);
  if (env > 0) return env;
  if (!process.stdout.isTTY) return 80;
  const cols = process.stdout.columns;
  if (!cols || cols < 1) return 80;
  return Math.max(cols, 40);
}

/** Greedy word wrap of each line of `text` to `width` columns; a word longer than a line is cut. */
export function wrap(text: string, width: number): string[] {
  const w = Math.max(1, width);
  const out: string[] = [];
  for (const para of text.split(/\r?\n/)) {
    let line = '';
    for (let word of para.split(/ +/).filter((x) => x !== '')) {
      while (word.length > w) {
        if (line) out.push(line);
        line = '';
        out.push(word.slice(0, w));
        word = word.slice(w);
      }
      if (!line) line = word;
      else if (line.length + 1 + word.length <= w) line += ' ' + word;
      else {
        out.push(line);
        line = word;
      }
    }
    out.push(line);
  }
  return out;
}

/** Wrap to `width`, lines after the first indented by `hang` more (a long USAGE line). */
export function wrapHanging(text: string, width: number, hang: number): string[] {
  const [first, ...rest] = wrap(text, width);
  return rest.length ? [first, ...wrap(rest.join(' '), width - hang).map((l) => ' '.repeat(hang) + l)] : [first];
}

const indent = (lines: string[], n: number) => lines.map((l) => (l ? ' '.repeat(n) + l : l));

function section(header: string, body: string[]): string {
  return [header, ...indent(body, 2)].join('\n');
}

/**
 * Two columns: left cells padded to the widest, right cells wrapped beside them. A right cell
 * that needs more than 5 lines is shown below its left cell instead (oclif's multiline form), for
 * every row.
 */
export function renderList(rows: Array<[string, string | undefined]>, width: number): string[] {
  const left = Math.max(0, ...rows.map(([l]) => l.length));
  const out: string[] = [];
  for (const [l, r] of rows) {
    if (!r) {
      out.push(l.trimEnd());
      continue;
    }
    const lines = r.split('\n').flatMap((p) => wrap(p.trim(), width - 2 - left - 2));
    if (lines.length > 5) return renderMultiline(rows, width);
    out.push(l.padEnd(left + 2) + lines[0], ...lines.slice(1).map((x) => ' '.repeat(left + 2) + x));
  }
  return out;
}

function renderMultiline(rows: Array<[string, string | undefined]>, width: number): string[] {
  const out: string[] = [];
  for (const [l, r] of rows) {
    if (out.length) out.push('');
    out.push(...wrap(l.trim(), width - 2));
    if (r) out.push(...indent(r.split('\n').flatMap((p) => wrap(p.trim(), width - 6)), 4));
  }
  return out;
}

const render = (s: string) => s.replace(/<%= config\.bin %>/g, BIN);

export interface TableEntry {
  id: string;
  summary?: string;
  aliases?: string[];
  hidden?: boolean;
}

export interface RootInfo {
  description: string;
  version: string;
  topics: Record<string, string>;
  commands: TableEntry[];
}

export function versionString(version: string): string {
  return `${BIN}/${version} ${process.platform}-${process.arch} node-${process.version}`;
}

/** Every id a command answers to (its own and its aliases), with its summary, sorted. */
function listed(commands: TableEntry[]): Array<[string, string]> {
  const rows: Array<[string, string]> = [];
  for (const c of commands) {
    if (c.hidden) continue;
    for (const id of [c.id, ...(c.aliases ?? [])]) rows.push([id, c.summary ?? '']);
  }
  return rows.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

export function rootHelp(info: RootInfo, width = helpWidth()): string {
  const topics = Object.keys(info.topics).sort();
  const parts = [
    info.description,
    section('VERSION', wrap(versionString(info.version), width - 2)),
    section('USAGE', wrap(`$ ${BIN} [COMMAND]`, width - 2)),
  ];
  if (topics.length) parts.push(section('TOPICS', renderList(topics.map((t) => [t, info.topics[t]]), width)));
  const top = listed(info.commands).filter(([id]) => !id.includes(' '));
  if (top.length) parts.push(section('COMMANDS', renderList(top, width)));
  return parts.join('\n\n') + '\n';
}

export function topicHelp(topic: string, info: RootInfo, width = helpWidth()): string {
  const cmds = listed(info.commands).filter(([id]) => id.startsWith(topic + ' '));
  const parts = [...wrap(info.topics[topic] ?? '', width), ''].join('\n');
  return [parts.trimEnd(), section('USAGE', wrap(`$ ${BIN} ${topic} COMMAND`, width - 2)), section('COMMANDS', renderList(cmds, width))].join('\n\n') + '\n';
}

/** One flag as its usage element: `--name <value>...`, `-q`, `--compression gzip|zstd|none`. */
function usageElement(name: string, f: Flag): string {
  const flag = f.char ? `-${f.char}` : `--${name}`;
  if (f.type === 'boolean') return flag;
  return `${flag} ${f.options ? f.options.join('|') : '<value>'}${f.multiple ? '...' : ''}`;
}

/** The USAGE line: id, args, required flags, then optional ones; exclusive flags as `[--a | --b]`. */
export function usageLine(id: string, C: CommandClass): string {
  const words = [`$ ${BIN} ${id}`];
  for (const [name, a] of Object.entries(C.args ?? {})) {
    const n = name.toUpperCase() + (C.strict === false ? '...' : '');
    words.push(a.required ? n : `[${n}]`);
  }
  const flags = Object.entries({ ...C.baseFlags, ...C.flags }).filter(([, f]) => !f.hidden);
  const done = new Set<string>();
  const ordered = [...flags.filter(([, f]) => f.required), ...flags.filter(([, f]) => !f.required)];
  const byName = new Map(flags);
  for (const [name, f] of ordered) {
    if (done.has(name)) continue;
    done.add(name);
    const group = [usageElement(name, f)];
    let required = !!f.required;
    for (const other of f.exclusive ?? []) {
      const o = byName.get(other);
      if (!o || done.has(other)) continue;
      done.add(other);
      group.push(usageElement(other, o));
      required ||= !!o.required;
    }
    const el = group.join(' | ');
    words.push(required ? (group.length > 1 ? `(${el})` : el) : `[${el}]`);
  }
  // An element is not broken across lines (NBSP inside, made spaces again after wrapping).
  return words.map((w) => w.replace(/ /g, NBSP)).join(' ');
}

const NBSP = '\u00a0';

function flagRows(flags: Array<[string, Flag]>): Array<[string, string]> {
  const noChar = flags.every(([, f]) => !f.char);
  return flags.map(([name, f]) => {
    let left = f.char ? `-${f.char}, --${name}` : `    --${name}`;
    if (noChar) left = `--${name}`;
    if (f.type === 'option') left += `=${f.options ? '<option>' : '<value>'}${f.multiple ? '...' : ''}`;
    let right = f.description ?? '';
    if (f.type === 'option' && f.default !== undefined && f.default !== '') right = `[default: ${f.default}] ${right}`;
    if (f.required) right = `(required) ${right}`;
    if (f.type === 'option' && f.options) right += `\n<options: ${f.options.join('|')}>`;
    return [left, right.trim()];
  });
}

export function commandHelp(id: string, C: CommandClass, width = helpWidth()): string {
  const parts: string[] = [];
  if (C.summary) parts.push(wrap(C.summary, width).join('\n'));
  parts.push(section('USAGE', wrapHanging(usageLine(id, C), width - 2, 2).map((l) => l.replace(/\u00a0/g, ' '))));
  const args = Object.entries(C.args ?? {});
  if (args.some(([, a]) => a.description)) {
    parts.push(section('ARGUMENTS', renderList(args.map(([name, a]) => {
      const n = name.toUpperCase() + (C.strict === false ? '...' : '');
      return [a.required ? n : `[${n}]`, a.description];
    }), width)));
  }
  // Flags with a char first, then by name (oclif's order); grouped by helpGroup.
  const all = Object.entries({ ...C.baseFlags, ...C.flags })
    .filter(([, f]) => !f.hidden)
    .sort(([an, a], [bn, b]) => (!!a.char === !!b.char ? (an < bn ? -1 : an > bn ? 1 : 0) : a.char ? -1 : 1));
  const main = all.filter(([, f]) => !f.helpGroup);
  if (main.length) parts.push(section('FLAGS', renderList(flagRows(main), width)));
  const groups = [...new Set(all.map(([, f]) => f.helpGroup).filter((g): g is string => !!g))];
  for (const g of groups) parts.push(section(`${g.toUpperCase()} FLAGS`, renderList(flagRows(all.filter(([, f]) => f.helpGroup === g)), width)));
  if (C.description) {
    const text = `${C.summary ? C.summary + '\n\n' : ''}${render(C.description)}`;
    parts.push(section('DESCRIPTION', wrap(text, width - 2)));
  }
  if (C.aliases?.length) parts.push(section('ALIASES', C.aliases.map((a) => `$ ${BIN} ${a}`)));
  if (C.examples?.length) {
    const ex = C.examples.map((e) => render(e)).map((e) => (e.startsWith(BIN + ' ') ? `$ ${e}` : e));
    parts.push(section('EXAMPLES', ex.flatMap((e, i) => (i ? ['', ...e.split('\n')] : e.split('\n')))));
  }
  return parts.join('\n\n') + '\n';
}
