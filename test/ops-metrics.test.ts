import type { AccountConfigInput } from '@hfq/shared';
import { createHealthServer } from '@hfq/worker';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { SpawnedRedis } from '../packages/cli/src/local-redis.js';
import { chatJob, http, metricsPortOf, sample, silentLogger } from './ops-support.js';
import type { HfqProcess } from './support/processes.js';
import { adminRedis, expectNoClientsLeft } from './support/redis.js';
import { expectNoSecrets, type Stack, startStack } from './support/stack.js';
import { waitFor } from './support/wait.js';

const TOKEN = 'hf_metrics_secret_0123456789abcdef';
const PROVIDER_KEY = 'tgk-metrics-provider-key-0123456789';
const ACCOUNTS: AccountConfigInput[] = [
  {
    id: 'alpha',
    tier: 'pro',
    hfToken: TOKEN,
    limit: { max: 50, durationMs: 1000 },
    providerKeys: { together: PROVIDER_KEY },
  },
];
const JOBS = 20;

describe('worker process: /metrics, /healthz, /readyz', () => {
  let stack: Stack;
  let prefix: string;
  let worker: HfqProcess;
  let base = '';

  beforeAll(async () => {
    // Shared by the suite: one worker process, read while it runs, then stopped by the last test.
    stack = await startStack({
      label: 'metrics',
      sim: { latency: { baseMs: 0, jitterMs: 0, minMs: 5, maxMs: 20 } },
      tokens: { [TOKEN]: { label: 'alpha' } },
      accounts: ACCOUNTS,
      teardown: 'caller',
    });
    prefix = stack.prefix;
    [worker] = (await stack.startWorkerProcesses(1, { concurrency: 4 })) as [HfqProcess];
    base = `http://127.0.0.1:${metricsPortOf(worker)}`;
  });

  afterAll(() => stack?.stop());

  it('answers /healthz and /readyz while running', async () => {
    const health = await http(`${base}/healthz`);
    expect(health.status).toBe(200);
    const ready = await http(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.text)).toEqual({ status: 'ready', checks: { redis: 'ok', worker: 'running' } });
    expect((await http(`${base}/nope`)).status).toBe(404);
    expect((await http(`${base}/metrics`, { method: 'POST' })).status).toBe(405);
  });

  it('exposes jobs, upstream requests, 429s, throttled time, rates, credits, spend and latency, without secrets', async () => {
    const producer = stack.newProducer();
    try {
      // One 429 with Retry-After: the domain pauses for the stated wait; a single 429 is noise, so no
      // congestion episode and the learned rate stays (see docs/architecture.md, "What a 429 means").
      stack.sim.script(TOKEN, [{ status: 429, retryAfter: 1 }]);
      const handles = await producer.enqueueMany(
        Array.from({ length: JOBS }, (_, i) => chatJob('alpha', `question ${i}`)),
      );
      await Promise.all(handles.map((h) => h.result({ timeoutMs: 30_000 })));
    } finally {
      await producer.close();
    }
    // Spend reaches the ledger in batches; the gauges refresh at most once a second.
    let text = '';
    await waitFor(async () => {
      text = (await http(`${base}/metrics`)).text;
      return (sample(text, 'hfq_estimated_spend_usd', { account: 'alpha', route: 'hf-router' }) ?? 0) > 0;
    }, 'spend in /metrics');
    const router = { account: 'alpha', route: 'hf-router' };

    expect(sample(text, 'hfq_jobs_total', { account: 'alpha', outcome: 'completed' })).toBe(JOBS);
    expect(sample(text, 'hfq_jobs_total', { account: 'alpha', outcome: 'requeued' })).toBeGreaterThanOrEqual(
      1,
    );
    expect(sample(text, 'hfq_job_duration_seconds_count', { account: 'alpha', outcome: 'completed' })).toBe(
      JOBS,
    );
    expect(sample(text, 'hfq_upstream_requests_total', { ...router, status: '200' })).toBe(JOBS);
    expect(sample(text, 'hfq_upstream_requests_total', { ...router, status: '429' })).toBe(1);
    expect(sample(text, 'hfq_upstream_429_total', router)).toBe(1);
    expect(sample(text, 'hfq_upstream_request_duration_seconds_count', router)).toBe(JOBS);
    expect(sample(text, 'hfq_congestion_episodes_total', router) ?? 0).toBe(0);
    expect(sample(text, 'hfq_throttled_seconds_total', router)).toBeGreaterThanOrEqual(0.9);
    expect(sample(text, 'hfq_rate_configured_per_second', router)).toBe(50);
    expect(sample(text, 'hfq_rate_learned_per_second', router) ?? 50).toBe(50);
    expect(sample(text, 'hfq_domain_429s_5m', router)).toBe(1);
    expect(sample(text, 'hfq_rate_configured_per_second', { account: 'alpha', route: 'provider-key' })).toBe(
      10,
    );
    expect(sample(text, 'hfq_credits_state', { account: 'alpha', scope: 'account:alpha', state: 'ok' })).toBe(
      1,
    );
    expect(
      sample(text, 'hfq_credits_state', { account: 'alpha', scope: 'account:alpha', state: 'exhausted' }),
    ).toBe(0);
    expect(sample(text, 'hfq_account_route', { account: 'alpha', route: 'hf-router' })).toBe(1);
    expect(sample(text, 'hfq_account_held', { account: 'alpha' })).toBe(0);
    // No budget set: none shown for the router; the tier's included credits are.
    expect(sample(text, 'hfq_budget_usd', router)).toBeUndefined();
    expect(sample(text, 'hfq_included_credits_usd', { account: 'alpha' })).toBe(2);
    expect(sample(text, 'hfq_reused_results', { account: 'alpha' })).toBe(0);
    expect(sample(text, 'hfq_queue_jobs', { account: 'alpha', state: 'completed' })).toBe(JOBS);
    expect(sample(text, 'hfq_worker_running', { account: 'alpha' })).toBe(1);
    expect(sample(text, 'hfq_process_resident_memory_bytes')).toBeGreaterThan(0);

    // Labels: no secret anywhere, domains are 16-hex hashes.
    expectNoSecrets(text, [TOKEN, PROVIDER_KEY], '/metrics');
    expect(text).not.toContain('hf_');
    const domains = [...text.matchAll(/domain="([^"]*)"/g)].map((m) => m[1]);
    expect(domains.length).toBeGreaterThan(0);
    for (const domain of domains) expect(domain).toMatch(/^[0-9a-f]{16}$/);
  });

  it('stops on SIGTERM with exit 0 and no connection left', async () => {
    const admin = adminRedis();
    try {
      const exit = await worker.stop('SIGTERM');
      expect(exit.code).toBe(0);
      await expectNoClientsLeft(admin, prefix);
      expectNoSecrets(worker.lines.join('\n'), [TOKEN, PROVIDER_KEY], 'worker logs');
    } finally {
      await admin.quit();
    }
  });
});

describe('/readyz follows Redis', () => {
  it('answers 503 while Redis is down and 200 again once it is back', async () => {
    const redis = await SpawnedRedis.start({ appendOnly: true });
    // Registered before the stack's own teardown, so it runs after it: Redis goes last.
    onTestFinished(() => redis.stop());
    const stack = await startStack({ label: 'ready', redisUrl: redis.url, accounts: ACCOUNTS });
    const { prefix } = stack;
    const worker = await stack.startWorker({ logger: silentLogger() });
    const health = await createHealthServer({
      worker,
      connection: redis.url,
      prefix,
      accounts: ACCOUNTS,
      port: 0,
      host: '127.0.0.1',
      pingTimeoutMs: 300,
    });
    stack.defer(() => health.close());
    expect((await http(`${health.url}/readyz`)).status).toBe(200);
    await redis.kill();
    const down = await http(`${health.url}/readyz`);
    expect(down.status).toBe(503);
    expect(JSON.parse(down.text).checks.redis).not.toBe('ok');
    // Liveness does not depend on Redis: restarting the process would not help.
    expect((await http(`${health.url}/healthz`)).status).toBe(200);
    // Metrics still answer from the last values, counting the failed refresh.
    const metrics = await http(`${health.url}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.text).toContain('hfq_metrics_refresh_errors_total');

    await redis.launch();
    await waitFor(async () => (await http(`${health.url}/readyz`)).status === 200, '/readyz to recover');
    // The worker is back too: it runs a job. (Closing a BullMQ worker while its blocking
    // connection waits to reconnect never ends, so the test closes only after this.)
    const producer = stack.newProducer();
    try {
      const handle = await producer.enqueue(chatJob('alpha', 'after the restart'));
      await handle.result({ timeoutMs: 20_000 });
    } finally {
      await producer.close();
    }
    health.markStopping();
    const stopping = await http(`${health.url}/readyz`);
    expect(stopping.status).toBe(503);
    expect(JSON.parse(stopping.text).checks.worker).toBe('stopping');
  });
});
