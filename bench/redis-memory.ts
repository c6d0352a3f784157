/**
 * `pnpm bench:redis-memory`: how much Redis memory hfq's work takes, to size `maxmemory`
 * (README, 'Sizing Redis'). On a Redis of its own, it measures `used_memory` growth for:
 * 1. `--jobs` waiting single jobs (a chat prompt of about `--prompt-bytes`),
 * 2. the same jobs once completed and retained (their results kept until retention removes them),
 * 3. `--items` waiting batch items (feature-extraction, coalesced 32 per child).
 * Prints bytes per job, per completed job and per batch item.
 */
import { parseArgs } from 'node:util';
import { createProducer } from '@hfq/producer';
import { createLogger, type Job } from '@hfq/shared';
import { startSim } from '@hfq/sim';
import { createWorker } from '@hfq/worker';
import { Redis } from 'ioredis';
import { SpawnedRedis } from '../packages/cli/src/local-redis.js';

const { values } = parseArgs({
  options: {
    jobs: { type: 'string', default: '2000' },
    items: { type: 'string', default: '20000' },
    'prompt-bytes': { type: 'string', default: '500' },
  },
});
const JOBS = Number(values.jobs);
const ITEMS = Number(values.items);
const PROMPT = 'p'.repeat(Number(values['prompt-bytes']));
const TOKEN = 'hf_bench_memory_0123456789abcdef';

async function main(): Promise<void> {
  const server = await SpawnedRedis.start();
  const admin = new Redis(server.url);
  const sim = await startSim({ latency: { baseMs: 0, jitterMs: 0, minMs: 1, maxMs: 2, perItemMs: 0 } });
  const used = async () => Number(/^used_memory:(\d+)/m.exec(await admin.info('memory'))?.[1]);
  const producer = createProducer({ connection: server.url, prefix: 'mem' });
  try {
    const chat = (i: number): Job => ({
      account: 'acme',
      task: 'chat-completion',
      model: 'meta-llama/Llama-3.1-8B-Instruct',
      messages: [{ role: 'user', content: `${i} ${PROMPT}` }],
      parameters: { max_tokens: 64 },
    });
    await producer.enqueue(chat(-1)); // queue keys and connection buffers exist before measuring
    const before = await used();
    const handles = [];
    for (let i = 0; i < JOBS; i += 500) {
      handles.push(
        ...(await producer.enqueueMany(
          Array.from({ length: Math.min(500, JOBS - i) }, (_, j) => chat(i + j)),
        )),
      );
    }
    const waiting = await used();
    const worker = await createWorker({
      connection: server.url,
      prefix: 'mem',
      accounts: [{ id: 'acme', tier: 'pro', hfToken: TOKEN, limit: { max: 5000, durationMs: 1000 } }],
      upstream: { routerUrl: sim.routerUrl, hubUrl: sim.hubUrl, providerUrls: { ...sim.providerUrls } },
      concurrency: 32,
      logger: createLogger({ level: 'silent' }),
    });
    await Promise.all(handles.map((h) => h.result({ timeoutMs: 300_000 })));
    await worker.close();
    const completed = await used();
    const beforeBatch = await used();
    const batch = await producer.enqueueBatch({
      account: 'acme',
      task: 'feature-extraction',
      model: 'sentence-transformers/all-MiniLM-L6-v2',
      items: Array.from({ length: ITEMS }, (_, i) => `item ${i} ${'w'.repeat(100)}`),
      coalesce: 32,
    });
    await batch.enqueued();
    const afterBatch = await used();
    const per = (bytes: number, n: number) => Math.round(bytes / n);
    console.log('| what | count | Redis bytes each |');
    console.log('| --- | ---: | ---: |');
    console.log(`| waiting job (prompt ${PROMPT.length} B) | ${JOBS} | ${per(waiting - before, JOBS)} |`);
    console.log(`| completed job, result retained | ${JOBS} | ${per(completed - before, JOBS)} |`);
    console.log(
      `| waiting batch item (coalesce 32, 100 B input) | ${ITEMS} | ${per(afterBatch - beforeBatch, ITEMS)} |`,
    );
  } finally {
    await producer.close();
    await sim.close();
    await admin.quit();
    await server.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
