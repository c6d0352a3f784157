import {
  checkRedisTarget,
  connectionFor,
  laneQueueName,
  type RedisClient,
  readAccountRegistry,
  readLanes,
} from '@hfq/shared/internal';
import { Queue } from 'bullmq';
import { UsageError } from '../usage.js';
import { readOnlyConfig } from './read-only-config.js';

/**
 * An account's queues for an operator command (`hfq queue`, `hfq retry`), one per lane (see
 * docs/architecture.md, "Every route its own lane"; the router lane first): needs only REDIS_URL
 * and HFQ_PREFIX.
 */
export interface AccountQueue {
  queues: Queue[];
  redis: RedisClient;
  prefix: string;
  close(): Promise<void>;
}

/** The queue of `account`, or a `UsageError` naming the accounts there are when it has none. */
export async function openAccountQueue(
  env: NodeJS.ProcessEnv,
  account: string,
  usage: string,
): Promise<AccountQueue> {
  const config = readOnlyConfig(env);
  const redis = connectionFor(config.connection, 'producer', `${config.prefix}:hfq-cli`);
  redis.on('error', () => {});
  const close = async () => {
    await redis.quit().catch(() => redis.disconnect());
  };
  try {
    await checkRedisTarget(redis, config.connection, 5_000);
    const known = await readAccountRegistry(redis, config.prefix);
    if (!known.includes(account)) {
      throw new UsageError(
        `unknown account "${account}": no queue under prefix "${config.prefix}" (accounts with a queue: ${known.join(', ') || 'none'})`,
        usage,
      );
    }
  } catch (err) {
    await close();
    throw err;
  }
  const lanes = await readLanes(redis, config.prefix, account).catch(async (err: unknown) => {
    await close();
    throw err;
  });
  const queues = [...lanes.keys()].map((lane) => {
    const queue = new Queue(laneQueueName(account, lane), { connection: redis, prefix: config.prefix });
    // Its errors are the connection's; a failed call rejects and `main` prints one line.
    queue.on('error', () => {});
    return queue;
  });
  return {
    queues,
    redis,
    prefix: config.prefix,
    close: async () => {
      await Promise.all(queues.map((q) => q.close()));
      await close();
    },
  };
}
