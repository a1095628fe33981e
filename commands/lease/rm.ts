import { ImgtoolCommand, Args } from '../../src/cli';
import { NotFoundError } from '../../src/errors';

export default class LeaseRm extends ImgtoolCommand<typeof LeaseRm> {
  static override summary = 'Remove leases. What only they held goes at the next `imgtool prune`.';
  static override strict = false;
  static override args = { id: Args.string({ required: true, description: 'lease id(s)' }) };

  async run(): Promise<void> {
    const { argv } = await this.parse(LeaseRm);
    const ids = argv as string[];
    const removed = this.store.meta.write(() => {
      const unknown = ids.filter((id) => !this.store.leases.get(id));
      if (unknown.length) throw new NotFoundError(`lease ${unknown.map((u) => JSON.stringify(u)).join(', ')} not found; nothing removed`);
      for (const id of ids) this.store.leases.remove(id);
      return ids;
    });
    if (this.flags.json) this.outJSON({ removed });
    else for (const id of removed) this.out(`removed ${id}`);
  }
}
