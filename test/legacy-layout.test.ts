import { createLogger } from '@hfq/shared';
import {
  accountHoldKey,
  credentialId,
  creditGateKey,
  domainStateKey,
  ledgerMonth,
  spendLedgerKey,
} from '@hfq/shared/internal';
import { createWorker } from '@hfq/worker';
import { Queue } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import { adminRedis, expectNoClientsLeft, redisUrl, testPrefix } from './support/redis.js';

/**
 * Starting this version on data of the layout without hash tags (docs/redis-cluster.md,
 * 'Migrating'): an old queue with unfinished jobs stops the worker with what to do; hfq's own state
 * moves to its tagged keys, TTL kept, once.
 */

const HF = 'hf_test_legacy_0123456789abcdef';
const account = { id: 'acme', tier: 'pro' as const, hfToken: HF, limit: { max: 50, durationMs: 1000 } };
const logger = createLogger({ level: 'silent' });

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('the layout without hash tags', () => {
  it('refuses to start while an old queue holds jobs, then moves the old state keys once', async () => {
    const prefix = testPrefix('lg');
    const admin = adminRedis();
    cleanups.push(() => admin.quit());
    const domain = await credentialId(HF);
    const month = ledgerMonth(Date.now());
    // What the previous version left: a job waiting in the old queue, an operator's override and a
    // learned rate, a closed gate, this month's spend, a hold.
    const old = new Queue('account-acme', { connection: admin, prefix });
    await old.add('feature-extraction', { v: 1 });
    await old.close();
    await admin.hset(`${prefix}:hfq:domain:${domain}`, 'rate', '18');
    await admin.set(`${prefix}:hfq:domain:${domain}:override`, '20');
    await admin.hset(`${prefix}:hfq:credits:account:acme`, 'exhaustedUntil', String(Date.now() + 60_000));
    await admin.hset(`${prefix}:hfq:spend:account:acme:${month}`, 'usd:hf-router', '1.5');
    await admin.pexpire(`${prefix}:hfq:spend:account:acme:${month}`, 3_600_000);
    await admin.set(`${prefix}:hfq:hold:acme`, 'token revoked');

    const start = () => createWorker({ connection: redisUrl(), prefix, accounts: [account], logger });
    await expect(start()).rejects.toThrow(/account-acme holds 1 unfinished jobs.*previous hfq version/);
    expect(await admin.exists(domainStateKey(prefix, domain))).toBe(0);

    // Drained (here: removed), the worker starts and the state is under the tagged keys.
    const drained = new Queue('account-acme', { connection: admin, prefix });
    await drained.obliterate({ force: true });
    await drained.close();
    const worker = await start();
    cleanups.push(() => worker.close());
    expect(await admin.hget(domainStateKey(prefix, domain), 'rate')).toBe('18');
    expect(await admin.get(`${domainStateKey(prefix, domain)}:override`)).toBe('20');
    expect(await admin.hget(creditGateKey(prefix, 'account:acme'), 'exhaustedUntil')).not.toBeNull();
    const ledger = spendLedgerKey(prefix, 'account:acme', month);
    expect(await admin.hget(ledger, 'usd:hf-router')).toBe('1.5');
    const ttl = await admin.pttl(ledger);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(3_600_000);
    expect(await admin.get(accountHoldKey(prefix, 'acme'))).toBe('token revoked');
    const oldKeys = [
      `${prefix}:hfq:domain:${domain}`,
      `${prefix}:hfq:domain:${domain}:override`,
      `${prefix}:hfq:credits:account:acme`,
      `${prefix}:hfq:spend:account:acme:${month}`,
      `${prefix}:hfq:hold:acme`,
    ];
    expect(await admin.exists(...oldKeys)).toBe(0);

    // A second start finds nothing to move and changes nothing.
    await worker.close();
    const again = await start();
    cleanups.push(() => again.close());
    expect(await admin.hget(domainStateKey(prefix, domain), 'rate')).toBe('18');
    expect(await admin.get(`${domainStateKey(prefix, domain)}:override`)).toBe('20');
    await again.close();
    await expectNoClientsLeft(admin, prefix);
  });
});
