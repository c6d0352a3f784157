import { CreditState, creditScope, LEDGER_FIELDS } from '@hfq/shared/internal';

/** Two months after the last write (credit-state.ts). */
const LEDGER_TTL_MS = 62 * 86_400_000;

import { describe, expect, it } from 'vitest';
import { monitorCommands, redisForEachTest } from '../../../test/support/redis.js';
import { waitFor } from '../../../test/support/wait.js';

const { connect, newPrefix } = redisForEachTest('spend');

describe('spend ledger writes', () => {
  it('adds every amount, refreshes the TTL once a minute, and gives a new ledger its TTL at once', async () => {
    const prefix = newPrefix();
    const redis = connect();
    const credits = new CreditState(redis, prefix);
    const scope = creditScope({ id: 'acme' });
    const at = Date.UTC(2026, 10, 15);
    const key = credits.ledgerKey(scope, at);
    const { seen, stop: stopMonitor } = await monitorCommands();
    const write = (usd: number) =>
      credits.addSpend(scope, at, { [LEDGER_FIELDS.hfRouterUsd]: usd, [LEDGER_FIELDS.hfRouterRequests]: 1 });
    for (let i = 0; i < 10; i++) await write(0.001);
    // The ledger went away (deleted by hand) within the minute: the next write is its first again.
    await redis.del(key);
    await write(0.002);
    await write(0.003);
    await waitFor(() => seen.filter((l) => /^eval(sha)? /i.test(l)).length >= 12, 'the writes to show');
    stopMonitor();
    const pexpires = seen.filter((l) => l.startsWith(`PEXPIRE ${key} `));
    // The first write, and the first after the ledger was lost: not one per write.
    expect(pexpires).toHaveLength(2);
    expect(seen.some((l) => /^(multi|exec)$/i.test(l))).toBe(false);
    expect(await redis.pttl(key)).toBeGreaterThan(LEDGER_TTL_MS - 60_000);
    const spend = await credits.spend(scope, at);
    expect(spend.hfRouterRequests).toBe(2);
    expect(spend.hfRouterUsd).toBeCloseTo(0.005, 10);
  });
});
