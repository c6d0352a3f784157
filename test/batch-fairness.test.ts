import { createLogger } from '@hfq/shared';
import { expectedEmbedding } from '@hfq/sim';
import { describe, expect, it } from 'vitest';
import { startStack } from './support/stack.js';
import { waitFor } from './support/wait.js';

/**
 * Fairness (see docs/architecture.md, "Batches are flows"): batch children run at a lower BullMQ priority than single jobs,
 * and BullMQ takes jobs without a priority (its `wait` list) before prioritized ones, so a single
 * job enqueued behind a 5,000-item batch is served within a few permits, not after the batch.
 */

const TOKEN = 'hf_test_fair_0123456789abcdef';
const CONCURRENCY = 4;

describe('batch fairness', () => {
  it('serves a single job behind a 5,000-item batch within a few permits', async () => {
    const stack = await startStack({
      label: 'fair',
      sim: { latency: { baseMs: 10, perItemMs: 0 } },
      tokens: {
        [TOKEN]: { label: 'fair', limits: [{ algorithm: 'sliding-window', limit: 50, windowMs: 1000 }] },
      },
      accounts: [{ id: 'acme', tier: 'pro', hfToken: TOKEN, limit: { max: 50, durationMs: 1000 } }],
    });
    const { sim } = stack;
    const producer = stack.producer;
    await stack.startWorker({
      concurrency: CONCURRENCY,
      logger: createLogger({ name: 'fairness-test', level: 'silent' }),
    });
    const items = Array.from({ length: 5_000 }, (_, i) => `batch item ${i}`);
    const batch = await producer.enqueueBatch({
      account: 'acme',
      task: 'feature-extraction',
      model: 'sentence-transformers/all-MiniLM-L6-v2',
      items,
    });
    await batch.enqueued();
    // The batch is under way: its children hold the permits.
    await waitFor(async () => (await batch.progress()).ok >= 25, '25 batch items done', 15_000, 20);

    const before = Math.max(...sim.requests({ route: 'router' }).map((r) => r.seq));
    const single = await producer.enqueue({
      account: 'acme',
      task: 'feature-extraction',
      model: 'BAAI/bge-small-en-v1.5',
      inputs: 'an interactive question',
    });
    const result = await single.result({ timeoutMs: 10_000 });
    expect(result.output).toEqual(expectedEmbedding('an interactive question'));

    const served = sim.requests({ route: 'router', model: 'BAAI/bge-small-en-v1.5' });
    expect(served).toHaveLength(1);
    const batchRequestsBetween = sim
      .requests({ route: 'router', model: 'sentence-transformers/all-MiniLM-L6-v2' })
      .filter((r) => r.seq > before && r.seq < (served[0]?.seq ?? 0)).length;
    // At most the children already running (each holding or awaiting a permit), plus a little slack.
    expect(batchRequestsBetween).toBeLessThanOrEqual(CONCURRENCY + 2);
    const progress = await batch.progress();
    expect(progress.done).toBeLessThan(1_000);
    expect(sim.requests({ route: 'router', status: 429 })).toHaveLength(0);
    await batch.cancel();
  });
});
