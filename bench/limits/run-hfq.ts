/** `pnpm bench:limits`: one run of hfq: `hfq worker` processes, the producer, the learned rate once a second. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createProducer } from '@hfq/producer';
import type { AccountConfigInput } from '@hfq/shared';
import { createAdmin } from '@hfq/worker';
import { startChildren, stopChildren } from '../support/child.js';
import { awaitHandles, type LearnedSample, parseEpisode, traceDomain } from './measure.js';
import { CONCURRENCY, PROCESSES, TRACE, WORKER_READY_TIMEOUT_MS } from './options.js';
import type { Outcome, RunContext } from './run-context.js';
import type { Scenario } from './scenarios.js';

const EPISODE_LINE = 'upstream 429: congestion';

export async function runHfq(
  scenario: Scenario,
  ctx: RunContext,
  run: { token: string; prefix: string; capMs: number; traceName: string },
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

    const stopTrace = TRACE ? traceDomain(ctx.redisUrl, run.prefix, run.traceName, t0) : () => {};
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
