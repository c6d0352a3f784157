/**
 * `pnpm bench:deadline`: the batch route against the simulator (see README, "Deadlines and the
 * batch route"). 20,000 chat jobs, real-time capacity about 20 requests/s (about 17 minutes all
 * real time), a provider batch API whose turnaround is 3 to 8 minutes at half the price.
 *
 * Time-scaled: every duration is divided by `--scale` (default 5) and every rate multiplied by
 * it, so the run keeps the problem's proportions and takes minutes: real time 20 × scale/s, the
 * simulator's batch clock `timeScale: scale`, the deadline and the planner's figures (turnaround
 * estimate 8 minutes, margin 2 minutes) divided by scale. The parking window (at most 30 s) is
 * not scaled: it only delays the first planner round.
 *
 * Scenarios (one at a time, each on a fresh prefix, one in-process worker):
 *  - `cost`: deadline 40 minutes, preference cost (target: met, cost ≤ 0.6 × all real time);
 *  - `stuck`: the same, the batch never finishes (target: met through hedging, nothing paid twice);
 *  - `failing`: the same, 5% of batch lines fail (target: every job done, met);
 *  - `impossible`: a deadline of half what real time alone needs (target: runs as fast as it can;
 *    the plan says the deadline cannot be met).
 * Prints one markdown table and writes `.bench-out/deadline.json`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Job } from '@hfq/shared';
import { CreditState } from '@hfq/shared/internal';
import { startSim } from '@hfq/sim';
import { readBatchPlans } from '@hfq/worker/internal';
import { startLocalRedis } from '../packages/cli/src/local-redis.js';
import { fixed, integer, markdownTable, percent } from './support/format.js';
import { startInProcessWorker } from './support/in-process-worker.js';

const { values } = parseArgs({
  options: {
    jobs: { type: 'string', default: '20000' },
    scale: { type: 'string', default: '5' },
    scenarios: { type: 'string', default: 'cost,stuck,failing,impossible' },
    concurrency: { type: 'string', default: '64' },
  },
});
const JOBS = Number(values.jobs);
const SCALE = Number(values.scale);
const CONCURRENCY = Number(values.concurrency);
const MINUTE = 60_000;
/** Real-time requests per second, unscaled. */
const RPS = 20;
const TOKEN = 'hf_bench_deadline_0123456789abcdef';
const KEY = 'tg-bench-deadline-0123456789abcdef';
const MODEL = 'meta-llama/Llama-3.1-8B-Instruct';
const CHUNK = 1_000;

type Scenario = 'cost' | 'stuck' | 'failing' | 'impossible';

interface Outcome {
  scenario: Scenario;
  jobs: number;
  done: number;
  failed: number;
  /** Unscaled: what the run stands for. */
  deadlineMin: number;
  finishMin: number;
  met: boolean;
  costUsd: number;
  allRealtimeUsd: number;
  realtimeRequests: number;
  batches: number;
  batchLines: number;
  batchLinesFailed: number;
  paidTwice: number;
  planReason: string;
}

const job = (i: number, scenario: string): Job => ({
  account: 'bench',
  task: 'chat-completion',
  model: MODEL,
  messages: [{ role: 'user', content: `${scenario} benchmark question ${i}: what is a deadline?` }],
  parameters: { max_tokens: 32 },
});

async function run(redisUrl: string, scenario: Scenario): Promise<Outcome> {
  const sim = await startSim({ latency: { baseMs: 20, jitterMs: 10, perItemMs: 0 } });
  const rate = RPS * SCALE;
  sim.setToken(TOKEN, {
    label: 'hf',
    limits: [{ algorithm: 'sliding-window', limit: rate, windowMs: 1000 }],
  });
  sim.setToken(KEY, { label: 'key' });
  sim.configure({
    batchApi: {
      turnaround:
        scenario === 'stuck' ? { kind: 'stuck' } : { kind: 'range', minMs: 3 * MINUTE, maxMs: 8 * MINUTE },
      failureShare: scenario === 'failing' ? 0.05 : 0,
      priceShare: 0.5,
      timeScale: SCALE,
    },
  });
  const prefix = `bench-deadline-${Date.now().toString(36)}-${scenario}`;
  const account = {
    id: 'bench',
    tier: 'pro' as const,
    hfToken: TOKEN,
    limit: { max: rate, durationMs: 1000 },
    providerKeys: { together: { key: KEY, limits: [{ max: rate, durationMs: 1000 }] } },
    batchRoute: {
      turnaroundMs: Math.round((8 * MINUTE) / SCALE),
      marginMs: Math.round((2 * MINUTE) / SCALE),
    },
  };
  const { worker, producer, redis } = await startInProcessWorker({
    redisUrl,
    prefix,
    account,
    sim,
    concurrency: CONCURRENCY,
    name: 'bench-deadline',
  });
  try {
    const allRealtimeMs = (JOBS / rate) * 1000;
    const deadlineMs = scenario === 'impossible' ? allRealtimeMs / 2 : (40 * MINUTE) / SCALE;
    const started = Date.now();
    const deadline = new Date(started + deadlineMs);
    for (let from = 0; from < JOBS; from += CHUNK) {
      await producer.enqueueMany(
        Array.from({ length: Math.min(CHUNK, JOBS - from) }, (_, k) => ({
          job: job(from + k, scenario),
          options: { deadline },
        })),
      );
    }
    const queue = producer.queue('bench');
    let planReason = '';
    for (;;) {
      const { completed = 0, failed = 0 } = await queue.getJobCounts('completed', 'failed');
      if (!planReason) planReason = (await readBatchPlans(redis, prefix, 'bench'))[0]?.plan.reason ?? '';
      if (completed + failed >= JOBS) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    // The last job's finish, from the jobs themselves.
    let finishedAt = 0;
    for (let start = 0; start < JOBS; start += CHUNK) {
      for (const done of await queue.getCompleted(start, start + CHUNK - 1)) {
        finishedAt = Math.max(finishedAt, done.finishedOn ?? 0);
      }
    }
    const { completed = 0, failed = 0 } = await queue.getJobCounts('completed', 'failed');
    await worker.close(); // flushes the spend recorder
    const spend = await new CreditState(redis, prefix).spend('account:bench', Date.now());
    const batchUsd = spend.providerBatchUsd ?? 0;
    const costUsd = spend.hfRouterUsd + spend.providerKeyUsd + batchUsd;
    const stats = sim.batchStats();
    const realtimeRequests = sim.received((r) => r.status === 200 && r.path.endsWith('/chat/completions'));
    const batchLines = stats.byToken.key?.linesSucceeded ?? 0;
    return {
      scenario,
      jobs: JOBS,
      done: completed,
      failed,
      deadlineMin: (deadlineMs * SCALE) / MINUTE,
      finishMin: ((finishedAt - started) * SCALE) / MINUTE,
      met: finishedAt <= started + deadlineMs,
      costUsd,
      allRealtimeUsd: spend.hfRouterUsd + spend.providerKeyUsd + batchUsd / 0.5,
      realtimeRequests,
      batches: stats.byToken.key?.batches ?? 0,
      batchLines,
      batchLinesFailed: stats.byToken.key?.linesFailed ?? 0,
      paidTwice: realtimeRequests + batchLines - completed,
      planReason,
    };
  } finally {
    await worker.close();
    await producer
      .queue('bench')
      .obliterate({ force: true })
      .catch(() => {});
    await producer.close();
    await redis.quit();
    await sim.close();
  }
}

async function main(): Promise<void> {
  const redis = await startLocalRedis();
  const outcomes: Outcome[] = [];
  try {
    for (const scenario of values.scenarios.split(',') as Scenario[]) {
      const outcome = await run(redis.url, scenario);
      outcomes.push(outcome);
      console.error(`${scenario}: ${JSON.stringify(outcome)}`);
    }
  } finally {
    await redis.stop();
  }
  console.log(
    `\nbench:deadline — ${integer(JOBS)} chat jobs, real time ${RPS}/s, batch turnaround 3–8 min at half price; ` +
      `time-scaled ×${SCALE} (figures below unscaled)\n`,
  );
  console.log(
    markdownTable(
      [
        'scenario',
        'done',
        'deadline (min)',
        'finish (min)',
        'met',
        'cost / all real time',
        'real-time requests',
        'batches',
        'batch lines ok / failed',
        'paid twice',
        'plan',
      ],
      outcomes.map((o) => [
        o.scenario,
        `${integer(o.done)}/${integer(o.jobs)}`,
        fixed(o.deadlineMin),
        fixed(o.finishMin),
        o.met ? 'yes' : 'no',
        percent(o.allRealtimeUsd > 0 ? o.costUsd / o.allRealtimeUsd : 0),
        integer(o.realtimeRequests),
        integer(o.batches),
        `${integer(o.batchLines)} / ${integer(o.batchLinesFailed)}`,
        integer(o.paidTwice),
        o.planReason,
      ]),
      ['l', 'r', 'r', 'r', 'l', 'r', 'r', 'r', 'r', 'r', 'l'],
    ),
  );
  mkdirSync('.bench-out', { recursive: true });
  writeFileSync('.bench-out/deadline.json', JSON.stringify({ scale: SCALE, outcomes }, null, 2));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
