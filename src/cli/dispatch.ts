/**
 * From argv to one command, loading nothing else: the command id is found in the command table
 * (`dist/command-table.json`, written at build by scripts/command-table.js: ids, module files,
 * summaries), its module alone is required and run. Ids are words separated by spaces (`kind
 * load`, `lease ls`); aliases (`lease list`) are in the table too. Also here: the root, topic and
 * command helps (`imgtool`, `imgtool --help`, `imgtool help [CMD]`, `imgtool TOPIC`, `imgtool CMD
 * --help` / `-h`) and `--version`. An unknown command is a usage error: exit status 2.
 * bin/run.js answers `--version` itself before loading this module.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { CommandClass } from './command';
import { UsageError } from './parse';
import type { RootInfo, TableEntry } from './help';
import type * as Help from './help';

// The help renderer only when help is asked for (not on a command's path).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const help = (): typeof Help => require('./help') as typeof Help;

export interface CommandTable {
  topics: Record<string, string>;
  commands: Array<TableEntry & { file: string; description?: string }>;
}

const DIST = path.resolve(__dirname, '..', '..');
export const TABLE_FILE = path.join(DIST, 'command-table.json');

function readJSON<T>(file: string): T {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
}

export function loadTable(): CommandTable {
  try {
    return readJSON<CommandTable>(TABLE_FILE);
  } catch (e) {
    throw new UsageError(`cannot read the command table ${TABLE_FILE} (run \`npm run build\`): ${(e as Error).message}`);
  }
}

function rootInfo(table: CommandTable): RootInfo {
  const pkg = readJSON<{ description: string; version: string }>(path.join(DIST, '..', 'package.json'));
  return { description: pkg.description, version: pkg.version, topics: table.topics, commands: table.commands };
}

/** The longest command id (or alias) that the leading words of argv spell, and the words after it. */
export function findCommand(table: CommandTable, argv: readonly string[]): { entry: CommandTable['commands'][number]; id: string; rest: string[] } | undefined {
  const ids = new Map<string, CommandTable['commands'][number]>();
  for (const c of table.commands) for (const id of [c.id, ...(c.aliases ?? [])]) ids.set(id, c);
  let words = 0;
  while (words < argv.length && !argv[words].startsWith('-')) words++;
  for (let k = words; k > 0; k--) {
    const id = argv.slice(0, k).join(' ');
    const entry = ids.get(id);
    if (entry) return { entry, id, rest: argv.slice(k) };
  }
  return undefined;
}

export function loadCommand(entry: CommandTable['commands'][number], id: string): CommandClass {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mod = require(path.join(DIST, entry.file)) as { default?: CommandClass };
  const C = mod.default;
  if (!C || typeof C.run !== 'function') throw new Error(`${entry.file} exports no command`);
  C.id = id;
  return C;
}

const wantsHelp = (argv: readonly string[]) => {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).some((a) => a === '--help' || a === '-h');
};

function notFound(words: readonly string[]): never {
  throw new UsageError(`command ${words.join(' ')} not found`);
}

async function dispatch(argv: string[]): Promise<void> {
  const out = (s: string) => process.stdout.write(s);
  if (argv[0] === '--version' || argv[0] === '-v') return void out(help().versionString(rootInfo(loadTable()).version) + '\n');
  const table = loadTable();
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h') return void out(help().rootHelp(rootInfo(table)));
  const helpCmd = argv[0] === 'help';
  const words = helpCmd ? argv.slice(1) : argv;
  if (helpCmd && words.length === 0) return void out(help().rootHelp(rootInfo(table)));
  const found = findCommand(table, words);
  if (!found) {
    const topic = words[0];
    if (topic === undefined || topic.startsWith('-')) throw new UsageError(`no command given before ${topic ?? 'the end'}`);
    const rest = words.slice(1).filter((w) => w !== '--help' && w !== '-h');
    if (Object.hasOwn(table.topics, topic) && rest.length === 0) return void out(help().topicHelp(topic, rootInfo(table)));
    notFound(Object.hasOwn(table.topics, topic) ? words.slice(0, 2) : [topic]);
  }
  if (helpCmd || wantsHelp(found.rest)) return void out(help().commandHelp(found.id, loadCommand(found.entry, found.id)));
  await loadCommand(found.entry, found.id).run(found.rest);
}

/** Run the CLI on argv (process.argv.slice(2)); sets process.exitCode. */
export async function main(argv: string[]): Promise<void> {
  try {
    await dispatch(argv);
  } catch (e) {
    const err = e as Error;
    process.stderr.write(`imgtool: error: ${err?.message ?? String(err)}\n`);
    if (err instanceof UsageError) process.stderr.write('See more help with: imgtool --help\n');
    if (process.argv.includes('--debug') && err?.stack) process.stderr.write(err.stack + '\n');
    process.exitCode = err instanceof UsageError ? 2 : process.exitCode || 1;
  }
}
