import type { ChainableCommander } from 'ioredis';
import { endpointKeys } from './endpoint-semaphore.js';
import { hashTag, stateKey } from './queue-names.js';
import type { RedisClient } from './redis-cluster.js';
import { luaScript } from './redis-script.js';

/**
 * The backlog of an Inference Endpoint: the jobs of its account that it serves, not the whole
 * account queue (see docs/architecture.md, "Dedicated capacity"). Its lifecycle scales it to zero
 * or pauses it when this has been empty for the idle time, and resumes it when it is not.
 *
 * - Workers publish each account's endpoints (`…:endpoints:{account}`: name, models, task,
 *   concurrency, price; no URL, no token), so that producers, which need no account config,
 *   know which jobs an endpoint serves, and read-only views can show them.
 * - The producer appends the key of each job an endpoint serves to that endpoint's backlog index
 *   (`…:endpoint:{account}:<name>:backlog`) right after adding it: one round trip per enqueue
 *   call with such jobs, none for other jobs.
 * - The lifecycle prunes the index (prune-endpoint-backlog.lua): finished or removed jobs drop
 *   out, jobs still waiting stay. Nothing scans the queue.
 * - A job the index missed (added before any worker published, or by a producer whose copy of the
 *   endpoints was stale) is seen when a worker finds its endpoint unavailable: it leaves a demand
 *   mark (`…:demand`, expiring), which counts as backlog too.
 */

const PRUNE = luaScript('prune-endpoint-backlog');

/** What a worker publishes of an endpoint: what it serves, and what status shows. */
export interface PublishedEndpoint {
  name: string;
  models: string[];
  task?: string | undefined;
  concurrency: number;
  hourlyUsd?: number | undefined;
}

/** Published endpoints and backlog indexes outlive a stopped deployment by this much. */
export const ENDPOINT_BACKLOG_TTL_MS = 35 * 24 * 3_600_000;

/** Entries the lifecycle looks at per script call (a few ms of Redis time at most). */
const PRUNE_BATCH = 5_000;

export function publishedEndpointsKey(prefix: string, accountId: string): string {
  // The account's tag: read beside its queue's keys.
  return stateKey(prefix, 'endpoints', hashTag(accountId));
}

/** Whether an endpoint serves a job: its model, and its task when the endpoint names one. */
export function endpointServes(
  endpoint: Pick<PublishedEndpoint, 'models' | 'task'>,
  job: { model: string; task: string },
): boolean {
  return endpoint.models.includes(job.model) && (!endpoint.task || endpoint.task === job.task);
}

/** The endpoint a job goes to: the first of the account's that serves it (as the worker routes). */
export function endpointFor<E extends Pick<PublishedEndpoint, 'models' | 'task'>>(
  endpoints: readonly E[],
  job: { model: string; task: string },
): E | undefined {
  return endpoints.find((e) => endpointServes(e, job));
}

/** Written by a worker at start: the account's endpoints, or none (removed from its config). */
export async function publishEndpoints(
  redis: RedisClient,
  prefix: string,
  accountId: string,
  endpoints: readonly PublishedEndpoint[],
): Promise<void> {
  const key = publishedEndpointsKey(prefix, accountId);
  if (endpoints.length === 0) {
    await redis.del(key);
    return;
  }
  const list = endpoints.map((e) => ({
    name: e.name,
    models: e.models,
    ...(e.task ? { task: e.task } : {}),
    concurrency: e.concurrency,
    ...(e.hourlyUsd === undefined ? {} : { hourlyUsd: e.hourlyUsd }),
  }));
  await redis.set(key, JSON.stringify(list), 'PX', ENDPOINT_BACKLOG_TTL_MS);
}

export async function readPublishedEndpoints(
  redis: Pick<RedisClient, 'get'>,
  prefix: string,
  accountId: string,
): Promise<PublishedEndpoint[]> {
  const raw = await redis.get(publishedEndpointsKey(prefix, accountId));
  if (!raw) return [];
  try {
    const list = JSON.parse(raw) as unknown;
    return Array.isArray(list) ? (list as PublishedEndpoint[]) : [];
  } catch {
    // Not ours, or from another version: no endpoint known.
    return [];
  }
}

/** Queue on a pipeline (or transaction) the appends of job keys to their endpoints' backlog indexes. */
export function appendToBacklogs(
  multi: ChainableCommander,
  prefix: string,
  accountId: string,
  byEndpoint: ReadonlyMap<string, string[]>,
): void {
  for (const [name, jobKeys] of byEndpoint) {
    if (jobKeys.length === 0) continue;
    const { backlog } = endpointKeys(prefix, accountId, name);
    multi.rpush(backlog, ...jobKeys).pexpire(backlog, ENDPOINT_BACKLOG_TTL_MS);
  }
}

export interface EndpointBacklog {
  /** Whether any job the endpoint serves still waits (or runs), or a worker left a demand mark. */
  waiting: boolean;
  /** Jobs in the index after pruning (an upper bound of the jobs still waiting for it). */
  jobs: number;
  /** Whether a demand mark is set (a job the index missed found the endpoint unavailable). */
  demand: boolean;
}

/** Read and prune an endpoint's backlog (the lifecycle, once per check, one process of all). */
export async function readEndpointBacklog(
  redis: RedisClient,
  prefix: string,
  accountId: string,
  name: string,
  maxCalls = 20,
): Promise<EndpointBacklog> {
  const keys = endpointKeys(prefix, accountId, name);
  let waitingSeen = 0;
  let jobs = 0;
  // Entries not looked at yet in this check (jobs added meanwhile are left for the next).
  let remaining: number | undefined;
  for (let call = 0; call < maxCalls && (remaining === undefined || remaining > 0); call++) {
    const [waiting = 0, seen = 0, after = 0] = await PRUNE.run<number[]>(
      redis,
      [keys.backlog],
      [PRUNE_BATCH],
    );
    waitingSeen += waiting;
    jobs = after;
    remaining = (remaining ?? after + seen - waiting) - seen;
    // A batch in which every job still waits: the rest most likely waits too; prune next time.
    if (seen === 0 || waiting === seen) break;
  }
  const demand = (await redis.exists(keys.demand)) === 1;
  // Entries not looked at count as waiting: unknown is not idle.
  return { waiting: waitingSeen > 0 || (remaining ?? 0) > 0 || demand, jobs, demand };
}

/** A job the endpoint serves found it unavailable: count as backlog for `ttlMs`. */
export async function markEndpointDemand(
  redis: RedisClient,
  prefix: string,
  accountId: string,
  name: string,
  ttlMs: number,
): Promise<void> {
  await redis.set(endpointKeys(prefix, accountId, name).demand, '1', 'PX', Math.max(1, Math.round(ttlMs)));
}
