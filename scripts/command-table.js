#!/usr/bin/env node
'use strict';
/**
 * Write dist/command-table.json after a build (run by `npm run build`): every command under
 * dist/commands (id = its path, `kind/load.js` -> `kind load`), its module file, summary,
 * description and aliases, and the topics (src/cli/topics.ts). The dispatcher (src/cli/dispatch.ts)
 * finds a command here and loads that command's module only; the root and topic helps are
 * rendered from this table without loading any command.
 */
const fs = require('node:fs');
const path = require('node:path');

const DIST = path.resolve(__dirname, '..', 'dist');

function jsFiles(dir) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...jsFiles(p));
    else if (e.name.endsWith('.js')) out.push(p);
  }
  return out.sort();
}

try {
  const cmdDir = path.join(DIST, 'commands');
  if (!fs.existsSync(cmdDir)) throw new Error('no dist/commands (run tsc first)');
  const commands = [];
  for (const file of jsFiles(cmdDir)) {
    const rel = path.relative(DIST, file).split(path.sep).join('/');
    const C = require(file).default;
    if (!C || typeof C.run !== 'function') throw new Error(`${rel}: no command class as its default export`);
    const id = path.relative(cmdDir, file).replace(/\.js$/, '').split(path.sep).join(' ');
    if (!C.summary) throw new Error(`${rel}: command "${id}" has no summary`);
    commands.push({ id, file: rel, summary: C.summary, description: C.description, aliases: C.aliases ?? [], hidden: !!C.hidden });
  }
  const { TOPICS } = require(path.join(DIST, 'src', 'cli', 'topics.js'));
  for (const t of Object.keys(TOPICS)) {
    if (!commands.some((c) => c.id.startsWith(t + ' '))) throw new Error(`topic "${t}" has no command`);
  }
  fs.writeFileSync(path.join(DIST, 'command-table.json'), JSON.stringify({ topics: TOPICS, commands }, null, 1) + '\n');
  console.log(`command table: ${commands.length} commands`);
} catch (e) {
  console.error(`command-table: ${e.message}`);
  process.exit(1);
}
