/**
 * The worker's state connection is auto-pipelined (connectionFor), and ioredis copies every
 * command defined on a connection onto each pipeline it builds: one per event-loop turn. So
 * nothing hfq puts on that connection defines one: hfq's scripts run by EVALSHA
 * (redis-script.ts), and BullMQ queues, which define BullMQ's scripts on their client, use the
 * queue client (bench:load: some 90 scripts were copied a turn before).
 */
import { createLogger } from '@hfq/shared';
import {
  CreditState,
  connectionFor,
  creditScope,
  DomainLimiter,
  EndpointSemaphore,
  EndpointStatusStore,
  RedisErrorLog,
  ResultLedger,
} from '@hfq/shared/internal';
import { describe, expect, it } from 'vitest';
import { BatchRuntime } from '../packages/worker/src/batch-runtime.js';
import { redisUrl, testPrefix } from './support/redis.js';

describe("the worker's state connection", () => {
  it('carries no defined command after every store and the batch runtime used it', async () => {
    const prefix = testPrefix('state');
    // As the worker makes them (worker.ts): the state connection auto-pipelined, the queue client not.
    const state = connectionFor(redisUrl(), 'worker', `${prefix}:state`, true);
    const queues = connectionFor(redisUrl(), 'worker', `${prefix}:queues`);
    const logger = createLogger({ level: 'silent' });
    const limiter = new DomainLimiter(state, prefix);
    const credits = new CreditState(state, prefix);
    const semaphore = new EndpointSemaphore(state, prefix);
    const status = new EndpointStatusStore(state, prefix);
    const ledger = new ResultLedger(state, prefix);
    const batches = new BatchRuntime({
      account: 'acme',
      prefix,
      redis: state,
      queueRedis: queues,
      connectionOptions: queues,
      logger,
      redisErrors: new RedisErrorLog(logger),
    });
    try {
      const scope = creditScope({ id: 'acme' });
      const permit = await limiter.acquire({
        domain: { id: 'state-test', windows: [{ max: 100, durationMs: 1_000 }] },
        gateKey: credits.gateKey(scope),
        ledgerKey: credits.ledgerKey(scope, Date.now()),
        appNowMs: Date.now(),
      });
      expect(permit.kind).toBe('admitted');
      await credits.addSpend(scope, Date.now(), { hfRouterUsd: 0.01 });
      const endpoint = { accountId: 'acme', name: 'ep', concurrency: 2 };
      const slot = await semaphore.tryAcquire(endpoint);
      if (slot.kind === 'admitted') await semaphore.release(endpoint, slot.lease);
      await status.markUnavailable('acme', 'ep', 'paused', 'test', 1_000);
      const settings = { ttlMs: 60_000, maxBytes: 10_000 };
      await ledger.store(
        'acme',
        'c1',
        { output: 1, provider: 'p', route: 'hf-router', costUsd: 0 },
        settings,
      );
      expect((await ledger.read('acme', 'c1', settings))?.output).toBe(1);
      await batches.queue.getJobCounts();

      expect(Object.keys(state.scriptsSet)).toEqual([]);
      // The check sees definitions where there are some: BullMQ's, on the queue client.
      expect(Object.keys(queues.scriptsSet).length).toBeGreaterThan(10);
    } finally {
      await batches.close();
      await Promise.all([state.quit(), queues.quit()]);
    }
  });
});
