/**
 * A user lease that expires while a command runs must not go on accepting resources: prune treats
 * it as dead, so a resource attached after its expiry would look held by the lease and not be.
 */
import { withCommandLease } from '../../../src/leases';
import { useTempStore } from '../../helpers/store';

describe('user lease expiry', () => {
  const t = useTempStore('imgtool-lease-expiry-');

  it('refuses an attach after the lease expired, naming the lease and the expiry', async () => {
    const l = t.store.leases.create({ id: 'short', expiresInMs: 200 });
    const lease = t.store.leases.open(l.id);
    lease.attach('content', 'sha256:' + 'a'.repeat(64));
    await new Promise((r) => setTimeout(r, 250));
    expect(() => lease.attach('content', 'sha256:' + 'b'.repeat(64))).toThrow(/lease "short" expired: it expired at \d{4}-/);
    expect(t.store.leases.resources('short').map((r) => r.ref)).toEqual(['sha256:' + 'a'.repeat(64)]);
  });

  it('fails a command whose --lease expires during the work, and commits nothing more under it', async () => {
    t.store.leases.create({ id: 'mid', expiresInMs: 200 });
    await expect(
      withCommandLease(t.store, 'mid', async (holder) => {
        holder.attach('content', 'sha256:' + 'c'.repeat(64));
        await new Promise((r) => setTimeout(r, 250));
        holder.attach('content', 'sha256:' + 'd'.repeat(64));
      }),
    ).rejects.toThrow(/lease "mid" expired/);
    expect(t.store.leases.resources('mid').map((r) => r.ref)).toEqual(['sha256:' + 'c'.repeat(64)]);
  });
});
