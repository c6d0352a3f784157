/**
 * One in-process hfq worker against a simulator, with a producer and a plain Redis connection on
 * the same Redis and prefix: the set-up of benchmarks that drive one account (bench:reuse,
 * bench:deadline). The caller closes all three.
 */
import { createProducer, type Producer } from '@hfq/producer';
import { type AccountConfigInput, createLogger } from '@hfq/shared';
import type { startSim } from '@hfq/sim';
import { createWorker } from '@hfq/worker';
import { Redis } from 'ioredis';

export interface InProcessWorker {
  worker: Awaited<ReturnType<typeof createWorker>>;
  producer: Producer;
  redis: Redis;
}

export async function startInProcessWorker(input: {
  redisUrl: string;
  prefix: string;
  account: AccountConfigInput;
  sim: Awaited<ReturnType<typeof startSim>>;
  concurrency: number;
  name: string;
}): Promise<InProcessWorker> {
  const { redisUrl, prefix, account, sim, concurrency, name } = input;
  const worker = await createWorker({
    connection: redisUrl,
    prefix,
    accounts: [account],
    upstream: { routerUrl: sim.routerUrl, hubUrl: sim.hubUrl, providerUrls: { ...sim.providerUrls } },
    concurrency,
    logger: createLogger({ name, level: 'warn' }),
  });
  return { worker, producer: createProducer({ connection: redisUrl, prefix }), redis: new Redis(redisUrl) };
}
