import { ImgtoolCommand, Flags, Args } from '../src/cli';
import { InvalidArgumentError } from '../src/errors';
import { login } from '../src/registry/login';

export default class Login extends ImgtoolCommand<typeof Login> {
  static override summary = 'Log in to a registry: check the credentials against it, then store them.';
  static override description = `Stored through the configured credential helper (credHelpers / credsStore of Docker's config.json), else in config.json ($DOCKER_CONFIG or ~/.docker/config.json), rewritten atomically with mode 0600 and every other key kept. The password is read from stdin with --password-stdin (never give it as an argument); it is never printed.`;

  static override examples = ['echo "$TOKEN" | <%= config.bin %> login ghcr.io -u me --password-stdin'];

  static override args = { registry: Args.string({ required: true, description: 'registry host (e.g. ghcr.io, localhost:5000)' }) };

  static override flags = {
    username: Flags.string({ char: 'u', description: 'user name' }),
    'password-stdin': Flags.boolean({ default: false, description: 'read the password from stdin' }),
    insecure: Flags.boolean({ default: false, description: 'allow plain HTTP and unverified TLS' }),
    'ca-file': Flags.string({ description: 'extra CA certificate(s) (PEM) to trust' }),
  };

  async run(): Promise<void> {
    const f = this.flags;
    if (!f.username) throw new InvalidArgumentError('give the user name with -u USER');
    if (!f['password-stdin']) throw new InvalidArgumentError('give the password on stdin with --password-stdin');
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    const password = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
    if (!password) throw new InvalidArgumentError('empty password on stdin');
    const r = await login(this.args.registry, f.username, password, { insecure: f.insecure, caFile: f['ca-file'] });
    if (f.json) return this.outJSON(r);
    this.out(`login succeeded for ${r.registry} (stored in ${r.stored})`);
  }
}
