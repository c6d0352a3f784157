/**
 * Inference Endpoints as a route (see docs/architecture.md, "Dedicated capacity"): cold starts,
 * paused endpoints under each policy, an endpoint refusing the account, the lifecycle driven by
 * the backlog, and 429s learned once per episode. Real Redis, real BullMQ, the official client,
 * the simulator over HTTP.
 */
import type { InferenceResult, Producer } from '@hfq/producer';
import type { AccountConfigInput, EndpointConfig } from '@hfq/shared';
import { expectedEmbedding } from '@hfq/sim';
import { beforeEach, describe, expect, it } from 'vitest';
import { type Stack, startStack, upstreamOf } from './support/stack.js';
import { waitFor } from './support/wait.js';

const HF = 'hf_endpointsowner';
const MODEL = 'BAAI/bge-small-en-v1.5';
const OTHER_MODEL = 'sentence-transformers/all-MiniLM-L6-v2';

let stack: Stack;

beforeEach(async () => {
  stack = await startStack({
    label: 'ep',
    sim: { latency: { baseMs: 0, jitterMs: 0, minMs: 5, maxMs: 15, perItemMs: 0 } },
  });
});

function producer(): Producer {
  return stack.newProducer();
}

function account(
  endpoint: Partial<EndpointConfig>,
  routing: AccountConfigInput['routing'],
): AccountConfigInput {
  return {
    id: 'acme',
    tier: 'pro',
    hfToken: HF,
    limit: { max: 50, durationMs: 1000 },
    routing,
    endpoints: [
      { name: 'emb', url: stack.sim.endpointUrl('emb'), models: [MODEL], concurrency: 4, ...endpoint },
    ],
  };
}

function worker(accounts: AccountConfigInput[], endpoints: { checkMs?: number; leaseMs?: number } = {}) {
  return stack.startWorker({
    accounts,
    upstream: { ...upstreamOf(stack.sim), endpointsApiUrl: stack.sim.endpointsApiUrl },
    concurrency: 16,
    endpoints: {
      checkMs: endpoints.checkMs ?? 100,
      ...(endpoints.leaseMs ? { leaseMs: endpoints.leaseMs } : {}),
    },
  });
}

function admin(accounts: AccountConfigInput[]) {
  return stack.newAdmin(accounts);
}

async function runJobs(p: Producer, n: number, tag = 'x'): Promise<InferenceResult[]> {
  const handles = await Promise.all(
    Array.from({ length: n }, (_, i) =>
      p.enqueue({ account: 'acme', task: 'feature-extraction', model: MODEL, inputs: `${tag}${i}` }),
    ),
  );
  return Promise.all(handles.map((h) => h.result({ timeoutMs: 60_000 })));
}

describe('cold start', () => {
  it.each([
    ['held by X-Scale-Up-Timeout', undefined],
    ['woken by plain requests, one at a time', 0],
  ])('completes every job with no attempt used and one waking request at a time (%s)', async (_, holdS) => {
    stack.sim.setEndpoint('emb', {
      model: MODEL,
      initialState: 'scaledToZero',
      coldStartMs: 1_500,
      slotsPerReplica: 8,
    });
    const accounts = [
      account({ ...(holdS === undefined ? {} : { scaleUpTimeoutS: holdS }) }, 'endpoint-only'),
    ];
    await worker(accounts);
    const results = await runJobs(producer(), 30);
    expect(results.every((r) => r.route === 'endpoint' && r.attempts === 1)).toBe(true);
    expect(results.map((r) => r.output)).toEqual(results.map((_, i) => expectedEmbedding(`x${i}`, 8)));
    const stats = stack.sim.endpointStats('emb');
    expect(stats.maxWakingInFlight).toBe(1);
    expect(stats.maxInFlight).toBeLessThanOrEqual(4);
    if (holdS === 0) expect(stats.byStatus['503'] ?? 0).toBeGreaterThan(0);
    else expect(stats.byStatus['503'] ?? 0).toBe(0);
  });
});

describe('paused endpoint', () => {
  it('routes to the router under endpoint-first, with the reason on status', async () => {
    stack.sim.setEndpoint('emb', { model: MODEL, initialState: 'paused' });
    const accounts = [account({}, 'endpoint-first')];
    await worker(accounts);
    const results = await runJobs(producer(), 20);
    expect(results.every((r) => r.attempts === 1)).toBe(true);
    expect(results.filter((r) => r.route === 'hf-router').length).toBeGreaterThanOrEqual(19);
    const [status] = await admin(accounts).status();
    expect(status?.endpoints[0]).toMatchObject({ availability: 'paused' });
    expect(status?.endpoints[0]?.reason).toMatch(/Invalid state/);
  });

  it('holds its jobs under endpoint-only (none failed) until it is resumed', async () => {
    stack.sim.setEndpoint('emb', { model: MODEL, initialState: 'paused', coldStartMs: 200 });
    // Management access (no autoResume): hfq learns from the API when the operator resumes it.
    const accounts = [account({ management: { namespace: 'sim', name: 'emb' } }, 'endpoint-only')];
    await worker(accounts);
    const p = producer();
    const pending = runJobs(p, 10);
    const a = admin(accounts);
    await waitFor(
      async () => (await a.status())[0]?.endpoints[0]?.availability === 'paused',
      'paused on status',
    );
    const [status] = await a.status();
    expect(status?.endpoints[0]?.reason).toMatch(/paused/);
    expect(status?.counts.failed ?? 0).toBe(0);
    expect(status?.counts.completed ?? 0).toBe(0);
    expect(stack.sim.received({ route: 'router' })).toBe(0);
    await fetch(`${stack.sim.endpointsApiUrl}/v2/endpoint/sim/emb/resume`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${HF}` },
    });
    const results = await pending;
    expect(results.every((r) => r.route === 'endpoint')).toBe(true);
    expect((await a.status())[0]?.counts.failed ?? 0).toBe(0);
  });
});

describe('endpoint refusing the account', () => {
  it("routes around it under endpoint-first, and leaves the account's router gate open", async () => {
    // The endpoint takes another account's token only: it answers hfq's 401.
    stack.sim.setEndpoint('emb', { model: MODEL, token: 'hf_someoneelse' });
    const accounts = [account({}, 'endpoint-first')];
    await worker(accounts);
    const results = await runJobs(producer(), 10);
    expect(results.every((r) => r.route === 'hf-router' && r.attempts === 1)).toBe(true);
    expect(stack.sim.endpointStats('emb').byStatus['401'] ?? 0).toBeGreaterThan(0);
    const [status] = await admin(accounts).status();
    expect(status?.endpoints[0]).toMatchObject({ availability: 'failed' });
    expect(status?.endpoints[0]?.reason).toMatch(/^refused \(401\)/);
    expect(status?.credits).toEqual({ state: 'ok' });
  });
});

describe('lifecycle by backlog', () => {
  it('scales the endpoint to zero once the backlog has been empty for the idle time, and new work resumes it', async () => {
    stack.sim.setEndpoint('emb', { model: MODEL, coldStartMs: 300, token: HF });
    const management = { namespace: 'sim', name: 'emb' };
    const accounts = [
      account({ management, idleScaleToZeroMs: 400, autoResume: true, hourlyUsd: 3.6 }, 'endpoint-only'),
    ];
    await worker(accounts);
    const p = producer();
    expect((await runJobs(p, 10)).every((r) => r.route === 'endpoint')).toBe(true);
    await waitFor(
      () => stack.sim.endpointStats('emb').state === 'scaledToZero',
      'scale to zero after idle',
      20_000,
    );
    expect(stack.sim.endpointStats('emb').stateChanges.at(-1)?.by).toBe('management');

    const again = await runJobs(p, 10, 'again');
    expect(again.every((r) => r.route === 'endpoint' && r.attempts === 1)).toBe(true);
    const stats = stack.sim.endpointStats('emb');
    expect(stats.state).toBe('running');
    expect(stats.maxWakingInFlight).toBe(1);
    const [status] = await admin(accounts).status();
    expect(status?.endpoints[0]?.costUsd).toBeGreaterThan(0);
    expect(status?.endpoints[0]?.lastAction).toMatch(/scale-to-zero|resume/);
  });

  it("counts only the jobs the endpoint serves: other models' backlog lets it scale to zero, its own jobs resume it", async () => {
    stack.sim.setEndpoint('emb', { model: MODEL, coldStartMs: 300, token: HF });
    const management = { namespace: 'sim', name: 'emb' };
    // The router at 4 requests/s: the other model's jobs stay queued for several seconds.
    const accounts: AccountConfigInput[] = [
      {
        ...account({ management, idleScaleToZeroMs: 400, autoResume: true }, 'endpoint-first'),
        limit: { max: 4, durationMs: 1000 },
      },
    ];
    await worker(accounts);
    const p = producer();
    const other = await p.enqueueMany(
      Array.from({ length: 40 }, (_, i) => ({
        account: 'acme',
        task: 'feature-extraction' as const,
        model: OTHER_MODEL,
        inputs: `other ${i}`,
      })),
    );
    const a = admin(accounts);
    const waitingJobs = async () => {
      const counts = (await a.status())[0]?.counts ?? {};
      return (counts.waiting ?? 0) + (counts.prioritized ?? 0) + (counts.delayed ?? 0);
    };
    await waitFor(
      () => stack.sim.endpointStats('emb').state === 'scaledToZero',
      'scale to zero while the other model has a backlog',
      20_000,
    );
    expect(stack.sim.endpointStats('emb').stateChanges.at(-1)?.by).toBe('management');
    expect(await waitingJobs()).toBeGreaterThan(0);
    expect((await a.status())[0]?.endpoints[0]).toMatchObject({ backlog: 0 });

    // Jobs for the endpoint arrive behind that backlog: in their own lane they reach it at once
    // (see docs/architecture.md, "Every route its own lane"), and the endpoint wakes for them,
    // by the lifecycle (autoResume) or by their own waking request.
    const mine = await p.enqueueMany(
      Array.from({ length: 3 }, (_, i) => ({
        account: 'acme',
        task: 'feature-extraction' as const,
        model: MODEL,
        inputs: `mine ${i}`,
      })),
    );
    const results = await Promise.all(mine.map((h) => h.result({ timeoutMs: 60_000 })));
    expect(results.every((r) => r.route === 'endpoint' && r.attempts === 1)).toBe(true);
    const woken = stack.sim.endpointStats('emb').stateChanges.at(-1);
    expect(woken?.state).not.toBe('scaledToZero');
    expect(['management', 'request', 'ready']).toContain(woken?.by);
    const rest = await Promise.all(other.map((h) => h.result({ timeoutMs: 60_000 })));
    expect(rest.every((r) => r.route === 'hf-router')).toBe(true);
  });

  it('counts a batch for its model as backlog until the batch is done', async () => {
    stack.sim.setEndpoint('emb', { model: MODEL, initialState: 'paused', coldStartMs: 100, token: HF });
    const accounts = [account({ management: { namespace: 'sim', name: 'emb' } }, 'endpoint-only')];
    await worker(accounts);
    const batch = await producer().enqueueBatch({
      account: 'acme',
      task: 'feature-extraction',
      model: MODEL,
      items: Array.from({ length: 12 }, (_, i) => `item ${i}`),
      coalesce: 4,
    });
    const a = admin(accounts);
    const endpointOnStatus = async () => (await a.status())[0]?.endpoints[0];
    // One entry stands for the whole batch (its parent), however many children it has.
    await waitFor(async () => (await endpointOnStatus())?.backlog === 1, 'the batch as the backlog');
    await fetch(`${stack.sim.endpointsApiUrl}/v2/endpoint/sim/emb/resume`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${HF}` },
    });
    const results = await batch.results({ timeoutMs: 60_000 });
    expect(results).toHaveLength(12);
    await waitFor(async () => (await endpointOnStatus())?.backlog === 0, 'no backlog once the batch is done');
  });

  it('resumes a paused endpoint for jobs enqueued before any worker said which jobs it serves', async () => {
    stack.sim.setEndpoint('emb', { model: MODEL, initialState: 'paused', coldStartMs: 200, token: HF });
    // No worker yet: the producer cannot know these jobs are the endpoint's (none is indexed).
    const handles = await producer().enqueueMany(
      Array.from({ length: 5 }, (_, i) => ({
        account: 'acme',
        task: 'feature-extraction' as const,
        model: MODEL,
        inputs: `early ${i}`,
      })),
    );
    const accounts = [
      account({ management: { namespace: 'sim', name: 'emb' }, autoResume: true }, 'endpoint-only'),
    ];
    await worker(accounts);
    const results = await Promise.all(handles.map((h) => h.result({ timeoutMs: 60_000 })));
    expect(results.every((r) => r.route === 'endpoint')).toBe(true);
    expect(stack.sim.endpointStats('emb').management.resume ?? 0).toBeGreaterThanOrEqual(1);
    expect((await admin(accounts).status())[0]?.endpoints[0]?.lastAction).toMatch(
      /resume .*found it unavailable/,
    );
  });
});

describe('429s from the endpoint', () => {
  it('lower the effective concurrency once per episode, and no job fails or uses an attempt', async () => {
    stack.sim.setEndpoint('emb', { model: MODEL, slotsPerReplica: 3, latency: { baseMs: 60 } });
    const accounts = [account({ concurrency: 8 }, 'endpoint-only')];
    await worker(accounts);
    const results = await runJobs(producer(), 60);
    expect(results.every((r) => r.route === 'endpoint' && r.attempts === 1)).toBe(true);
    const [status] = await admin(accounts).status();
    const endpoint = status?.endpoints[0];
    const throttled = stack.sim.endpointStats('emb').byStatus['429'] ?? 0;
    expect(throttled).toBeGreaterThan(0);
    expect(endpoint?.limit).toBeLessThanOrEqual(3);
    // Each cut is one episode; several 429s answered together cost one cut, not one each.
    expect(endpoint?.episodes).toBeGreaterThanOrEqual(1);
    expect(endpoint?.episodes).toBeLessThan(throttled);
    expect(endpoint?.episodes).toBeLessThanOrEqual(8 - 3);
  });
});
