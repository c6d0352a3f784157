import { credentialId, DomainLimiter } from '@hfq/shared/internal';
import { createAdmin } from '@hfq/worker';
import { describe, expect, it, vi } from 'vitest';
import { HfqProcess } from './support/processes.js';
import { startStack } from './support/stack.js';

/**
 * `hfq limit` and `hfq credits reset` with only REDIS_URL and HFQ_PREFIX: the account is found in
 * what its worker published. An override shows as an override (status, JSON, the cockpit's
 * history) and can lapse by itself (`--for`).
 */

const TOKEN = 'hf_limit_redis_only_0123456789';
const ACCOUNT = { id: 'acme', tier: 'pro' as const, hfToken: TOKEN, limit: { max: 20, durationMs: 1000 } };

async function cli(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; out: string }> {
  const proc = HfqProcess.start(args, env);
  const exit = await proc.exited;
  return { code: exit.code, out: proc.lines.join('\n') };
}

describe('operator commands need only Redis', () => {
  it('hfq limit with --for: shown as an override until it lapses; credits reset; an unknown account', async () => {
    const stack = await startStack({ label: 'lim', accounts: [ACCOUNT] });
    await stack.startWorker({ cockpitFlushMs: 200 });
    // Nothing but Redis and the prefix: no account, no token.
    const env = { REDIS_URL: stack.redisUrl, HFQ_PREFIX: stack.prefix };

    const set = await cli(['limit', 'acme', '5', '--for', '2h'], env);
    expect(set.code, set.out).toBe(0);
    expect(set.out).toMatch(
      /^acme: 5 requests per 1000 ms \(override of the configured 20; until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\)$/m,
    );
    expect(set.out).toMatch(/^learned state: .*cleared learned rate/m);
    const until = Date.parse(/until (\S+)\)$/m.exec(set.out)?.[1] ?? '');
    expect(until - Date.now()).toBeGreaterThan(7_100_000);
    expect(until - Date.now()).toBeLessThanOrEqual(7_200_000);

    const json = await cli(['status', '--json'], env);
    expect(json.code, json.out).toBe(0);
    const row = (JSON.parse(json.out) as { accounts: Record<string, unknown>[] }).accounts.find(
      (a) => a.account === 'acme',
    );
    expect(row?.configuredRate).toEqual({ max: 5, durationMs: 1000 });
    expect(row?.override).toMatchObject({ max: 5, configuredMax: 20 });
    const override = row?.override as { untilMs: number } | undefined;
    expect(Math.abs(Number(override?.untilMs) - until)).toBeLessThan(2_000);
    const text = await cli(['status'], env);
    expect(text.out).toMatch(/\/5 per 1s \(override of 20 until \d\d:\d\dZ\)/);

    // The cockpit's history records the override as its own series beside the configured limit.
    const admin = stack.newAdmin([]);
    await vi.waitFor(
      async () => {
        const points = await admin.history('acme');
        expect(points.some((p) => p.overrideRate === 5 && p.configuredRate === 20)).toBe(true);
      },
      { timeout: 20_000, interval: 500 },
    );

    const reset = await cli(['credits', 'reset', 'acme'], env);
    expect(reset.code, reset.out).toBe(0);
    expect(reset.out).toBe('credits reset for account:acme');

    const unknown = await cli(['limit', 'acme-typo', '5'], env);
    expect(unknown.code).toBe(2);
    expect(unknown.out.split('\n')[0]).toBe(
      `hfq limit: unknown account "acme-typo": no worker under prefix "${stack.prefix}" has published it and it is not configured here (known: acme)`,
    );
    const bad = await cli(['limit', 'acme', '5', '--for', 'soon'], env);
    expect(bad.code).toBe(2);
    expect(bad.out.split('\n')[0]).toContain('--for takes a duration such as 30s, 15m, 2h or 1d');

    const cleared = await cli(['limit', 'acme', 'default'], env);
    expect(cleared.out.split('\n')[0]).toBe('acme: 20 requests per 1000 ms (configured)');
    await stack.stop();
  });

  it('an override set for a while lapses by itself, and the configured limit is back', async () => {
    const stack = await startStack({ label: 'lim', accounts: [ACCOUNT] });
    await stack.startWorker();
    const admin = createAdmin({ connection: stack.redisUrl, prefix: stack.prefix });
    stack.defer(() => admin.close());
    const set = await admin.setLimit('acme', 3, { forMs: 1_500 });
    expect(set).toMatchObject({ max: 3, configuredMax: 20 });
    const [before] = await admin.status();
    expect(before?.override).toMatchObject({ max: 3, configuredMax: 20 });
    expect(before?.configuredRate?.max).toBe(3);
    // The override key carries the TTL; the domain's limit follows it.
    const limiter = new DomainLimiter(stack.redis(), stack.prefix);
    const domain = await credentialId(TOKEN);
    expect((await limiter.state(domain)).overrideUntilMs).toBeGreaterThan(Date.now());
    await vi.waitFor(
      async () => {
        const [after] = await admin.status();
        expect(after?.override).toBeUndefined();
        expect(after?.configuredRate?.max).toBe(20);
      },
      { timeout: 10_000, interval: 250 },
    );
    await stack.stop();
  });
});
