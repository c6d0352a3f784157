import type { Logger } from '@hfq/shared';
import {
  lanesChannel,
  parseLaneAnnouncement,
  type RedisClient,
  type RedisErrorLog,
} from '@hfq/shared/internal';
import type { AccountRuntime } from './account-runtime.js';

/**
 * A lane a producer records for the first time in a while is announced on a Pub/Sub channel
 * (lanes.ts): the worker starts it at once, instead of on its next supervisor round. One
 * subscriber connection per worker process, whatever the number of accounts and lanes; a missed
 * announcement costs only the wait for that round.
 */
export async function listenForLanes(options: {
  redis: RedisClient;
  prefix: string;
  runtimes: ReadonlyMap<string, AccountRuntime>;
  logger: Logger;
  redisErrors: RedisErrorLog;
}): Promise<{ close(): Promise<void> }> {
  const subscriber = options.redis.duplicate();
  options.redisErrors.watch(subscriber, 'lane-announcements');
  subscriber.on('message', (_channel: string, message: string) => {
    const announced = parseLaneAnnouncement(message);
    if (!announced) return;
    const runtime = options.runtimes.get(announced.accountId);
    runtime
      ?.startAnnouncedLane(announced.lane)
      .catch((err: Error) =>
        options.logger.warn(
          { account: announced.accountId, lane: announced.lane, err: err.message },
          'announced lane did not start; the supervisor round tries again',
        ),
      );
  });
  await subscriber.subscribe(lanesChannel(options.prefix));
  return {
    async close() {
      await subscriber.quit().catch(() => subscriber.disconnect());
    },
  };
}
