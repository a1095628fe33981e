/**
 * --help text: descriptions are written as paragraphs (src/cli/help.ts wraps them at the terminal
 * width, so a hard line break inside a paragraph gives ragged lines), and every command has a
 * one-line summary that the command list shows whole. The commands are those of the command table
 * written at build (dist/command-table.json).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO, runCli } from '../helpers/cli';

interface ManifestCommand { id: string; summary?: string; description?: string }
const manifest = (): ManifestCommand[] => JSON.parse(fs.readFileSync(path.join(REPO, 'dist', 'command-table.json'), 'utf8')).commands as ManifestCommand[];

/** The DESCRIPTION section of `--help` as paragraphs of rendered lines. */
function descriptionParagraphs(help: string): string[][] {
  const lines = help.split('\n');
  const start = lines.indexOf('DESCRIPTION');
  if (start < 0) return [];
  const body: string[] = [];
  for (const l of lines.slice(start + 1)) {
    if (/^[A-Z]/.test(l)) break;
    body.push(l);
  }
  const paras: string[][] = [[]];
  for (const l of body) {
    if (l.trim() === '') paras.push([]);
    else paras[paras.length - 1].push(l);
  }
  return paras.filter((p) => p.length);
}

describe('--help', () => {
  it('every command has a one-line summary ending with a full stop', () => {
    const bad = manifest().filter((c) => !c.summary || c.summary.includes('\n') || !/[.)]$/.test(c.summary) || c.summary.length > 110);
    expect(bad.map((c) => `${c.id}: ${JSON.stringify(c.summary)}`)).toEqual([]);
  });

  it('descriptions have no line breaks inside a paragraph', () => {
    const bad = manifest().flatMap((c) =>
      (c.description ?? '').split('\n\n').filter((p) => p.includes('\n')).map((p) => `${c.id}: ${JSON.stringify(p.slice(0, 60))}…`),
    );
    expect(bad).toEqual([]);
  });

  it('the command list shows every summary whole (inspect was cut at "and per")', async () => {
    const helps = new Map<string, string>();
    for (const c of manifest()) {
      // Commands of a topic (kind, lease) are listed by `imgtool TOPIC --help`.
      const topic = c.id.includes(' ') ? c.id.split(' ')[0] : '';
      if (!helps.has(topic)) {
        const r = await runCli(topic ? [topic, '--help'] : ['--help'], { env: { OCLIF_COLUMNS: '200' } });
        expect(r.code).toBe(0);
        helps.set(topic, r.stdout);
      }
      const name = c.id;
      const line = helps.get(topic)!.split('\n').find((l) => l.trimStart().startsWith(name + ' '));
      expect([c.id, line?.trim().slice(name.length).trim()]).toEqual([c.id, c.summary]);
    }
  });

  it('topics have their own summary, not their first command\'s', async () => {
    const r = await runCli(['--help'], { env: { OCLIF_COLUMNS: '200' } });
    expect(r.stdout).toMatch(/^ {2}kind +Put images into the nodes of a KIND cluster/m);
    expect(r.stdout).toMatch(/^ {2}lease +Create, list and remove leases/m);
  });

  it.each(['save', 'load', 'inspect', 'kind load', 'convert'])('%s --help wraps each paragraph greedily at the terminal width', async (cmd) => {
    const width = 80;
    const r = await runCli([...cmd.split(' '), '--help'], { env: { OCLIF_COLUMNS: String(width) } });
    expect(r.code).toBe(0);
    const paras = descriptionParagraphs(r.stdout);
    for (const p of paras) {
      for (let i = 0; i + 1 < p.length; i++) {
        const nextWord = p[i + 1].trim().split(' ')[0];
        // A line is only broken when the next word would not fit on it.
        if (p[i].length + 1 + nextWord.length <= width - 2) throw new Error(`ragged line in ${cmd} --help:\n${p[i]}\n${p[i + 1]}`);
      }
    }
  });
});
