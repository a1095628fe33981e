import { ImgtoolCommand } from '../../src/cli';
import { leaseIsLive } from '../../src/leases';

export default class LeaseLs extends ImgtoolCommand<typeof LeaseLs> {
  static override summary = 'List leases: id, type (user or process), created, expiry, resources held, live or not.';
  static override aliases = ['lease list'];

  async run(): Promise<void> {
    const counts = this.store.leases.resourceCounts();
    const now = Date.now();
    const rows = this.store.leases.list().map((l) => ({
      id: l.id,
      type: l.type,
      createdAt: new Date(l.createdAt).toISOString(),
      expiresAt: l.expiresAt !== undefined ? new Date(l.expiresAt).toISOString() : null,
      pid: l.pid ?? null,
      labels: l.labels,
      resources: counts.get(l.id) ?? 0,
      live: leaseIsLive(l, now),
    }));
    if (this.flags.json) return this.outJSON(rows);
    this.outTable(rows, [
      { header: 'ID', value: (r) => r.id },
      { header: 'TYPE', value: (r) => r.type },
      { header: 'CREATED', value: (r) => r.createdAt },
      { header: 'EXPIRES', value: (r) => r.expiresAt ?? 'never' },
      { header: 'RESOURCES', value: (r) => String(r.resources), align: 'right' },
      { header: 'STATE', value: (r) => (r.live ? 'live' : r.type === 'process' ? `dead (pid ${r.pid})` : 'expired') },
    ]);
  }
}
