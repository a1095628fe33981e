import { ImgtoolCommand, Args } from '../src/cli';
import { logout } from '../src/registry/login';

export default class Logout extends ImgtoolCommand<typeof Logout> {
  static override summary = 'Remove the stored credentials of a registry (credential helper, else config.json, rewritten atomically).';
  static override description = `Remove the stored credentials of a registry (credential helper, else config.json, rewritten atomically).`;

  static override args = { registry: Args.string({ required: true, description: 'registry host' }) };

  async run(): Promise<void> {
    const r = await logout(this.args.registry);
    if (this.flags.json) return this.outJSON(r);
    this.out(r.removed ? `removed credentials for ${r.registry} from ${r.where}` : `not logged in to ${r.registry}`);
  }
}
