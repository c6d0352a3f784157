/**
 * `pnpm bench:batch`: what coalescing buys under a rate limit, and what a very large batch costs
 * the producer (see docs/architecture.md, "Batches are flows").
 *
 * 1. Embeddings through the simulator behind a sliding window of `--rate` requests per second,
 *    upstream latency `--base-ms` + `--per-item-ms` per input: the same worker, `coalesce` 1 then
 *    32, items per second for each and the ratio. Coalesce 1 runs at one item per request, so it
 *    is measured on the first `--items1` inputs (its rate is steady; `--items1 10000` runs them all).
 * 2. Enqueue `--enqueue` items from a generator with no worker (run first, on a fresh heap): time,
 *    the producer's peak heap growth and RSS sampled every 5 ms, and the heap still held after a
 *    full collection once the enqueue is done.
 *
 * Prints a markdown table and writes `.bench-out/batch.json`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createProducer } from '@hfq/producer';
import { createLogger } from '@hfq/shared';
import { startSim } from '@hfq/sim';
import { createWorker } from '@hfq/worker';
import { Redis } from 'ioredis';
import { startLocalRedis } from '../packages/cli/src/local-redis.js';

const { values } = parseArgs({
  options: {
    items: { type: 'string', default: '10000' },
    items1: { type: 'string', default: '1000' },
    rate: { type: 'string', default: '20' },
    'base-ms': { type: 'string', default: '40' },
    'per-item-ms': { type: 'string', default: '2' },
    coalesce: { type: 'string', default: '32' },
    enqueue: { type: 'string', default: '100000' },
  },
});
const ITEMS = Number(values.items);
const ITEMS1 = Math.min(ITEMS, Number(values.items1));
const RATE = Number(values.rate);
const BASE_MS = Number(values['base-ms']);
const PER_ITEM_MS = Number(values['per-item-ms']);
const COALESCE = Number(values.coalesce);
const ENQUEUE = Number(values.enqueue);
const TOKEN = 'hf_bench_batch_0123456789abcdef';
const MODEL = 'sentence-transformers/all-MiniLM-L6-v2';
const MB = 1024 * 1024;

interface RunResult {
  coalesce: number;
  items: number;
  seconds: number;
  itemsPerSecond: number;
  requests: number;
  throttled: number;
  maxAdmittedPerSecond: number;
  failed: number;
}

async function main(): Promise<void> {
  const redis = await startLocalRedis();
  const sim = await startSim({ latency: { baseMs: BASE_MS, jitterMs: 0, perItemMs: PER_ITEM_MS } });
  sim.setToken(TOKEN, {
    label: 'bench',
    limits: [{ algorithm: 'sliding-window', limit: RATE, windowMs: 1000 }],
  });
  const prefix = `bench-batch-${Date.now().toString(36)}`;
  const enqueue = await measureEnqueue(redis.url, `${prefix}-enqueue`);
  const inputs = Array.from(
    { length: ITEMS },
    (_, i) => `benchmark sentence number ${i} about batched inference`,
  );
  try {
    const worker = await createWorker({
      connection: redis.url,
      prefix,
      accounts: [{ id: 'bench', tier: 'pro', hfToken: TOKEN, limit: { max: RATE, durationMs: 1000 } }],
      upstream: { routerUrl: sim.routerUrl, hubUrl: sim.hubUrl, providerUrls: { ...sim.providerUrls } },
      concurrency: 32,
      logger: createLogger({ name: 'bench-batch', level: 'warn' }),
    });
    const producer = createProducer({ connection: redis.url, prefix });
    const runs: RunResult[] = [];
    try {
      for (const [coalesce, items] of [
        [1, inputs.slice(0, ITEMS1)],
        [COALESCE, inputs],
      ] as const) {
        sim.resetStats();
        process.stderr.write(`coalesce ${coalesce}: ${items.length} items …\n`);
        const started = performance.now();
        const batch = await producer.enqueueBatch({
          account: 'bench',
          task: 'feature-extraction',
          model: MODEL,
          items,
          coalesce,
        });
        let failed = 0;
        for await (const result of batch.stream()) if (!result.ok) failed++;
        const seconds = (performance.now() - started) / 1000;
        const router = sim.requests({ route: 'router' });
        runs.push({
          coalesce,
          items: items.length,
          seconds,
          itemsPerSecond: items.length / seconds,
          requests: router.length,
          throttled: router.filter((r) => r.status === 429).length,
          maxAdmittedPerSecond: sim.maxInWindow(1000, { route: 'router' }).admitted,
          failed,
        });
      }
    } finally {
      await producer.close();
      await worker.close();
    }
    const [one, many] = runs as [RunResult, RunResult];
    const report = {
      setup: {
        rateLimit: `${RATE}/s sliding window`,
        latency: `${BASE_MS} ms + ${PER_ITEM_MS} ms per item`,
        items: ITEMS,
      },
      runs,
      ratio: many.itemsPerSecond / one.itemsPerSecond,
      enqueue,
    };
    print(report);
    mkdirSync('.bench-out', { recursive: true });
    writeFileSync('.bench-out/batch.json', `${JSON.stringify(report, null, 2)}\n`);
  } finally {
    await sim.close();
    await redis.stop();
  }
}

/** Enqueue items from a generator (nothing in memory up front), no worker: time and producer memory. */
async function measureEnqueue(url: string, prefix: string) {
  function* reviews(n: number): Generator<string> {
    for (let i = 0; i < n; i++) yield `review ${i}: the plot was gripping and the cast was superb`;
  }
  // A collector to measure what stays held (the runner has no --expose-gc).
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const producer = createProducer({ connection: url, prefix });
  const admin = new Redis(url);
  try {
    gc();
    const baseline = process.memoryUsage();
    let peakHeap = baseline.heapUsed;
    let peakRss = baseline.rss;
    const sampler = setInterval(() => {
      const now = process.memoryUsage();
      peakHeap = Math.max(peakHeap, now.heapUsed);
      peakRss = Math.max(peakRss, now.rss);
    }, 5);
    process.stderr.write(`enqueue ${ENQUEUE} items …\n`);
    const started = performance.now();
    const batch = await producer.enqueueBatch({
      account: 'bench',
      task: 'text-classification',
      model: 'distilbert/distilbert-base-uncased-finetuned-sst-2-english',
      items: reviews(ENQUEUE),
    });
    const { items, children } = await batch.enqueued();
    const seconds = (performance.now() - started) / 1000;
    clearInterval(sampler);
    gc();
    const retainedMb = (process.memoryUsage().heapUsed - baseline.heapUsed) / MB;
    return {
      items,
      children,
      seconds,
      itemsPerSecond: items / seconds,
      peakHeapGrowthMb: (peakHeap - baseline.heapUsed) / MB,
      peakRssMb: peakRss / MB,
      retainedHeapMb: retainedMb,
    };
  } finally {
    await producer.close();
    let cursor = '0';
    do {
      const [next, keys] = await admin.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 5_000);
      cursor = next;
      if (keys.length > 0) await admin.unlink(...keys);
    } while (cursor !== '0');
    await admin.quit();
  }
}

function print(report: {
  setup: Record<string, unknown>;
  runs: RunResult[];
  ratio: number;
  enqueue: Awaited<ReturnType<typeof measureEnqueue>>;
}): void {
  const f = (n: number, d = 1) =>
    n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
  const lines = [
    `## Batches: ${report.setup.rateLimit}, upstream ${report.setup.latency}`,
    '',
    '| coalesce | items | requests | time (s) | items/s | 429s | max admitted in 1 s | failed |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...report.runs.map(
      (r) =>
        `| ${r.coalesce} | ${r.items.toLocaleString('en-US')} | ${r.requests.toLocaleString('en-US')} | ${f(r.seconds)} | ${f(r.itemsPerSecond)} | ${r.throttled} | ${r.maxAdmittedPerSecond} | ${r.failed} |`,
    ),
    '',
    `**coalesce ${report.runs[1]?.coalesce} vs 1: ${f(report.ratio)}× the items per second** (target ≥ 25×)`,
    '',
    '| enqueue (no worker) | items | children | time (s) | items/s | peak heap growth (MB) | heap held after GC (MB) | peak RSS (MB) |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    `| from a generator | ${report.enqueue.items.toLocaleString('en-US')} | ${report.enqueue.children.toLocaleString('en-US')} | ${f(report.enqueue.seconds)} | ${f(report.enqueue.itemsPerSecond, 0)} | ${f(report.enqueue.peakHeapGrowthMb)} | ${f(report.enqueue.retainedHeapMb)} | ${f(report.enqueue.peakRssMb)} |`,
  ];
  console.log(lines.join('\n'));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
