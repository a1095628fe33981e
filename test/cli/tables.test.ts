/**
 * Listings (images, snapshots, lease ls) are rendered by one table renderer: every header
 * starts (or, for right-aligned numbers, ends) in the column of its values.
 */
import * as path from 'node:path';
import { Store } from '../../src/store';
import { rawTar } from '../../src/builder/raw';
import { renderTable } from '../../src/cli/table';
import { runCli, tmpDir, rmrf } from '../helpers/cli';
import { putImage } from '../unit/snapshots/helpers';

/** Fields of a table line: runs of text separated by two or more blanks, with their columns. */
function fields(line: string): Array<{ text: string; start: number; end: number }> {
  return [...line.matchAll(/\S+(?: \S+)*/g)].map((m) => ({ text: m[0], start: m.index!, end: m.index! + m[0].length }));
}

/** Every row has one field per header, starting at its header's column or ending at its end. */
function expectAligned(stdout: string, rowsWanted: number): void {
  const lines = stdout.split('\n').filter(Boolean);
  expect(lines.length).toBe(rowsWanted + 1);
  const head = fields(lines[0]);
  for (const line of lines.slice(1)) {
    const f = fields(line);
    expect(f.map((x) => x.text)).toHaveLength(head.length);
    f.forEach((x, i) => {
      const ok = x.start === head[i].start || x.end === head[i].end;
      if (!ok) throw new Error(`column ${head[i].text}: value ${JSON.stringify(x.text)} at ${x.start}..${x.end}, header at ${head[i].start}..${head[i].end}\n${lines[0]}\n${line}`);
    });
    expect(line).toBe(line.trimEnd());
  }
}

describe('renderTable', () => {
  it('pads every column to its widest cell, right-aligns numbers, no trailing blanks', () => {
    const rows = [{ a: 'x', n: '1' }, { a: 'longer', n: '12345' }];
    expect(renderTable(rows, [{ header: 'NAME', value: (r) => r.a }, { header: 'N', value: (r) => r.n, align: 'right' }, { header: 'LAST', value: () => '' }])).toEqual([
      'NAME        N  LAST',
      'x           1',
      'longer  12345',
    ]);
  });
});

describe('listings are aligned tables', () => {
  let root: string;
  beforeAll(async () => {
    root = tmpDir('imgtool-tables-');
    const store = Store.open(path.join(root, 's'));
    try {
      await putImage(store, 'example.com/app:1', [rawTar([{ name: 'etc/', type: 'dir' }, { name: 'etc/os', data: 'base\n' }]), rawTar([{ name: 'etc/os', data: 'upper\n' }])]);
      store.images.put('example.com/a-much-longer-name/app:2', store.images.get('example.com/app:1')!.target);
    } finally {
      store.close();
    }
    const u = await runCli(['unpack', '-q', 'example.com/app:1'], { root: path.join(root, 's') });
    expect(u.code).toBe(0);
    const l = await runCli(['lease', 'create', '--id', 'a-lease-with-a-long-id', '--expire', '1h'], { root: path.join(root, 's') });
    expect(l.code).toBe(0);
  });
  afterAll(() => rmrf(root));

  it.each([[['images']], [['images', '--digests']], [['snapshots']], [['lease', 'ls']]])('%j', async (args) => {
    const r = await runCli(args, { root: path.join(root, 's') });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expectAligned(r.stdout, args[0] === 'images' ? 2 : args[0] === 'snapshots' ? 2 : 1);
  });
});
