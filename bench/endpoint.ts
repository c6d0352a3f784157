/**
 * pnpm bench:endpoint — an account with an Inference Endpoint of capacity C (requests in
 * flight) and a router limit L, under each routing policy: 2,000 jobs each; throughput against
 * the ideal (C ÷ mean endpoint latency, plus L when the router is used), the endpoint's most
 * requests in flight (never more than C), jobs failed (0). Baseline in the same run: the router
 * alone. Then a cold start: the endpoint at zero when the run starts (time to first result,
 * jobs failed, waking requests in flight at once). Target: ≥ 0.9 of the ideal.
 *
 * The simulator runs in a process of its own (see support/sim-process.ts); the worker runs here.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { createProducer, type InferenceResult } from '@hfq/producer';
import { type AccountConfigInput, createLogger, type Job, type RoutingPolicy } from '@hfq/shared';
import { createWorker } from '@hfq/worker';
import { startLocalRedis } from '../packages/cli/src/local-redis.js';
import { fixed, integer, markdownTable, percent, seconds } from './support/format.js';
import { deletePrefix } from './support/redis-prefix.js';
import { startSimProcess } from './support/sim-process.js';

const QUICK = process.argv.includes('--quick');
const JOBS = QUICK ? 500 : 2_000;
const BASELINE_JOBS = QUICK ? 200 : 400;
const COLD_JOBS = QUICK ? 200 : 500;
/** Endpoint capacity (hfq's concurrency limit, and the simulated container's slots). */
const C = 8;
/** Router limit, requests per second. */
const L = 20;
const ENDPOINT_LATENCY_MS = 100;
const COLD_START_MS = 5_000;
const HF = 'hf_bench_endpoint_0123456789';
const MODEL = 'BAAI/bge-small-en-v1.5';

interface Row {
  policy: string;
  jobs: number;
  wallMs: number;
  throughput: number;
  viaEndpoint: number;
  viaRouter: number;
  meanEndpointLatencyMs: number;
  ideal: number;
  maxInFlight: number;
  endpoint429s: number;
  failed: number;
  firstResultMs?: number;
  maxWakingInFlight?: number;
}

const redis = await startLocalRedis();
const sim = await startSimProcess({
  latency: { baseMs: 0, jitterMs: 0, minMs: 20, maxMs: 60, perItemMs: 0 },
});

async function setEndpoint(config: Record<string, unknown>): Promise<void> {
  const response = await fetch(`${sim.url}/_sim/endpoints`, {
    method: 'POST',
    body: JSON.stringify({ name: 'emb', config }),
  });
  if (!response.ok) throw new Error(`simulator endpoint: ${response.status} ${await response.text()}`);
}

interface EndpointFigures {
  maxInFlight: number;
  byStatus: Record<string, number>;
  maxWakingInFlight: number;
}

async function endpointStats(): Promise<EndpointFigures> {
  const all = (await (await fetch(`${sim.url}/_sim/endpoints`)).json()) as Record<string, EndpointFigures>;
  const emb = all.emb;
  if (!emb) throw new Error('the simulator has no endpoint "emb"');
  return emb;
}

async function run(
  label: string,
  policy: RoutingPolicy | 'router-only',
  jobs: number,
  cold = false,
): Promise<Row> {
  await setEndpoint({
    model: MODEL,
    slotsPerReplica: C,
    latency: { baseMs: ENDPOINT_LATENCY_MS, jitterMs: 20 },
    coldStartMs: COLD_START_MS,
    initialState: cold ? 'scaledToZero' : 'running',
  });
  const prefix = `benchep${Date.now().toString(36)}`;
  const account: AccountConfigInput = {
    id: 'acme',
    tier: 'pro',
    hfToken: HF,
    limit: { max: L, durationMs: 1000 },
    ...(policy === 'router-only'
      ? {}
      : {
          routing: policy,
          endpoints: [{ name: 'emb', url: `${sim.url}/endpoints/emb`, models: [MODEL], concurrency: C }],
        }),
  };
  const worker = await createWorker({
    connection: redis.url,
    prefix,
    accounts: [account],
    upstream: { routerUrl: sim.routerUrl, hubUrl: sim.hubUrl, providerUrls: { ...sim.providerUrls } },
    concurrency: 64,
    logger: createLogger({ level: 'silent' }),
  });
  const producer = createProducer({ connection: redis.url, prefix });
  try {
    const batch: Job[] = Array.from({ length: jobs }, (_, i) => ({
      account: 'acme',
      task: 'feature-extraction',
      model: MODEL,
      inputs: `${label} ${i}`,
    }));
    const started = performance.now();
    let firstResultMs: number | undefined;
    const handles = await producer.enqueueMany(batch);
    const settled = await Promise.allSettled(
      handles.map((h) =>
        h.result({ timeoutMs: 600_000 }).then((r) => {
          firstResultMs ??= performance.now() - started;
          return r;
        }),
      ),
    );
    const wallMs = performance.now() - started;
    const ok = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value as InferenceResult] : []));
    const viaEndpoint = ok.filter((r) => r.route === 'endpoint');
    const meanEndpointLatencyMs =
      viaEndpoint.reduce((sum, r) => sum + r.latencyMs, 0) / Math.max(1, viaEndpoint.length);
    const endpointRate = policy === 'router-only' ? 0 : (C * 1000) / meanEndpointLatencyMs;
    const routerRate = policy === 'endpoint-only' ? 0 : L;
    const stats = await endpointStats();
    return {
      policy: label,
      jobs,
      wallMs,
      throughput: (ok.length * 1000) / wallMs,
      viaEndpoint: viaEndpoint.length,
      viaRouter: ok.filter((r) => r.route === 'hf-router').length,
      meanEndpointLatencyMs,
      ideal: endpointRate + routerRate,
      maxInFlight: stats.maxInFlight,
      endpoint429s: stats.byStatus['429'] ?? 0,
      failed: jobs - ok.length,
      ...(cold ? { firstResultMs, maxWakingInFlight: stats.maxWakingInFlight } : {}),
    };
  } finally {
    await producer.close();
    await worker.close();
    await deletePrefix(redis.url, prefix);
  }
}

try {
  const rows: Row[] = [];
  rows.push(await run('router only (baseline)', 'router-only', BASELINE_JOBS));
  for (const policy of ['endpoint-first', 'router-first', 'endpoint-only'] as const) {
    rows.push(await run(policy, policy, JOBS));
  }
  const cold = await run('endpoint-only, cold start', 'endpoint-only', COLD_JOBS, true);
  mkdirSync('.bench-out', { recursive: true });
  writeFileSync('.bench-out/endpoint.json', `${JSON.stringify({ C, L, rows, cold }, null, 2)}\n`);

  console.log(
    `Endpoint capacity C = ${C} in flight (latency ~${ENDPOINT_LATENCY_MS}–${ENDPOINT_LATENCY_MS + 20} ms), router limit L = ${L}/s\n`,
  );
  console.log(
    markdownTable(
      [
        'policy',
        'jobs',
        'wall',
        'jobs/s',
        'ideal jobs/s',
        'of ideal',
        'endpoint / router',
        'endpoint max in flight',
        'endpoint 429s',
        'failed',
      ],
      rows.map((r) => [
        r.policy,
        integer(r.jobs),
        seconds(r.wallMs),
        fixed(r.throughput),
        fixed(r.ideal),
        percent(r.throughput / r.ideal),
        `${integer(r.viaEndpoint)} / ${integer(r.viaRouter)}`,
        r.policy.startsWith('router only') ? '—' : `${r.maxInFlight} (C = ${C})`,
        integer(r.endpoint429s),
        integer(r.failed),
      ]),
      ['l'],
    ),
  );
  console.log('');
  console.log(
    markdownTable(
      [
        'cold start',
        'jobs',
        'cold start of the endpoint',
        'time to first result',
        'wall',
        'waking requests in flight at once',
        'max in flight',
        'failed',
      ],
      [
        [
          'endpoint-only, at zero',
          integer(cold.jobs),
          seconds(COLD_START_MS),
          seconds(cold.firstResultMs),
          seconds(cold.wallMs),
          String(cold.maxWakingInFlight),
          `${cold.maxInFlight} (C = ${C})`,
          integer(cold.failed),
        ],
      ],
      ['l'],
    ),
  );
  const bad = [...rows, cold].some((r) => r.failed > 0 || r.maxInFlight > C);
  if (bad) process.exitCode = 1;
} finally {
  await sim.close();
  await redis.stop();
}
