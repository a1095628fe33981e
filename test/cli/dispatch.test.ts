/**
 * The dispatcher and the usage errors as a user meets them: `help CMD`, `-h`, `-v`, topics,
 * aliases, unknown commands and flags (exit status 2, one error line and where to find help).
 */
import { rmrf, runCli, tmpDir } from '../helpers/cli';

let root: string;
beforeAll(() => {
  root = tmpDir('imgtool-dispatch-');
});
afterAll(() => rmrf(root));
const cli = (args: string[]) => runCli(args, { root, env: { OCLIF_COLUMNS: '80' } });

describe('dispatch', () => {
  it('help CMD, CMD --help and CMD -h print the same help', async () => {
    const a = await cli(['help', 'kind', 'load']);
    const b = await cli(['kind', 'load', '--help']);
    const c = await cli(['kind', 'load', '-h']);
    expect([a.code, b.code, c.code]).toEqual([0, 0, 0]);
    expect(a.stdout).toMatch(/^Load images from the store into the nodes of a KIND cluster\.\n\nUSAGE\n {2}\$ imgtool kind load IMAGE\.\.\. /);
    expect(b.stdout).toBe(a.stdout);
    expect(c.stdout).toBe(a.stdout);
    // --help after -- is an argument, not a request for help
    const d = await cli(['rmi', '--', '--help']);
    expect(d.stderr).toMatch(/imgtool: error: .*--help.*not found/);
  });

  it('imgtool, imgtool help, --help and -h print the root help; -v the version', async () => {
    const outs = await Promise.all([cli([]), cli(['help']), cli(['--help']), cli(['-h'])]);
    for (const o of outs) {
      expect(o.code).toBe(0);
      expect(o.stdout).toBe(outs[0].stdout);
    }
    expect(outs[0].stdout).toMatch(/^VERSION\n {2}imgtool\/\S+ linux-\S+ node-v\S+$/m);
    expect(outs[0].stdout).toMatch(/^COMMANDS\n {2}convert +Write a new image/m);
    const v = await cli(['-v']);
    expect(v.stdout).toBe((await cli(['--version'])).stdout);
  });

  it('a topic lists its commands and aliases', async () => {
    const r = await cli(['lease']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^USAGE\n {2}\$ imgtool lease COMMAND$/m);
    for (const id of ['create', 'list', 'ls', 'rm']) expect(r.stdout).toMatch(new RegExp(`^ {2}lease ${id} +\\S`, 'm'));
    expect((await cli(['lease', 'list'])).stdout).toBe((await cli(['lease', 'ls'])).stdout);
    expect((await cli(['lease', 'ls', '--help'])).stdout).toMatch(/^ALIASES\n {2}\$ imgtool lease list$/m);
  });

  it('an unknown command or flag is a usage error: exit 2, one line, then where help is', async () => {
    for (const [args, msg, help] of [
      [['nope'], 'command nope not found', 'imgtool --help'],
      [['kind', 'nope', 'x'], 'command kind nope not found', 'imgtool --help'],
      [['images', '--bogus'], 'Nonexistent flag: --bogus', 'imgtool images --help'],
      [['lease', 'create', '--label'], 'Flag --label expects a value', 'imgtool lease create --help'],
      [['tag', 'a'], 'Missing 1 required arg: DST (new name)', 'imgtool tag --help'],
      [['tag', 'a', 'b', 'c'], 'Unexpected argument: c', 'imgtool tag --help'],
      [['save', '-o', 'x.tar', '--format', 'zip', 'a:1'], 'Expected --format=zip to be one of: oci+docker, oci, docker', 'imgtool save --help'],
      [['export-rootfs', 'a:1'], 'Exactly one of the following must be provided: --dir, --output', 'imgtool export-rootfs --help'],
      [['pull', '--jobs', '0', 'a'], 'Parsing --jobs: Expected an integer greater than or equal to 1 but received: 0', 'imgtool pull --help'],
    ] as Array<[string[], string, string]>) {
      const r = await cli(args);
      expect([args.join(' '), r.code, r.stderr]).toEqual([args.join(' '), 2, `imgtool: error: ${msg}\nSee more help with: ${help}\n`]);
      expect(r.stdout).toBe('');
    }
  });

  it('a greedy multiple flag takes the following words (lease create --label a=1 b=2)', async () => {
    const r = await cli(['lease', 'create', '--id', 'l1', '--json', '--label', 'a=1', 'b=2']);
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout).labels).toEqual({ a: '1', b: '2' });
  });
});
