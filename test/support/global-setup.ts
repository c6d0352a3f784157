import type { TestProject } from 'vitest/node';
import { startLocalRedis } from '../../packages/cli/src/local-redis.js';

/**
 * One Redis for the whole run, chosen like the demo's: REDIS_URL, else testcontainers when a
 * Docker engine answers, else a redis-server spawned from PATH. Each test uses its own prefix.
 */
export default async function setup(project: TestProject) {
  const redis = await startLocalRedis();
  project.provide('redisUrl', redis.url);
  return async () => {
    await redis.stop();
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}
