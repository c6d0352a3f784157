import type { InferenceResult } from '@hfq/producer';
import type { AccountConfigInput, Job } from '@hfq/shared';
import type { Sim } from '@hfq/sim';

/**
 * The demo's third account, "dedicated": an Inference Endpoint (4 requests in flight) that is
 * scaled to zero when the demo starts, used first (`endpoint-first`), with the router for what
 * it cannot take. Shows the cold start (one waking request) and the spill to the router.
 */

const TOKEN = 'hf_demo_dedicated_0000000000';
const MODEL = 'BAAI/bge-small-en-v1.5';
const CONCURRENCY = 4;

export function demoEndpointAccount(sim: Sim): AccountConfigInput {
  sim.setToken(TOKEN, {
    label: 'dedicated',
    limits: [{ algorithm: 'sliding-window', limit: 12, windowMs: 1000 }],
  });
  sim.setEndpoint('demo-embedder', {
    model: MODEL,
    token: TOKEN,
    slotsPerReplica: CONCURRENCY,
    latency: { baseMs: 60, perInFlightMs: 10, jitterMs: 20 },
    initialState: 'scaledToZero',
    coldStartMs: 3_000,
    hourlyUsd: 0.5,
  });
  return {
    id: 'dedicated',
    tier: 'pro',
    hfToken: TOKEN,
    limit: { max: 10, durationMs: 1000 },
    routing: 'endpoint-first',
    endpoints: [
      {
        name: 'demo-embedder',
        url: sim.endpointUrl('demo-embedder'),
        models: [MODEL],
        task: 'feature-extraction',
        concurrency: CONCURRENCY,
        management: { namespace: 'sim', name: 'demo-embedder' },
        hourlyUsd: 0.5,
      },
    ],
  };
}

/** One embedding job for "dedicated" per `every` demo jobs. */
export function demoEndpointJobs(count: number, every = 3): Job[] {
  return Array.from({ length: Math.ceil(count / every) }, (_, i) => ({
    account: 'dedicated',
    task: 'feature-extraction' as const,
    model: MODEL,
    inputs: `dedicated doc ${i}`,
  }));
}

/** One line for the summary: how the endpoint was used. */
export function demoEndpointSummary(sim: Sim, jobs: Job[], results: (InferenceResult | Error)[]): string {
  const mine = results.filter((_, i) => jobs[i]?.account === 'dedicated');
  const ok = mine.filter((r): r is InferenceResult => !(r instanceof Error));
  const stats = sim.endpointStats('demo-embedder');
  return (
    `dedicated: ${ok.filter((r) => r.route === 'endpoint').length} via endpoint "demo-embedder", ` +
    `${ok.filter((r) => r.route === 'hf-router').length} via router; endpoint in flight max ${stats.maxInFlight} ` +
    `(limit ${CONCURRENCY}), cold start woken by ${stats.maxWakingInFlight} request at a time, ` +
    `failed ${mine.length - ok.length}`
  );
}
