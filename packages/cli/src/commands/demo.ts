import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createProducer, type InferenceResult } from '@hfq/producer';
import { type AccountConfigInput, createLogger, type Job } from '@hfq/shared';
import { type Sim, startSim } from '@hfq/sim';
import { createAdmin, createWorker } from '@hfq/worker';
import { Interrupt } from '../interrupt.js';
import { startLocalRedis } from '../local-redis.js';
import { Progress } from '../progress.js';
import { watchRunState } from '../progress-note.js';
import { spawnWorker } from '../spawn-worker.js';
import { parseCommand, wholeOption } from '../usage.js';
import { demoEndpointAccount, demoEndpointJobs, demoEndpointSummary } from './demo-endpoint.js';
import { money, table } from './shared-config.js';

export const DEMO_HELP = `hfq demo [--jobs N] — the whole system on this machine, nothing to configure

Starts a Redis (REDIS_URL, else Docker, else redis-server from PATH), the Hugging Face simulator,
and two worker processes serving three accounts: "free" (its hidden upstream limit is below the
tier's estimate, so hfq learns it), "pro" (its HF credits run out mid-run and it fails over to
a Together key) and "dedicated" (an Inference Endpoint, scaled to zero at the start, used first). Enqueues a few hundred mixed jobs, shows progress, and prints a summary.

With HF_TOKEN set, runs a small, cheap set of real requests against Hugging Face instead
(a few embeddings and classifications, no images).`;

const MODELS = {
  chat: 'meta-llama/Llama-3.1-8B-Instruct',
  embed: 'sentence-transformers/all-MiniLM-L6-v2',
  classify: 'distilbert/distilbert-base-uncased-finetuned-sst-2-english',
  image: 'black-forest-labs/FLUX.1-schnell',
};

function demoJobs(count: number): Job[] {
  const jobs: Job[] = [];
  for (let i = 0; i < count; i++) {
    const account = i % 3 === 0 ? 'free' : 'pro';
    // Classification models are served by hf-inference only, so they go to "free": "pro" ends
    // on its Together key, which serves the chat, embedding and image models.
    const kind = account === 'pro' && i % 5 === 3 ? 2 : i % 5;
    if (kind === 0 || kind === 1) {
      jobs.push({
        account,
        task: 'chat-completion',
        model: MODELS.chat,
        messages: [{ role: 'user', content: `Summarise item ${i} in one line.` }],
        parameters: { max_tokens: 64 },
      });
    } else if (kind === 2) {
      jobs.push({
        account,
        task: 'feature-extraction',
        model: MODELS.embed,
        inputs: [`doc ${i} part a`, `doc ${i} part b`],
      });
    } else if (kind === 3) {
      jobs.push({
        account,
        task: 'text-classification',
        model: MODELS.classify,
        inputs: `review number ${i}`,
      });
    } else if (i % 25 === 4) {
      jobs.push({ account, task: 'text-to-image', model: MODELS.image, inputs: `a lighthouse, study ${i}` });
    } else {
      jobs.push({ account, task: 'feature-extraction', model: MODELS.embed, inputs: `sentence ${i}` });
    }
  }
  return jobs;
}

export async function runDemo(env: NodeJS.ProcessEnv, argv: string[]): Promise<void> {
  const { values } = parseCommand(argv, { jobs: { type: 'string' } }, DEMO_HELP);
  const count = wholeOption(values.jobs, 'jobs', 1, 100_000, 300, DEMO_HELP);
  if (env.HF_TOKEN) return realDemo(env);

  console.log('hfq demo: local Redis + Hugging Face simulator + 2 worker processes (no account needed)');
  // Ctrl-C, SIGHUP or a SIGINT sent to this process alone: stop what was started, in reverse.
  const interrupt = new Interrupt();
  const cleanups: (() => Promise<unknown>)[] = [];
  const started = <T>(value: T, cleanup: (value: T) => Promise<unknown>): T => {
    cleanups.unshift(() => cleanup(value));
    if (interrupt.interrupted) throw new DemoInterrupted();
    return value;
  };
  let progress: Progress | undefined;
  try {
    const redis = started(await startLocalRedis({ env }), (r) => r.stop());
    console.log(`  redis: ${redis.source} ${redis.url}`);
    const sim = started(
      await startSim({ latency: { baseMs: 0, jitterMs: 0, minMs: 20, maxMs: 120, perItemMs: 2 } }),
      (s) => s.close(),
    );
    const tokens = {
      free: 'hf_demo_free_0000000000000000',
      pro: 'hf_demo_pro_00000000000000000',
      together: 'tg-demo-key-0000',
    };
    // "free": a hidden limit of 3/s, below the tier's estimate of 5/s (hfq learns it).
    sim.setToken(tokens.free, {
      label: 'free',
      limits: [{ algorithm: 'sliding-window', limit: 3, windowMs: 1000 }],
    });
    // "pro": 20/s, and HF credits for about 120 requests; then the Together key takes over.
    sim.setToken(tokens.pro, {
      label: 'pro',
      limits: [{ algorithm: 'sliding-window', limit: 20, windowMs: 1000 }],
      credits: { balanceUsd: 0.012, costPerRequestUsd: 0.0001 },
    });
    sim.setToken(tokens.together, {
      label: 'together-key',
      limits: [{ algorithm: 'sliding-window', limit: 20, windowMs: 1000 }],
    });
    const accounts: AccountConfigInput[] = [
      { id: 'free', tier: 'free', hfToken: tokens.free },
      {
        id: 'pro',
        tier: 'pro',
        hfToken: tokens.pro,
        providerKeys: { together: { key: tokens.together, limits: [{ max: 20, durationMs: 1000 }] } },
        fallbackProviders: ['together'],
      },
      demoEndpointAccount(sim),
    ];
    console.log(`  simulator: ${sim.url}`);
    const dir = started(mkdtempSync(join(tmpdir(), 'hfq-demo-')), async (d) =>
      rmSync(d, { recursive: true, force: true }),
    );
    const accountsFile = join(dir, 'accounts.json');
    writeFileSync(accountsFile, JSON.stringify(accounts), { mode: 0o600 });
    console.log(`  files: ${dir}`);
    const prefix = `hfqdemo${Date.now().toString(36)}`;
    const workerEnv = {
      REDIS_URL: redis.url,
      HFQ_PREFIX: prefix,
      HFQ_ACCOUNTS_FILE: accountsFile,
      HFQ_CONCURRENCY: '8',
      HF_ROUTER_URL: sim.routerUrl,
      HF_HUB_URL: sim.hubUrl,
      HFQ_PROVIDER_URLS: `together=${sim.providerUrls.together},cerebras=${sim.providerUrls.cerebras}`,
      HFQ_METRICS_PORT: '0',
      HF_ENDPOINTS_API_URL: sim.endpointsApiUrl,
      HFQ_LOG_FORMAT: 'json',
      LOG_LEVEL: 'info',
    };
    // Workers' warnings are printed above the progress bar, never glued onto it.
    const onWarning = (text: string) => (progress ? progress.print(text) : console.error(text));
    const workers = await Promise.all(
      [0, 1].map(async () => started(await spawnWorker(workerEnv, onWarning), (w) => w.stop())),
    );
    console.log(`  workers: pid ${workers.map((w) => w.pid).join(', ')}\n`);

    // Interrupted, the results still awaited would fail against a closing connection: the process
    // exits once the rest is stopped instead.
    const producer = started(createProducer({ connection: redis.url, prefix }), (p) =>
      interrupt.interrupted ? Promise.resolve() : p.close(),
    );
    const startedAt = Date.now();
    const jobs = [...demoJobs(count), ...demoEndpointJobs(count)];
    const handles = await producer.enqueueMany(jobs);
    progress = new Progress(jobs.length, process.stdout);
    const bar = progress;
    bar.enqueued(jobs.length);
    // Held, credits out, paused for a stated wait: on the bar (progress-note.ts).
    const admin = started(createAdmin({ connection: redis.url, prefix, accounts }), (a) => a.close());
    const stopNote = watchRunState(admin, () => accounts.map((a) => a.id), bar);
    started(stopNote, async (stop) => stop());
    const results = await interrupt.race(
      Promise.all(
        handles.map((h) =>
          h.result({ timeoutMs: 300_000 }).then(
            (r) => {
              bar.done(true);
              return r;
            },
            (err: Error) => {
              bar.done(false);
              return err;
            },
          ),
        ),
      ),
    );
    if (!results) throw new DemoInterrupted();
    stopNote();
    bar.finish();
    progress = undefined;
    await printSummary(sim, jobs, results, Date.now() - startedAt, { redisUrl: redis.url, prefix, accounts });
  } catch (err) {
    if (!(err instanceof DemoInterrupted)) throw err;
  } finally {
    progress?.stop();
    if (interrupt.interrupted)
      process.stdout.write('\ninterrupted: stopping the workers, the simulator and Redis\n');
    for (const cleanup of cleanups) await cleanup().catch(() => {});
    interrupt.dispose();
    if (interrupt.interrupted) process.exit(130);
  }
}

class DemoInterrupted extends Error {}

async function printSummary(
  sim: Sim,
  jobs: Job[],
  results: (InferenceResult | Error)[],
  elapsedMs: number,
  state: { redisUrl: string; prefix: string; accounts: AccountConfigInput[] },
) {
  const stats = sim.stats();
  const admin = createAdmin({ connection: state.redisUrl, prefix: state.prefix, accounts: state.accounts });
  const statuses = await admin.status();
  await admin.close();
  const rows = [
    [
      'account',
      'jobs',
      'done',
      'failed',
      'via router',
      'via key',
      'learned rate',
      '429s',
      'credits',
      'est. spend',
    ],
  ];
  for (const s of statuses) {
    const mine = results.filter((_, i) => jobs[i]?.account === s.account);
    const ok = mine.filter((r): r is InferenceResult => !(r instanceof Error));
    rows.push([
      s.account,
      String(mine.length),
      String(ok.length),
      String(mine.length - ok.length),
      String(ok.filter((r) => r.route === 'hf-router').length),
      String(ok.filter((r) => r.route === 'provider-key').length),
      `${s.learnedRate?.toFixed(1) ?? s.configuredRate?.max}/s (ceiling ${s.configuredRate?.max})`,
      String(stats.byToken[s.account]?.byStatus['429'] ?? 0),
      s.credits.state === 'ok' ? 'ok' : s.credits.state,
      `${money(s.spend.hfRouterUsd)} HF + ${money(s.spend.providerKeyUsd)} key`,
    ]);
  }
  const failed = results.filter((r) => r instanceof Error);
  console.log(`\n${table(rows)}\n`);
  console.log(
    `${jobs.length - failed.length}/${jobs.length} jobs done in ${(elapsedMs / 1000).toFixed(1)} s; ` +
      `upstream requests ${stats.total} (429: ${stats.byStatus['429'] ?? 0}, 402: ${stats.byStatus['402'] ?? 0}); ` +
      `jobs failed ${failed.length}`,
  );
  console.log(demoEndpointSummary(sim, jobs, results));
  for (const err of failed.slice(0, 5)) console.log(`  failed: ${(err as Error).message}`);
}

/** A few cheap real requests (embeddings and classifications, no images) with the user's own token. */
async function realDemo(env: NodeJS.ProcessEnv): Promise<void> {
  console.log(
    'HF_TOKEN is set: running 6 small real requests against Hugging Face (3 embeddings, 3 classifications; no images).',
  );
  const redis = await startLocalRedis({ env });
  const prefix = `hfqdemo${Date.now().toString(36)}`;
  const tier = (env.HFQ_TIER ?? 'free') as 'free';
  const logger = createLogger({ name: 'hfq-demo', level: env.LOG_LEVEL ?? 'warn' });
  const worker = await createWorker({
    connection: redis.url,
    prefix,
    accounts: [{ id: 'demo', tier, hfToken: env.HF_TOKEN as string, limit: { max: 2, durationMs: 1000 } }],
    concurrency: 2,
    logger,
  });
  const producer = createProducer({ connection: redis.url, prefix });
  try {
    const jobs: Job[] = [
      ...['hfq queues inference', 'rate limits hold', 'credits fail over'].map(
        (text): Job => ({
          account: 'demo',
          task: 'feature-extraction',
          model: MODELS.embed,
          provider: 'hf-inference',
          inputs: text,
        }),
      ),
      ...['I love this', 'This is terrible', 'Not bad at all'].map(
        (text): Job => ({
          account: 'demo',
          task: 'text-classification',
          model: MODELS.classify,
          provider: 'hf-inference',
          inputs: text,
        }),
      ),
    ];
    const handles = await producer.enqueueMany(jobs);
    for (const [i, handle] of handles.entries()) {
      try {
        const result = await handle.result({ timeoutMs: 120_000 });
        const output = JSON.stringify(result.output);
        console.log(
          `  ${jobs[i]?.task}: ok via ${result.provider} in ${result.latencyMs} ms: ${output.slice(0, 80)}${output.length > 80 ? '…' : ''}`,
        );
      } catch (err) {
        console.log(`  ${jobs[i]?.task}: failed: ${(err as Error).message}`);
      }
    }
  } finally {
    await producer.close();
    await worker.close();
    await redis.stop();
  }
}
