import {
  accountQueueName,
  checkRedisTarget,
  connectionFor,
  type RedisClient,
  readAccountRegistry,
} from '@hfq/shared/internal';
import { Queue } from 'bullmq';
import { UsageError } from '../usage.js';
import { readOnlyConfig } from './read-only-config.js';

/** An account's queue for an operator command (`hfq queue`, `hfq retry`): needs only REDIS_URL and HFQ_PREFIX. */
export interface AccountQueue {
  queue: Queue;
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
  const queue = new Queue(accountQueueName(account), { connection: redis, prefix: config.prefix });
  // Its errors are the connection's; a failed call rejects and `main` prints one line.
  queue.on('error', () => {});
  return {
    queue,
    redis,
    prefix: config.prefix,
    close: async () => {
      await queue.close();
      await close();
    },
  };
}
