import { ImgtoolCommand, Flags } from '../../src/cli';
import { InvalidArgumentError } from '../../src/errors';
import { parseDuration } from '../../src/leases';

export default class LeaseCreate extends ImgtoolCommand<typeof LeaseCreate> {
  static override summary = 'Create a lease: prune keeps what is attached to it.';
  static override description = `Create a lease: what is attached to it (with \`--lease ID\` on load, save, convert, unpack) is kept by prune until the lease is removed or expires.`;
  static override flags = {
    id: Flags.string({ description: 'lease id (default: generated)' }),
    expire: Flags.string({ description: 'expire after DURATION (e.g. 10m, 24h, 7d); default: never' }),
    label: Flags.string({ description: 'label KEY=VALUE (repeatable)', multiple: true }),
  };

  async run(): Promise<void> {
    const labels: Record<string, string> = {};
    for (const l of this.flags.label ?? []) {
      const i = l.indexOf('=');
      if (i <= 0) throw new InvalidArgumentError(`invalid label ${JSON.stringify(l)}: use KEY=VALUE`);
      labels[l.slice(0, i)] = l.slice(i + 1);
    }
    const lease = this.store.leases.create({
      id: this.flags.id,
      labels,
      expiresInMs: this.flags.expire !== undefined ? parseDuration(this.flags.expire) : undefined,
    });
    const info = lease.info()!;
    if (this.flags.json) return this.outJSON({ ...info, expiresAt: info.expiresAt !== undefined ? new Date(info.expiresAt).toISOString() : null, createdAt: new Date(info.createdAt).toISOString() });
    this.out(info.id);
  }
}
