/**
 * `pnpm bench:limits`: how close each system runs to an upstream's rate limit, and
 * how many 429s it draws getting there. Three systems, against the simulator, on one Redis, in
 * one run, with the same jobs:
 *
 * 1. **hfq**: `hfq worker` processes, the account's limit set to the configured N/W.
 * 2. **plain BullMQ**: worker processes with BullMQ's limiter `{ max: N, duration: W }`; a 429 is
 *    a failed attempt, retried with BullMQ's exponential backoff (20 attempts from 1 s).
 * 3. **retry loop**: worker processes with no limiter; each request retries its own 429s with
 *    exponential backoff and jitter (10 tries from 500 ms), nothing shared between requests.
 *
 * Scenarios: (1a) the configured limit is the upstream's sliding window; (1b) the same as a
 * token bucket; (2) the upstream allows 40% of the configured ceiling and says how long to wait
 * (Retry-After in seconds); (3) as 2 with no Retry-After and no rate headers; (4a–4d) the known
 * sliding window plus 0.1%, 2%, 10% or 50% of requests answered 429 at random by a busy provider
 * (no Retry-After; each such 429 counts against the limit, so the ideal allows 1 ÷ (1 − p)
 * requests per job); (5) the known sliding window over a long run, where arrival jitter draws an
 * occasional real 429; (6) a limit that drops from 50/s to 25/s a third of the way through the
 * ideal run and rises back to 50/s at two thirds (the ideal follows it). Efficiency is the ideal
 * time ÷ the time from the first upstream request to the last.
 *
 * Every system × scenario gets a fresh BullMQ prefix and a fresh simulator token, so nothing
 * learned carries over. Runs are capped at `--cap` × the ideal time (jobs ÷ true rate); a run
 * that hits the cap is reported as "did not finish". Every process and server is stopped at the
 * end, on an error, or on Ctrl-C.
 *
 * Prints a markdown report and writes `.bench-out/limits.json` and `.bench-out/limits.md`.
 * `--quick`: 300 jobs per run (600 for 5, 900 for 6), hfq on every scenario, the baselines on 1a and 4b.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { createProducer, type JobHandle, ResultTimeoutError } from '@hfq/producer';
import type { AccountConfigInput } from '@hfq/shared';
import type { RateLimitConfig, ThrottleStyle } from '@hfq/sim';
import { createAdmin } from '@hfq/worker';
import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { startLocalRedis } from '../packages/cli/src/local-redis.js';
import { type BaselineRun, BULLMQ_JOB_OPTIONS, RETRY_POLICY } from './support/baselines.js';
import { type ChildNode, startChildren, stopChildren } from './support/child.js';
import { Cleanup } from './support/cleanup.js';
import { fixed, integer, markdownTable, percent, seconds } from './support/format.js';
import { clientVersion } from './support/hf-client.js';
import { deletePrefix } from './support/redis-prefix.js';
import { type SimProcess, startSimProcess } from './support/sim-process.js';
import { type UpstreamFigures, upstreamFigures } from './support/upstream-figures.js';

// ─── options ────────────────────────────────────────────────────────────────────────────────

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    jobs: { type: 'string' },
    scenarios: { type: 'string' },
    systems: { type: 'string' },
    cap: { type: 'string' },
    'hfq-cap': { type: 'string', default: '4' },
    processes: { type: 'string', default: '4' },
    concurrency: { type: 'string', default: '16' },
    'min-ms': { type: 'string', default: '20' },
    'max-ms': { type: 'string', default: '200' },
    trace: { type: 'boolean', default: false },
  },
});
/** `--trace`: hfq's domain state (rate and detector fields), every 250 ms, to `.bench-out/trace-<scenario>.jsonl`. */
const TRACE = values.trace === true;
const QUICK = values.quick === true;
const JOBS = Number(values.jobs ?? (QUICK ? 300 : 1_500));
const PROCESSES = Number(values.processes);
const CONCURRENCY = Number(values.concurrency);
const LATENCY = { minMs: Number(values['min-ms']), maxMs: Number(values['max-ms']) };
/**
 * A run may take at most this many times the ideal time (jobs ÷ true rate). The baselines' tail of
 * backoffs can run long; 1.5× keeps the full run under 15 minutes and `--quick` under 3 on two
 * cores (`--cap`).
 */
const BASELINE_CAP = Number(values.cap ?? 1.5);
const HFQ_CAP = Number(values['hfq-cap']);
const MODEL = 'sentence-transformers/all-MiniLM-L6-v2';
const RATE_SHARE_TARGET = 0.85;
const WORKER_READY_TIMEOUT_MS = 90_000;

// ─── scenarios and systems ──────────────────────────────────────────────────────────────────

type ScenarioId = '1a' | '1b' | '2' | '3' | '4a' | '4b' | '4c' | '4d' | '5' | '6';
type SystemId = 'hfq' | 'bullmq' | 'retry';

interface Scenario {
  id: ScenarioId;
  title: string;
  /** What every system is told: N per W. */
  configured: { max: number; durationMs: number };
  /** What the upstream enforces, per the same window (its highest level when the limit moves). */
  trueLimit: number;
  /** The upstream's limit for a run of `jobs` jobs (a moving limit's schedule depends on it). */
  upstream: RateLimitConfig | ((jobs: number) => RateLimitConfig);
  throttleStyle: Partial<ThrottleStyle>;
  /** Share of requests a busy provider answers 429 at random, no Retry-After (the simulator's `busyShare`). */
  busyShare?: number;
  /** Jobs per run, when not the benchmark's `--jobs` (full run, quick run). */
  jobs?: { full: number; quick: number };
  /**
   * The least time `jobs` jobs can take at the true limit, honouring the extra requests noise
   * forces (ms). @defaultValue jobs ÷ true limit
   */
  idealMs?: (jobs: number) => number;
  /** hfq's targets: efficiency at least, 429 share at most (none for noise: its 429s are the upstream's). */
  target: { efficiency: number; throttledShare: number | null };
}

const WINDOW_MS = 1_000;
const CONFIGURED = { max: 50, durationMs: WINDOW_MS };
const HIDDEN_LIMIT = 20;
const NO_HEADERS: Partial<ThrottleStyle> = { retryAfter: 'none', rateLimitHeaders: 'none' };

const ALL_SCENARIOS: Scenario[] = [
  {
    id: '1a',
    title: 'Known limit, sliding window',
    configured: CONFIGURED,
    trueLimit: CONFIGURED.max,
    upstream: { algorithm: 'sliding-window', limit: CONFIGURED.max, windowMs: WINDOW_MS },
    throttleStyle: NO_HEADERS,
    target: { efficiency: 0.97, throttledShare: 0.005 },
  },
  {
    id: '1b',
    title: 'Known limit, token bucket',
    configured: CONFIGURED,
    trueLimit: CONFIGURED.max,
    upstream: {
      algorithm: 'token-bucket',
      limit: CONFIGURED.max,
      windowMs: WINDOW_MS,
      burst: CONFIGURED.max,
    },
    throttleStyle: NO_HEADERS,
    target: { efficiency: 0.97, throttledShare: 0.005 },
  },
  {
    id: '2',
    title: 'Hidden limit (40% of the configured ceiling), Retry-After',
    configured: CONFIGURED,
    trueLimit: HIDDEN_LIMIT,
    upstream: { algorithm: 'sliding-window', limit: HIDDEN_LIMIT, windowMs: WINDOW_MS },
    throttleStyle: { retryAfter: 'seconds', rateLimitHeaders: 'none' },
    target: { efficiency: 0.85, throttledShare: 0.03 },
  },
  {
    id: '3',
    title: 'Hidden limit (40% of the configured ceiling), no Retry-After, no rate headers',
    configured: CONFIGURED,
    trueLimit: HIDDEN_LIMIT,
    upstream: { algorithm: 'sliding-window', limit: HIDDEN_LIMIT, windowMs: WINDOW_MS },
    throttleStyle: NO_HEADERS,
    target: { efficiency: 0.85, throttledShare: 0.03 },
  },
  ...(
    [
      ['4a', 0.001],
      ['4b', 0.02],
      ['4c', 0.1],
      ['4d', 0.5],
    ] as const
  ).map(
    ([id, p]): Scenario => ({
      id,
      title: `Known 50/s, plus ${percent(p, p < 0.01 ? 1 : 0)} of requests answered 429 at random by a busy provider, no Retry-After`,
      configured: CONFIGURED,
      trueLimit: CONFIGURED.max,
      upstream: { algorithm: 'sliding-window', limit: CONFIGURED.max, windowMs: WINDOW_MS },
      throttleStyle: NO_HEADERS,
      busyShare: p,
      // Each job needs 1 ÷ (1 − p) requests on average, and every request counts against the limit.
      idealMs: (jobs) => (jobs / (1 - p) / CONFIGURED.max) * WINDOW_MS,
      target: { efficiency: (p <= 0.1 ? 0.92 : 0.8) * (1 - p), throttledShare: null },
    }),
  ),
  {
    id: '5',
    title: 'Known limit, sliding window, long run: occasional real 429s from arrival jitter',
    configured: CONFIGURED,
    trueLimit: CONFIGURED.max,
    upstream: { algorithm: 'sliding-window', limit: CONFIGURED.max, windowMs: WINDOW_MS },
    throttleStyle: NO_HEADERS,
    jobs: { full: 3_000, quick: 600 },
    target: { efficiency: 0.95, throttledShare: 0.005 },
  },
  {
    id: '6',
    title: 'Moving limit: 50/s, 25/s from a third of the ideal run, 50/s again from two thirds',
    configured: CONFIGURED,
    trueLimit: CONFIGURED.max,
    upstream: (jobs) => {
      const { first, second } = movingPhases(jobs);
      return {
        algorithm: 'sliding-window',
        limit: CONFIGURED.max,
        windowMs: WINDOW_MS,
        schedule: [
          { afterMs: first, limit: MOVING_LOW },
          { afterMs: first + second, limit: CONFIGURED.max },
        ],
      };
    },
    throttleStyle: NO_HEADERS,
    jobs: { full: 1_500, quick: 900 },
    idealMs: (jobs) => {
      const { first, second } = movingPhases(jobs);
      return first + second + ((jobs - 2 * Math.floor(jobs / 3)) / CONFIGURED.max) * WINDOW_MS;
    },
    target: { efficiency: 0.85, throttledShare: 0.03 },
  },
];

/** The moving limit's low level, and the ideal length of its first two phases (a third of the jobs each). */
const MOVING_LOW = 25;
function movingPhases(jobs: number): { first: number; second: number } {
  const third = Math.floor(jobs / 3);
  return { first: (third / CONFIGURED.max) * WINDOW_MS, second: (third / MOVING_LOW) * WINDOW_MS };
}

function upstreamOf(scenario: Scenario, jobs: number): RateLimitConfig {
  return typeof scenario.upstream === 'function' ? scenario.upstream(jobs) : scenario.upstream;
}

function jobCount(scenario: Scenario): number {
  if (values.jobs !== undefined || !scenario.jobs) return JOBS;
  return QUICK ? scenario.jobs.quick : scenario.jobs.full;
}

function idealMsOf(scenario: Scenario, jobs: number): number {
  return scenario.idealMs?.(jobs) ?? (jobs / scenario.trueLimit) * scenario.configured.durationMs;
}

const SYSTEM_NAMES: Record<SystemId, string> = {
  hfq: 'hfq',
  bullmq: 'plain BullMQ (limiter + retries)',
  retry: 'retry loop (no limiter)',
};

function pick<T extends string>(list: string | undefined, all: readonly T[], what: string): T[] {
  if (list === undefined) return [...all];
  const chosen = list.split(',').map((s) => s.trim()) as T[];
  for (const item of chosen) if (!all.includes(item)) throw new Error(`unknown ${what} "${item}"`);
  return chosen;
}

const SCENARIOS = pick(
  values.scenarios,
  ALL_SCENARIOS.map((s) => s.id),
  'scenario',
).map((id) => ALL_SCENARIOS.find((s) => s.id === id) as Scenario);
const SYSTEMS = pick<SystemId>(values.systems, ['hfq', 'bullmq', 'retry'], 'system');
/** `--quick` keeps hfq on every scenario and runs the baselines on one known and one hidden limit. */
const QUICK_BASELINE_SCENARIOS: readonly ScenarioId[] = ['1a', '4b'];

function systemsFor(scenario: Scenario): SystemId[] {
  if (!QUICK || values.systems !== undefined || QUICK_BASELINE_SCENARIOS.includes(scenario.id))
    return SYSTEMS;
  return SYSTEMS.filter((system) => system === 'hfq');
}

// ─── results ────────────────────────────────────────────────────────────────────────────────

interface LearnedSample {
  /** ms since the enqueue began */
  atMs: number;
  learnedRate: number | null;
  pausedForMs: number;
}

interface Episode {
  /** ms since the enqueue began */
  atMs: number;
  learnedRate: number;
  delayMs: number;
  delaySource: string;
}

interface RunResult {
  system: SystemId;
  scenario: ScenarioId;
  jobs: number;
  completed: number;
  failed: number;
  /** Neither completed nor failed when the run ended (cap reached). */
  unfinished: number;
  finished: boolean;
  capMs: number;
  workerStartMs: number;
  enqueueMs: number;
  /** From the start of the enqueue to the last job completed or failed. */
  enqueueToLastResultMs: number | null;
  upstream: UpstreamFigures;
  maxAdmittedInWindow: number;
  /** Requests per second from the first request on: admitted (not 429) and answered 429. */
  timeline: { admitted: number[]; throttled: number[] };
  /** (completed ÷ true rate per second) ÷ elapsed(first → last request). */
  efficiency: number;
  /** Event-loop delay of the benchmark process during the run (ms). */
  benchLoopDelayMs: { p99: number; max: number };
  targets?: { efficiency: boolean; throttledShare: boolean };
  hfq?: { episodes: Episode[]; learned: LearnedSample[]; finalLearnedRate: number | null };
}

// ─── main ───────────────────────────────────────────────────────────────────────────────────

const log = (message: string) => process.stderr.write(`${message}\n`);
const runTag = Date.now().toString(36);

async function main(): Promise<void> {
  const wallStart = performance.now();
  const cleanup = new Cleanup();
  const results: RunResult[] = [];
  const baselinePool: RunContext['baselinePool'] = {};
  try {
    const redis = await startLocalRedis();
    cleanup.add('redis', () => redis.stop());
    // The simulator runs in its own process, so this one's bookkeeping cannot skew its clock.
    const sim = await startSimProcess({
      latency: { baseMs: 0, jitterMs: 0, perItemMs: 0, ...LATENCY },
      logLimit: 500_000,
    });
    cleanup.add('simulator', () => sim.close());
    log(
      `bench:limits ${QUICK ? '(quick) ' : ''}— ${JOBS} jobs, scenarios ${SCENARIOS.map((s) => s.id).join(', ')}, ` +
        `systems ${SYSTEMS.join(', ')}, redis ${redis.source}`,
    );
    const most = Math.max(...SCENARIOS.map(jobCount));
    const jobs = Array.from({ length: most }, (_, i) => ({
      account: 'acme',
      task: 'feature-extraction' as const,
      model: MODEL,
      inputs: `text ${i}`,
    }));
    for (const scenario of SCENARIOS) {
      for (const system of systemsFor(scenario)) {
        const result = await runOne(system, scenario, {
          sim,
          redisUrl: redis.url,
          jobs,
          cleanup,
          baselinePool,
        });
        results.push(result);
        log(`  ${summaryLine(result, scenario)}`);
      }
    }
  } finally {
    await cleanup.runAll();
  }
  const wallMs = performance.now() - wallStart;
  const report = buildReport(results, wallMs, baselinePool.startMs);
  const markdown = renderMarkdown(report);
  mkdirSync('.bench-out', { recursive: true });
  writeFileSync('.bench-out/limits.json', `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync('.bench-out/limits.md', `${markdown}\n`);
  console.log(markdown);
}

interface RunContext {
  baselinePool: { workers?: ChildNode[]; startMs?: number; stop?: () => Promise<void> };
  sim: SimProcess;
  redisUrl: string;
  jobs: { account: string; task: 'feature-extraction'; model: string; inputs: string }[];
  cleanup: Cleanup;
}

/** One system against one scenario: fresh token, fresh prefix, workers up, enqueue, wait, measure, tear down. */
async function runOne(system: SystemId, scenario: Scenario, all: RunContext): Promise<RunResult> {
  const jobs = all.jobs.slice(0, jobCount(scenario));
  const ctx = { ...all, jobs };
  const { sim } = ctx;
  const token = `hf_bench_limits_${runTag}_${scenario.id}_${system}`;
  const label = `${scenario.id}/${system}`;
  const prefix = `bench-limits-${runTag}-${scenario.id}-${system}`;
  await sim.setToken(token, {
    label,
    limits: [upstreamOf(scenario, jobs.length)],
    throttleStyle: scenario.throttleStyle,
    ...(scenario.busyShare ? { busyShare: scenario.busyShare } : {}),
  });
  const idealMs = idealMsOf(scenario, jobs.length);
  const capMs = Math.round(idealMs * (system === 'hfq' ? HFQ_CAP : BASELINE_CAP));
  log(`[${scenario.id}] ${SYSTEM_NAMES[system]}: starting ${PROCESSES} workers …`);
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  const outcome =
    system === 'hfq'
      ? await runHfq(scenario, ctx, { token, prefix, capMs })
      : await runBaseline(system, scenario, ctx, { token, prefix, capMs });
  loopDelay.disable();
  await deletePrefix(ctx.redisUrl, prefix).catch(() => 0);

  const filter = { route: 'router' as const, tokenLabel: label };
  const records = await sim.requests(filter);
  const upstream = upstreamFigures(
    records,
    scenario.configured.durationMs,
    RATE_SHARE_TARGET * scenario.trueLimit,
  );
  const maxAdmittedInWindow = (await sim.maxInWindow(scenario.configured.durationMs, filter)).admitted;
  // Requests per second of the run, admitted and refused (for the JSON report).
  const timeline: { admitted: number[]; throttled: number[] } = { admitted: [], throttled: [] };
  for (const record of records) {
    const second = Math.floor((record.t - (upstream.firstAt ?? record.t)) / 1000);
    const series = record.status === 429 ? timeline.throttled : timeline.admitted;
    while (timeline.admitted.length <= second) timeline.admitted.push(0);
    while (timeline.throttled.length <= second) timeline.throttled.push(0);
    series[second] = (series[second] ?? 0) + 1;
  }
  await sim.resetStats();
  const efficiency = upstream.elapsedMs > 0 ? idealMsOf(scenario, outcome.completed) / upstream.elapsedMs : 0;
  const finished = outcome.completed + outcome.failed === jobs.length;
  return {
    system,
    scenario: scenario.id,
    jobs: jobs.length,
    completed: outcome.completed,
    failed: outcome.failed,
    unfinished: jobs.length - outcome.completed - outcome.failed,
    finished,
    capMs,
    workerStartMs: outcome.workerStartMs,
    enqueueMs: outcome.enqueueMs,
    enqueueToLastResultMs: outcome.lastResultMs,
    upstream,
    maxAdmittedInWindow,
    timeline,
    efficiency,
    benchLoopDelayMs: { p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 },
    ...(system === 'hfq'
      ? {
          targets: {
            efficiency: finished && outcome.failed === 0 && efficiency >= scenario.target.efficiency,
            throttledShare:
              scenario.target.throttledShare === null ||
              upstream.throttledShare <= scenario.target.throttledShare,
          },
        }
      : {}),
    ...(outcome.hfq ? { hfq: outcome.hfq } : {}),
  };
}

interface Outcome {
  completed: number;
  failed: number;
  workerStartMs: number;
  enqueueMs: number;
  lastResultMs: number | null;
  hfq?: RunResult['hfq'];
}

const EPISODE_LINE = 'upstream 429: congestion';

/** Writes the domain state hash (without its ring of counts) every 250 ms; returns the stop function. */
function traceDomain(redisUrl: string, prefix: string, scenarioId: string, t0: number): () => void {
  const redis = new Redis(redisUrl);
  const lines: string[] = [];
  const timer = setInterval(() => {
    void (async () => {
      const keys = (await redis.keys(`${prefix}:hfq:domain:*`)).filter((k) => k.endsWith('}'));
      for (const key of keys) {
        const state = await redis.hgetall(key);
        const [sec, micros] = await redis.time();
        state.now = String(Number(sec) * 1000 + Math.floor(Number(micros) / 1000));
        const kept = Object.fromEntries(Object.entries(state).filter(([f]) => !/^[bst]\d+$/.test(f)));
        lines.push(JSON.stringify({ atMs: Math.round(performance.now() - t0), key, ...kept }));
      }
    })().catch(() => {});
  }, 250);
  return () => {
    clearInterval(timer);
    mkdirSync('.bench-out', { recursive: true });
    writeFileSync(`.bench-out/trace-${scenarioId}.jsonl`, `${lines.join('\n')}\n`);
    redis.disconnect();
  };
}

async function runHfq(
  scenario: Scenario,
  ctx: RunContext,
  run: { token: string; prefix: string; capMs: number },
): Promise<Outcome> {
  const { sim } = ctx;
  const accounts: AccountConfigInput[] = [
    { id: 'acme', tier: 'pro', hfToken: run.token, limit: { ...scenario.configured } },
  ];
  const dir = mkdtempSync(join(tmpdir(), 'hfq-bench-limits-'));
  const removeDir = ctx.cleanup.add('accounts file', () => rmSync(dir, { recursive: true, force: true }));
  const accountsFile = join(dir, 'accounts.json');
  writeFileSync(accountsFile, JSON.stringify(accounts));

  const started = performance.now();
  const workers = await startChildren(
    PROCESSES,
    (i) => ({
      label: `hfq worker ${i + 1}`,
      script: 'packages/cli/src/main.ts',
      args: ['worker'],
      env: {
        REDIS_URL: ctx.redisUrl,
        HFQ_PREFIX: run.prefix,
        HFQ_ACCOUNTS_FILE: accountsFile,
        HFQ_CONCURRENCY: String(CONCURRENCY),
        HF_ROUTER_URL: sim.routerUrl,
        HF_HUB_URL: sim.hubUrl,
        HFQ_PROVIDER_URLS: `together=${sim.providerUrls.together},cerebras=${sim.providerUrls.cerebras}`,
        HFQ_METRICS_PORT: '0',
        HFQ_SHUTDOWN_GRACE_MS: '3000',
        LOG_LEVEL: 'info',
      },
      keep: (line) => line.includes(EPISODE_LINE),
    }),
    '"worker ready"',
    WORKER_READY_TIMEOUT_MS,
  );
  const stopWorkers = ctx.cleanup.add('hfq workers', () => stopChildren(workers));
  const workerStartMs = performance.now() - started;

  const producer = createProducer({ connection: ctx.redisUrl, prefix: run.prefix });
  const closeProducer = ctx.cleanup.add('producer', () => producer.close());
  const admin = createAdmin({ connection: ctx.redisUrl, prefix: run.prefix, accounts });
  const closeAdmin = ctx.cleanup.add('admin', () => admin.close());
  try {
    const t0 = performance.now();
    const handles = await producer.enqueueMany(ctx.jobs);
    const enqueueMs = performance.now() - t0;

    // The learned rate, once a second, as every worker sees it in Redis.
    const learned: LearnedSample[] = [];
    let sampling = false;
    const sampler = setInterval(() => {
      if (sampling) return;
      sampling = true;
      void admin
        .status()
        .then(([status]) => {
          learned.push({
            atMs: Math.round(performance.now() - t0),
            learnedRate: status?.learnedRate ?? null,
            pausedForMs: status?.pausedForMs ?? 0,
          });
        })
        .catch(() => {})
        .finally(() => {
          sampling = false;
        });
    }, 1_000);

    const stopTrace = TRACE ? traceDomain(ctx.redisUrl, run.prefix, scenario.id, t0) : () => {};
    const tally = await awaitHandles(handles, t0, t0 + run.capMs);
    clearInterval(sampler);
    stopTrace();
    const final = await admin.status().catch(() => []);
    const episodes = workers
      .flatMap((w) => w.kept)
      .flatMap((line) => parseEpisode(line, t0))
      .sort((a, b) => a.atMs - b.atMs);
    return {
      ...tally,
      workerStartMs,
      enqueueMs,
      hfq: { episodes, learned, finalLearnedRate: final[0]?.learnedRate ?? null },
    };
  } finally {
    await closeProducer();
    await closeAdmin();
    await stopWorkers();
    await removeDir();
  }
}

/** Wait for every handle's result until `deadline` (performance clock); count outcomes. */
async function awaitHandles(
  handles: JobHandle[],
  t0: number,
  deadline: number,
): Promise<{ completed: number; failed: number; lastResultMs: number | null }> {
  let completed = 0;
  let failed = 0;
  let last: number | null = null;
  const progress = startProgress(() => completed + failed, handles.length, t0);
  try {
    await Promise.all(
      handles.map(async (handle) => {
        try {
          await handle.result({ timeoutMs: Math.max(1, deadline - performance.now()) });
          completed++;
        } catch (err) {
          if (err instanceof ResultTimeoutError) return;
          failed++;
        }
        last = performance.now();
      }),
    );
  } finally {
    clearInterval(progress);
  }
  return { completed, failed, lastResultMs: last === null ? null : last - t0 };
}

function parseEpisode(line: string, t0: number): Episode[] {
  try {
    const entry = JSON.parse(line) as Record<string, unknown>;
    const time = Number(entry.time);
    return [
      {
        atMs: Math.round(time - performance.timeOrigin - t0),
        learnedRate: Number(entry.learnedRate),
        delayMs: Number(entry.delayMs),
        delaySource: String(entry.delaySource),
      },
    ];
  } catch {
    return [];
  }
}

function startProgress(done: () => number, total: number, t0: number): NodeJS.Timeout {
  return setInterval(() => {
    log(`    … ${done()}/${total} done after ${fixed((performance.now() - t0) / 1000)} s`);
  }, 15_000);
}

/** The baseline worker processes: started once, on the first baseline run, and reused (see limits-baseline-worker.ts). */
async function baselineWorkers(ctx: RunContext): Promise<ChildNode[]> {
  if (ctx.baselinePool.workers) return ctx.baselinePool.workers;
  const started = performance.now();
  const workers = await startChildren(
    PROCESSES,
    (i) => ({
      label: `baseline worker ${i + 1}`,
      script: 'bench/limits-baseline-worker.ts',
      env: {},
      ipc: true,
    }),
    'baseline ready',
    WORKER_READY_TIMEOUT_MS,
  );
  ctx.baselinePool.workers = workers;
  ctx.baselinePool.startMs ??= performance.now() - started;
  ctx.baselinePool.stop = ctx.cleanup.add('baseline workers', async () => {
    ctx.baselinePool.workers = undefined;
    ctx.baselinePool.stop = undefined;
    await stopChildren(workers, 5_000);
  });
  return workers;
}

/** End the run on every baseline process; a process that does not answer gets the whole pool restarted for the next run. */
async function endBaselineRun(ctx: RunContext, workers: ChildNode[]): Promise<void> {
  try {
    await Promise.all(workers.map((w) => w.request({ cmd: 'stop' }, 30_000)));
  } catch (err) {
    log(`    baseline workers did not stop cleanly (${(err as Error).message}); starting new ones next time`);
    await ctx.baselinePool.stop?.();
  }
}

async function runBaseline(
  system: 'bullmq' | 'retry',
  scenario: Scenario,
  ctx: RunContext,
  run: { token: string; prefix: string; capMs: number },
): Promise<Outcome> {
  const { sim } = ctx;
  const queueName = 'bench';
  const workers = await baselineWorkers(ctx);
  const started = performance.now();
  const baselineRun: BaselineRun = {
    mode: system,
    redisUrl: ctx.redisUrl,
    prefix: run.prefix,
    queue: queueName,
    token: run.token,
    routerUrl: sim.routerUrl,
    hubUrl: sim.hubUrl,
    concurrency: CONCURRENCY,
    ...(system === 'bullmq' ? { limit: { ...scenario.configured } } : {}),
  };
  await Promise.all(workers.map((w) => w.request({ cmd: 'start', run: baselineRun }, 60_000)));
  const stopWorkers = ctx.cleanup.add(`${system} run`, () => endBaselineRun(ctx, workers));
  const workerStartMs = performance.now() - started;

  const connection = new Redis(ctx.redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue(queueName, { connection, prefix: run.prefix });
  const eventsConnection = new Redis(ctx.redisUrl, { maxRetriesPerRequest: null });
  const events = new QueueEvents(queueName, { connection: eventsConnection, prefix: run.prefix });
  const closeQueue = ctx.cleanup.add(`${system} queue`, async () => {
    await events.close();
    await queue.close();
    connection.disconnect();
    eventsConnection.disconnect();
  });
  try {
    await events.waitUntilReady();
    const ids = new Set(ctx.jobs.map((_, i) => `job-${i}`));
    const settled = new Set<string>();
    let completed = 0;
    let failed = 0;
    let last: number | null = null;
    let allDone: () => void = () => {};
    const done = new Promise<void>((resolve) => {
      allDone = resolve;
    });
    const settle = (jobId: string, ok: boolean) => {
      if (!ids.has(jobId) || settled.has(jobId)) return;
      settled.add(jobId);
      if (ok) completed++;
      else failed++;
      last = performance.now();
      if (settled.size === ids.size) allDone();
    };
    events.on('completed', ({ jobId }) => settle(jobId, true));
    events.on('failed', ({ jobId }) => settle(jobId, false));

    const jobOptions = system === 'bullmq' ? BULLMQ_JOB_OPTIONS : { attempts: 1 };
    const t0 = performance.now();
    await queue.addBulk(
      ctx.jobs.map((data, i) => ({
        name: 'feature-extraction',
        data: { model: data.model, inputs: data.inputs },
        opts: { jobId: `job-${i}`, ...jobOptions },
      })),
    );
    const enqueueMs = performance.now() - t0;
    const progress = startProgress(() => settled.size, ids.size, t0);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([done, new Promise<void>((resolve) => (timer = setTimeout(resolve, run.capMs)))]);
    clearTimeout(timer);
    clearInterval(progress);
    // Events are for timing; the counts in Redis are the truth.
    const counts = await queue.getJobCounts('completed', 'failed');
    completed = Math.max(completed, counts.completed ?? 0);
    failed = Math.max(failed, counts.failed ?? 0);
    const lastResult: number | null = last;
    return {
      completed,
      failed,
      workerStartMs,
      enqueueMs,
      lastResultMs: lastResult === null ? null : lastResult - t0,
    };
  } finally {
    await stopWorkers();
    await closeQueue();
  }
}

// ─── report ─────────────────────────────────────────────────────────────────────────────────

interface Report {
  mode: 'quick' | 'full';
  generatedAt: string;
  wallSeconds: number;
  setup: {
    jobsPerRun: number;
    processes: number;
    concurrency: number;
    latencyMs: { min: number; max: number };
    configured: string;
    capFactor: { hfq: number; baselines: number };
    baselineWorkersStartMs: number | null;
    client: string;
    baselines: { bullmq: string; retry: string };
    efficiency: string;
    timeToRate: string;
  };
  scenarios: (Scenario & { runs: RunResult[] })[];
}

function buildReport(results: RunResult[], wallMs: number, baselineStartMs: number | undefined): Report {
  return {
    mode: QUICK ? 'quick' : 'full',
    generatedAt: new Date().toISOString(),
    wallSeconds: Math.round(wallMs / 100) / 10,
    setup: {
      jobsPerRun: JOBS,
      processes: PROCESSES,
      concurrency: CONCURRENCY,
      latencyMs: { min: LATENCY.minMs, max: LATENCY.maxMs },
      configured: `${CONFIGURED.max} per ${CONFIGURED.durationMs} ms`,
      capFactor: { hfq: HFQ_CAP, baselines: BASELINE_CAP },
      baselineWorkersStartMs: baselineStartMs ?? null,
      client: `@huggingface/inference ${clientVersion}`,
      baselines: {
        bullmq: `Worker limiter { max: ${CONFIGURED.max}, duration: ${CONFIGURED.durationMs} }; jobs attempts ${BULLMQ_JOB_OPTIONS.attempts}, exponential backoff from ${BULLMQ_JOB_OPTIONS.backoff.delay} ms`,
        retry: `no limiter; per request up to ${RETRY_POLICY.tries} tries, wait ${RETRY_POLICY.baseMs} ms × ${RETRY_POLICY.factor}^(n-1) × (1 + random)`,
      },
      efficiency:
        '(completed jobs ÷ true limit per second) ÷ seconds from the first upstream request to the last',
      timeToRate: `from the first request until admitted requests in a sliding ${WINDOW_MS} ms window first reach ${RATE_SHARE_TARGET} × the true limit`,
    },
    scenarios: SCENARIOS.map((scenario) => ({
      ...scenario,
      runs: results.filter((r) => r.scenario === scenario.id),
    })),
  };
}

function upstreamText(s: Scenario, jobs: number): string {
  const upstream = upstreamOf(s, jobs);
  const kind = upstream.algorithm === 'token-bucket' ? 'token bucket' : 'sliding window';
  const capacity = upstream.algorithm === 'token-bucket' ? ` (capacity ${upstream.burst})` : '';
  const moves = (upstream.schedule ?? [])
    .map((entry) => `, ${entry.limit} from ${fixed(entry.afterMs / 1000, 1)} s`)
    .join('');
  const headers =
    s.throttleStyle.retryAfter === 'seconds'
      ? '429 with Retry-After (seconds)'
      : '429 with no Retry-After, no rate headers';
  const busy = s.busyShare ? `; ${percent(s.busyShare, 1)} of requests answered 429 at random` : '';
  const ideal = `ideal ${seconds(idealMsOf(s, jobs))} for ${integer(jobs)} jobs`;
  return `upstream ${upstream.limit} per ${upstream.windowMs} ms ${kind}${capacity}${moves}, configured ${s.configured.max} per ${s.configured.durationMs} ms; ${headers}${busy}; ${ideal}`;
}

function shareTarget(s: Scenario): string {
  return s.target.throttledShare === null ? 'none' : `≤ ${percent(s.target.throttledShare, 1)}`;
}

function doneText(r: RunResult): string {
  const base = `${integer(r.completed)} / ${integer(r.failed)} / ${integer(r.unfinished)}`;
  return r.finished
    ? base
    : `${base} (did not finish: ${integer(r.completed + r.failed)}/${integer(r.jobs)} done at the ${fixed(r.capMs / 1000, 0)} s cap)`;
}

const mark = (ok: boolean) => (ok ? 'pass' : 'miss');

function targetText(r: RunResult, s: Scenario): string {
  if (!r.targets) return '';
  return (
    `efficiency ≥ ${fixed(s.target.efficiency, 2)}: ${mark(r.targets.efficiency)}; ` +
    `429s ${shareTarget(s)}: ${mark(r.targets.throttledShare)}`
  );
}

function summaryLine(r: RunResult, s: Scenario): string {
  return (
    `${SYSTEM_NAMES[r.system]}: ${seconds(r.upstream.elapsedMs)} first→last request, efficiency ${fixed(r.efficiency, 3)}, ` +
    `429s ${percent(r.upstream.throttledShare)}, max ${r.maxAdmittedInWindow}/window, done/failed/unfinished ${doneText(r)}` +
    (r.targets ? ` — ${targetText(r, s)}` : '')
  );
}

function hfqNotes(r: RunResult, s: Scenario): string[] {
  if (!r.hfq) return [];
  const { episodes, learned, finalLearnedRate } = r.hfq;
  const rates = episodes.map((e) => fixed(e.learnedRate, 1));
  const firstAtOrBelow = learned.find((l) => l.learnedRate !== null && l.learnedRate <= s.trueLimit);
  const parts = [
    `${episodes.length} congestion episode${episodes.length === 1 ? '' : 's'}` +
      (episodes.length > 0
        ? ` at ${episodes.map((e) => fixed(e.atMs / 1000, 1)).join(', ')} s after the enqueue (learned rate after each: ${rates.join(' → ')}; pauses ${episodes.map((e) => `${e.delayMs} ms ${e.delaySource}`).join(', ')})`
        : ''),
    finalLearnedRate === null
      ? 'no learned rate (the configured one in use)'
      : `learned rate at the end ${fixed(finalLearnedRate, 1)}`,
  ];
  if (s.trueLimit < s.configured.max) {
    parts.push(
      firstAtOrBelow
        ? `first at or below the true ${s.trueLimit} at ${fixed(firstAtOrBelow.atMs / 1000, 0)} s`
        : `never at or below the true ${s.trueLimit} in the 1 s samples`,
    );
  }
  return [`hfq: ${parts.join('; ')}.`];
}

function renderMarkdown(report: Report): string {
  const { setup } = report;
  const lines: string[] = [
    `# Rate limits: hfq, plain BullMQ, a client-side retry loop${report.mode === 'quick' ? ' (quick)' : ''}`,
    '',
    `${integer(setup.jobsPerRun)} feature-extraction jobs per run; each system ${setup.processes} worker processes × concurrency ${setup.concurrency}; ` +
      `upstream latency uniform ${setup.latencyMs.min}–${setup.latencyMs.max} ms; one Redis, one simulator; a fresh BullMQ prefix and token per run; ` +
      `each run capped at a multiple of its ideal time (jobs ÷ true rate): hfq ${setup.capFactor.hfq}×, the baselines ${setup.capFactor.baselines}×. ` +
      `Client: ${setup.client}. Wall time ${fixed(report.wallSeconds, 0)} s.`,
    '',
    `- plain BullMQ: ${setup.baselines.bullmq}.`,
    `- retry loop: ${setup.baselines.retry}.`,
    `- efficiency: ${setup.efficiency}. Time to ${Math.round(RATE_SHARE_TARGET * 100)}%: ${setup.timeToRate}.`,
    '- done / failed / unfinished: jobs completed, failed for good, and neither when the run ended.',
  ];
  for (const scenario of report.scenarios) {
    const hidden = scenario.trueLimit < scenario.configured.max;
    lines.push(
      '',
      `## ${scenario.id}. ${scenario.title}`,
      '',
      `${upstreamText(scenario, scenario.runs[0]?.jobs ?? jobCount(scenario))}.`,
      '',
    );
    const header = [
      'system',
      'first → last request',
      'enqueue → last result',
      'efficiency',
      '429s',
      `max admitted in ${scenario.configured.durationMs} ms`,
      ...(hidden ? [`to ${Math.round(RATE_SHARE_TARGET * 100)}% of true rate`] : []),
      'done / failed / unfinished',
      'hfq target',
    ];
    const rows = scenario.runs.map((r) => [
      SYSTEM_NAMES[r.system],
      seconds(r.upstream.elapsedMs),
      seconds(r.enqueueToLastResultMs),
      fixed(r.efficiency, 3),
      `${percent(r.upstream.throttledShare)} (${integer(r.upstream.throttled)} of ${integer(r.upstream.requests)})`,
      `${r.maxAdmittedInWindow} (limit ${scenario.trueLimit})`,
      ...(hidden ? [seconds(r.upstream.timeToRateMs)] : []),
      doneText(r),
      targetText(r, scenario),
    ]);
    lines.push(markdownTable(header, rows, ['l']));
    const skipped = SYSTEMS.filter((system) => !scenario.runs.some((r) => r.system === system));
    if (skipped.length > 0) {
      lines.push(
        '',
        `Not run here${report.mode === 'quick' ? ' (--quick)' : ''}: ${skipped.map((s) => SYSTEM_NAMES[s]).join(', ')}.`,
      );
    }
    for (const r of scenario.runs) for (const note of hfqNotes(r, scenario)) lines.push('', note);
  }
  const hfqRuns = report.scenarios.flatMap((s) =>
    s.runs.filter((r) => r.system === 'hfq').map((r) => [s, r] as const),
  );
  if (hfqRuns.length > 0) {
    lines.push('', '## hfq against its targets', '');
    lines.push(
      markdownTable(
        ['scenario', 'efficiency', 'target', '', '429s', 'target', ''],
        hfqRuns.map(([s, r]) => [
          `${s.id}. ${s.title}`,
          fixed(r.efficiency, 3),
          `≥ ${fixed(s.target.efficiency, 2)}`,
          mark(r.targets?.efficiency ?? false),
          percent(r.upstream.throttledShare, 2),
          shareTarget(s),
          s.target.throttledShare === null ? '' : mark(r.targets?.throttledShare ?? false),
        ]),
        ['l'],
      ),
    );
  }
  return lines.join('\n');
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
