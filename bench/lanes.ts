/**
 * `pnpm bench:lanes`: every route its own lane (see docs/architecture.md, "Every route its own lane").
 *
 * On a Redis of its own, with the simulator, a producer and one worker in this process:
 *
 * 1. **Behind a backlog.** One account, the router limited to `RATE` requests/s, an Inference
 *    Endpoint (concurrency `C`, `LATENCY_MS` per request). `BACKLOG` chat jobs (1,000× the router's
 *    per-second rate) go to the router lane; then `EMBEDDINGS` embedding jobs to the endpoint lane.
 *    Per lane: time from enqueue to start (BullMQ's `processedOn − timestamp`), p50 and p99,
 *    against the ideal (the endpoint: job i starts at ⌊i / C⌋ × latency; the router: job i of
 *    the backlog at i / rate). Then, for `WINDOW_MS` with the backlog still there: Redis commands
 *    per job started in the router lane, and per second (`INFO stats`): waiting must cost nothing
 *    per waiting job.
 * 2. **Idle accounts.** One worker serving 100 (and 10) accounts with nothing to do: Redis
 *    connections it holds (`connected_clients` difference) and commands per second while idle.
 *
 * `--quick` runs a smaller backlog and shorter windows.
 */
import { parseArgs } from 'node:util';
import { createProducer } from '@hfq/producer';
import type { AccountConfigInput } from '@hfq/shared';
import { startSim } from '@hfq/sim';
import { createWorker } from '@hfq/worker';
import { Job, type Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { startLocalRedis } from '../packages/cli/src/local-redis.js';
import { fixed, integer, markdownTable } from './support/format.js';
import { readRedis } from './support/readings.js';

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } });
const QUICK = values.quick ?? false;
const RATE = 10;
const BACKLOG = QUICK ? 2_000 : RATE * 1_000;
const C = 4;
const LATENCY_MS = 75;
const EMBEDDINGS = 200;
const WINDOW_MS = QUICK ? 5_000 : 20_000;
const IDLE_MS = QUICK ? 5_000 : 10_000;
const MODEL = 'BAAI/bge-small-en-v1.5';
const CHAT = 'meta-llama/Llama-3.1-8B-Instruct';

function log(line: string): void {
  process.stdout.write(`${line}\n`);
}

function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

/** Enqueue → start of every job of `ids` in `queue`, in enqueue order (ms). */
async function startDelays(queue: Queue, ids: readonly string[]): Promise<number[]> {
  const delays: number[] = [];
  for (const id of ids) {
    const job = await Job.fromId(queue, id);
    if (job?.processedOn !== undefined) delays.push(job.processedOn - job.timestamp);
  }
  return delays;
}

const silent = { level: 'silent' } as const;
async function quietLogger() {
  const { createLogger } = await import('@hfq/shared');
  return createLogger(silent);
}

interface LaneRow {
  lane: string;
  jobs: number;
  p50: number;
  p99: number;
  idealP50: number;
  idealP99: number;
}

async function behindBacklog(
  redisUrl: string,
): Promise<{ rows: LaneRow[]; commandsPerJob: number; commandsPerSecond: number; started: number }> {
  const sim = await startSim({
    endpoints: { emb: { model: MODEL, slotsPerReplica: 2 * C, latency: { baseMs: LATENCY_MS } } },
  });
  const prefix = 'lanes-bench';
  const hfToken = 'hf_lanesbench';
  const accounts: AccountConfigInput[] = [
    {
      id: 'acme',
      tier: 'pro',
      hfToken,
      limit: { max: RATE, durationMs: 1000 },
      endpoints: [{ name: 'emb', url: sim.endpointUrl('emb'), models: [MODEL], concurrency: C }],
    },
  ];
  const upstream = { routerUrl: sim.routerUrl, hubUrl: sim.hubUrl };
  const worker = await createWorker({
    connection: redisUrl,
    prefix,
    accounts,
    upstream,
    concurrency: 16,
    logger: await quietLogger(),
  });
  const producer = createProducer({ connection: redisUrl, prefix });
  const admin = new Redis(redisUrl);
  try {
    // The endpoint lane started and warm (its first job also waits for the lane to be found).
    const warm = await producer.enqueueMany(
      Array.from({ length: C }, (_, i) => ({
        account: 'acme',
        task: 'feature-extraction' as const,
        model: MODEL,
        inputs: `warm ${i}`,
      })),
    );
    const coldStart = performance.now();
    await Promise.all(warm.map((h) => h.result({ timeoutMs: 60_000 })));
    log(
      `  a new lane's first jobs: done ${integer(performance.now() - coldStart)} ms after enqueue (the producer announces the lane; the worker starts it)`,
    );

    const chunk = 1_000;
    const chatIds: string[] = [];
    for (let at = 0; at < BACKLOG; at += chunk) {
      const handles = await producer.enqueueMany(
        Array.from({ length: Math.min(chunk, BACKLOG - at) }, (_, i) => ({
          account: 'acme',
          task: 'chat-completion' as const,
          model: CHAT,
          messages: [{ role: 'user' as const, content: `question ${at + i}` }],
        })),
      );
      chatIds.push(...handles.map((h) => h.id));
    }
    log(`  ${integer(BACKLOG)} chat jobs queued on the router lane at ${RATE}/s`);
    const embeddings = await producer.enqueueMany(
      Array.from({ length: EMBEDDINGS }, (_, i) => ({
        account: 'acme',
        task: 'feature-extraction' as const,
        model: MODEL,
        inputs: `text ${i}`,
      })),
    );
    await Promise.all(embeddings.map((h) => h.result({ timeoutMs: 120_000 })));
    const endpointQueue = producer.queue('acme', 'endpoint.emb');
    const endpointDelays = await startDelays(
      endpointQueue,
      embeddings.map((h) => h.id),
    );
    const endpointIdeal = embeddings.map((_, i) => Math.floor(i / C) * LATENCY_MS);

    // Commands per job of the slow lane while its backlog dwarfs its rate.
    const routerQueue = producer.queue('acme');
    const countStarted = async () => routerQueue.getJobCountByTypes('completed', 'failed', 'active');
    const before = await readRedis(admin);
    const startedBefore = await countStarted();
    const windowStart = performance.now();
    await new Promise((resolve) => setTimeout(resolve, WINDOW_MS));
    const after = await readRedis(admin);
    const startedAfter = await countStarted();
    const windowMs = performance.now() - windowStart;
    const started = startedAfter - startedBefore;
    const commands = after.totalCommands - before.totalCommands;
    const startedChat = chatIds.slice(0, Math.min(chatIds.length, startedAfter));
    const routerDelays = await startDelays(routerQueue, startedChat);
    const routerIdeal = startedChat.map((_, i) => (i / RATE) * 1000);
    const rows: LaneRow[] = [
      {
        lane: 'endpoint.emb',
        jobs: endpointDelays.length,
        p50: quantile(endpointDelays, 0.5),
        p99: quantile(endpointDelays, 0.99),
        idealP50: quantile(endpointIdeal, 0.5),
        idealP99: quantile(endpointIdeal, 0.99),
      },
      {
        lane: 'router',
        jobs: routerDelays.length,
        p50: quantile(routerDelays, 0.5),
        p99: quantile(routerDelays, 0.99),
        idealP50: quantile(routerIdeal, 0.5),
        idealP99: quantile(routerIdeal, 0.99),
      },
    ];
    return {
      rows,
      commandsPerJob: started > 0 ? commands / started : Number.NaN,
      commandsPerSecond: commands / (windowMs / 1000),
      started,
    };
  } finally {
    await worker.close();
    await producer.close();
    await admin.quit();
    await sim.close();
  }
}

async function idleAccounts(
  redisUrl: string,
  count: number,
): Promise<{ connections: number; commandsPerSecond: number }> {
  const admin = new Redis(redisUrl);
  const clients = async () => Number(/^connected_clients:(\d+)/m.exec(await admin.info('clients'))?.[1] ?? 0);
  const accounts: AccountConfigInput[] = Array.from({ length: count }, (_, i) => ({
    id: `idle-${i}`,
    tier: 'pro',
    hfToken: `hf_idle${i}`,
  }));
  const before = await clients();
  const worker = await createWorker({
    connection: redisUrl,
    prefix: `lanes-idle-${count}`,
    accounts,
    upstream: { routerUrl: 'http://127.0.0.1:9', hubUrl: 'http://127.0.0.1:9' },
    logger: await quietLogger(),
  });
  try {
    // Let start-up settle (first supervisor rounds, heartbeats), then measure.
    await new Promise((resolve) => setTimeout(resolve, 6_000));
    const connections = (await clients()) - before;
    const start = await readRedis(admin);
    const t0 = performance.now();
    await new Promise((resolve) => setTimeout(resolve, IDLE_MS));
    const end = await readRedis(admin);
    // Less the INFO calls of the two readings.
    const commands = end.totalCommands - start.totalCommands - 1;
    return { connections, commandsPerSecond: commands / ((performance.now() - t0) / 1000) };
  } finally {
    await worker.close();
    await admin.quit();
  }
}

async function main(): Promise<void> {
  const redis = await startLocalRedis({ own: true });
  try {
    log(`bench:lanes ${QUICK ? '(quick) ' : ''}— redis ${redis.source}`);
    log(
      `1. behind a backlog: ${integer(BACKLOG)} chat jobs on the router at ${RATE}/s, then ${EMBEDDINGS} endpoint jobs (C = ${C}, ${LATENCY_MS} ms)`,
    );
    const backlog = await behindBacklog(redis.url);
    log('');
    log(
      markdownTable(
        ['lane', 'jobs', 'enqueue → start p50', 'p99', 'ideal p50', 'ideal p99'],
        backlog.rows.map((r) => [
          r.lane,
          integer(r.jobs),
          `${integer(r.p50)} ms`,
          `${integer(r.p99)} ms`,
          `${integer(r.idealP50)} ms`,
          `${integer(r.idealP99)} ms`,
        ]),
        ['l', 'r', 'r', 'r', 'r', 'r'],
      ),
    );
    log('');
    log(
      `router lane with a backlog ${integer(BACKLOG / RATE)}× its per-second rate: ${fixed(backlog.commandsPerJob, 1)} Redis commands per job started ` +
        `(${integer(backlog.started)} started in ${WINDOW_MS / 1000} s; ${fixed(backlog.commandsPerSecond, 0)} commands/s in all)`,
    );
    log('');
    log('2. idle accounts: one worker process, nothing to do');
    const rows: string[][] = [];
    for (const count of [10, 100]) {
      const idle = await idleAccounts(redis.url, count);
      rows.push([String(count), integer(idle.connections), fixed(idle.commandsPerSecond, 0)]);
    }
    log(markdownTable(['accounts', 'Redis connections', 'idle commands/s'], rows, ['r', 'r', 'r']));
    log(
      '(before lanes, on this machine: 10 accounts 42 connections and 55 commands/s; 100 accounts 402 and 541/s)',
    );
  } finally {
    await redis.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench:lanes failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
