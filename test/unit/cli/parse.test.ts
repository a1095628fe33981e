/**
 * The command-line parser (src/cli/parse.ts) that replaced oclif's: the rules and words of the
 * errors a careless user or a script meets, and what commands receive.
 */
import { Args, Flags } from '../../../src/cli/flags';
import { parseCommandLine, UsageError } from '../../../src/cli/parse';
import type { ParseSpec } from '../../../src/cli/parse';

const spec: ParseSpec = {
  flags: {
    root: Flags.string({ description: 'store' }),
    quiet: Flags.boolean({ char: 'q', default: false }),
    'dry-run': Flags.boolean({ char: 'n' }),
    output: Flags.string({ char: 'o' }),
    compression: Flags.string({ options: ['gzip', 'zstd', 'none'], default: 'gzip' }),
    level: Flags.integer({ min: 1, max: 19 }),
    platform: Flags.string({ multiple: true, multipleNonGreedy: true, exclusive: ['all-platforms'] }),
    'all-platforms': Flags.boolean({ default: false }),
    label: Flags.string({ multiple: true }),
  },
  args: { src: Args.string({ required: true, description: 'image to convert' }), dst: Args.string({ description: 'new name' }) },
};

const parse = (argv: string[], s: ParseSpec = spec) => parseCommandLine(argv, s);
const usage = (argv: string[], s: ParseSpec = spec): string => {
  try {
    parse(argv, s);
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    expect((e as UsageError).exitCode).toBe(2);
    expect((e as Error).message).not.toContain('\n');
    return (e as Error).message;
  }
  throw new Error(`no usage error for ${argv.join(' ')}`);
};

describe('parseCommandLine', () => {
  it('fills defaults, false booleans and leaves absent value flags undefined', () => {
    const r = parse(['a']);
    expect(r.flags).toEqual({ quiet: false, 'dry-run': false, compression: 'gzip', 'all-platforms': false });
    expect(r.args).toEqual({ src: 'a', dst: undefined });
    expect(r.argv).toEqual(['a']);
  });

  it('takes --flag value, --flag=value, -o value, -ovalue, -o=value and grouped short booleans', () => {
    expect(parse(['--root', '/s', 'a']).flags.root).toBe('/s');
    expect(parse(['--root=/s=x', 'a']).flags.root).toBe('/s=x');
    expect(parse(['-o', 'out.tar', 'a']).flags.output).toBe('out.tar');
    expect(parse(['-oout.tar', 'a']).flags.output).toBe('out.tar');
    expect(parse(['-o=out.tar', 'a']).flags.output).toBe('out.tar');
    const g = parse(['-qn', 'a']);
    expect([g.flags.quiet, g.flags['dry-run']]).toEqual([true, true]);
    expect(parse(['-qo', 'f', 'a']).flags).toMatchObject({ quiet: true, output: 'f' });
  });

  it('takes a dash word as a value (stdout, negative numbers) but not another of its flags', () => {
    expect(parse(['-o', '-', 'a']).flags.output).toBe('-');
    expect(usage(['--output', '--quiet', 'a'])).toBe('Flag --output expects a value');
    expect(usage(['--output', '-q', 'a'])).toBe('Flag --output expects a value');
    expect(usage(['a', '--output'])).toBe('Flag --output expects a value');
    expect(usage(['a', '--compression'])).toBe('Flag --compression expects one of these values: gzip, zstd, none');
    expect(parse(['--output=--quiet', 'a']).flags.output).toBe('--quiet');
  });

  it('refuses unknown flags, naming each', () => {
    expect(usage(['a', '--bogus'])).toBe('Nonexistent flag: --bogus');
    expect(usage(['a', '--bogus=1', '-z'])).toBe('Nonexistent flags: --bogus, -z');
  });

  it('checks options, integers and their bounds', () => {
    expect(parse(['--compression', 'zstd', 'a']).flags.compression).toBe('zstd');
    expect(usage(['--compression', 'brotli', 'a'])).toBe('Expected --compression=brotli to be one of: gzip, zstd, none');
    expect(parse(['--level', '19', 'a']).flags.level).toBe(19);
    expect(usage(['--level', 'abc', 'a'])).toBe('Parsing --level: Expected an integer but received: abc');
    expect(usage(['--level', '1.5', 'a'])).toBe('Parsing --level: Expected an integer but received: 1.5');
    expect(usage(['--level', '0', 'a'])).toBe('Parsing --level: Expected an integer greater than or equal to 1 but received: 0');
    expect(usage(['--level', '20', 'a'])).toBe('Parsing --level: Expected an integer less than or equal to 19 but received: 20');
  });

  it('a value flag once unless multiple; multiple keeps the order; greedy multiple takes the following words', () => {
    expect(usage(['-o', 'x', '-o', 'y', 'a'])).toBe('Flag --output can only be specified once');
    expect(parse(['--platform', 'linux/amd64', 'a', '--platform=linux/arm64']).flags.platform).toEqual(['linux/amd64', 'linux/arm64']);
    // non-greedy: the word after the value is an argument
    expect(parse(['--platform', 'linux/amd64', 'a', 'b']).args).toEqual({ src: 'a', dst: 'b' });
    // greedy (oclif's default for multiple): words up to the next flag are values
    const g = parse(['a', '--label', 'k=v', 'k2=v2', '-q']);
    expect(g.flags.label).toEqual(['k=v', 'k2=v2']);
    expect(g.flags.quiet).toBe(true);
  });

  it('a boolean takes no value', () => {
    expect(usage(['--quiet=yes', 'a'])).toBe('Flag --quiet does not take a value');
  });

  it('everything after -- is an argument, and - alone is one', () => {
    const r = parse(['--', '-q', '--bogus']);
    expect(r.args).toEqual({ src: '-q', dst: '--bogus' });
    expect(r.flags.quiet).toBe(false);
    expect(parse(['-', 'x']).args.src).toBe('-');
    expect(parse(['a', '--label', 'k=v', '--', 'b']).flags.label).toEqual(['k=v']);
  });

  it('required and extra arguments; non-strict commands get every argument in argv', () => {
    expect(usage([])).toBe('Missing 1 required arg: SRC (image to convert)');
    expect(usage(['a', 'b', 'c', 'd'])).toBe('Unexpected arguments: c, d');
    const loose = parse(['a', 'b', 'c'], { ...spec, strict: false });
    expect(loose.argv).toEqual(['a', 'b', 'c']);
    expect(loose.args).toEqual({ src: 'a', dst: 'b' });
  });

  it('required flags, exclusive, exactlyOne and dependsOn are checked on what was given, not defaults', () => {
    const s: ParseSpec = {
      flags: {
        output: Flags.string({ char: 'o', exactlyOne: ['output', 'dir'] }),
        dir: Flags.string({ exactlyOne: ['output', 'dir'] }),
        name: Flags.string({ required: true }),
        pin: Flags.boolean({ default: false, dependsOn: ['name'] }),
      },
    };
    expect(usage(['-o', 'x'], s)).toBe('Missing required flag --name');
    expect(usage(['--name', 'n'], s)).toBe('Exactly one of the following must be provided: --dir, --output');
    expect(usage(['--name', 'n', '-o', 'x', '--dir', 'd'], s)).toBe('Only one of the following can be provided: --dir, --output');
    expect(parse(['--name', 'n', '--dir', 'd', '--pin'], s).flags).toMatchObject({ dir: 'd', pin: true });
    expect(usage(['--platform', 'x', '--all-platforms', 'a'])).toBe('--all-platforms cannot also be provided when using --platform');
    // a default (all-platforms=false) is not "given"
    expect(parse(['--platform', 'x', 'a']).flags['all-platforms']).toBe(false);
  });

  it('reads flag names as own keys only (no prototype names)', () => {
    expect(usage(['a', '--constructor'])).toBe('Nonexistent flag: --constructor');
    expect(usage(['a', '--__proto__=1'])).toBe('Nonexistent flag: --__proto__');
  });
});
