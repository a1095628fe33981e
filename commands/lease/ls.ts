import { ImgtoolCommand, leaseIsLive } from '../../src/index';

export default class LeaseLs extends ImgtoolCommand<typeof LeaseLs> {
  static override description = 'List leases: id, type (user or process), created, expiry, resources held, live or not.';
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
    const w = Math.max(2, ...rows.map((r) => r.id.length));
    this.out(`${'ID'.padEnd(w)}  TYPE     CREATED                   EXPIRES                   RESOURCES  STATE`);
    for (const r of rows) {
      const state = r.live ? 'live' : r.type === 'process' ? `dead (pid ${r.pid})` : 'expired';
      this.out(`${r.id.padEnd(w)}  ${r.type.padEnd(7)}  ${r.createdAt.padEnd(24)}  ${(r.expiresAt ?? 'never').padEnd(24)}  ${String(r.resources).padEnd(9)}  ${state}`);
    }
  }
}
