import { createProducer, JobFailedError } from '@hfq/producer';
import { createLogger, type Job } from '@hfq/shared';
import { type Sim, startSim } from '@hfq/sim';
import { createWorker, type HfqWorker } from '@hfq/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminRedis, expectNoClientsLeft, redisUrl, testPrefix } from './support/redis.js';
import { upstreamOf } from './support/stack.js';

const TOKEN = 'hf_test_errors_0123456789abcdef';
const classify = (text: string): Job => ({
  account: 'acme',
  task: 'text-classification',
  model: 'distilbert/distilbert-base-uncased-finetuned-sst-2-english',
  inputs: text,
});

describe('upstream errors by class', () => {
  const prefix = testPrefix('err');
  let sim: Sim;
  let worker: HfqWorker;
  let producer: ReturnType<typeof createProducer>;

  beforeAll(async () => {
    sim = await startSim();
    sim.setToken(TOKEN, { label: 'acme' });
    worker = await createWorker({
      connection: redisUrl(),
      prefix,
      accounts: [{ id: 'acme', tier: 'pro', hfToken: TOKEN }],
      upstream: upstreamOf(sim),
      concurrency: 1,
      logger: createLogger({ level: 'silent' }),
    });
    producer = createProducer({ connection: redisUrl(), prefix });
  });

  afterAll(async () => {
    await producer.close();
    await worker.close();
    await sim.close();
    const admin = adminRedis();
    await expectNoClientsLeft(admin, prefix);
    await admin.quit();
  });

  it('retries a 5xx with backoff, then succeeds', async () => {
    sim.script(TOKEN, [{ status: 500 }, { status: 503, body: 'Service Temporarily Unavailable' }]);
    const handle = await producer.enqueue(classify('five hundred'));
    const result = await handle.result({ timeoutMs: 30_000 });
    expect(result.attempts).toBe(3);
    const job = await producer.queue('acme').getJob(handle.id);
    expect(job?.attemptsMade).toBe(3);
  });

  // A router 401, or a 403 about the account, holds it instead; a 403 about one model fails its job (test/credit-gates.test.ts).
  it.each([400, 404, 422])(
    'fails a %i at once, with status, request id and upstream message',
    async (status) => {
      sim.script(TOKEN, [{ status, body: { error: `upstream says no (${status})` } }]);
      const handle = await producer.enqueue(classify(`bad ${status}`));
      const error = await handle.result({ timeoutMs: 30_000 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(JobFailedError);
      const reason = (error as JobFailedError).reason;
      expect(reason).toContain(`answered ${status}`);
      expect(reason).toContain(`upstream says no (${status})`);
      expect(reason).toMatch(/request id \S+/);
      const job = await producer.queue('acme').getJob(handle.id);
      expect(job?.attemptsMade).toBe(1);
    },
  );
});
