import {
  appendToBacklogs,
  endpointFor,
  type PublishedEndpoint,
  type RedisClient,
  readPublishedEndpoints,
} from '@hfq/shared/internal';

/**
 * The producer's side of an Inference Endpoint's backlog (see @hfq/shared endpoint-backlog.ts):
 * after adding jobs, the keys of those an endpoint serves go to that endpoint's backlog index, so
 * its lifecycle counts them and not the account's other jobs. The account's endpoints are read
 * from what workers published, kept for `refreshMs`; an account without endpoints costs one read
 * per `refreshMs` and nothing per job.
 */

/** How long a copy of an account's published endpoints is used before it is read again. */
const REFRESH_MS = 5_000;

export interface AddedJob {
  task: string;
  model: string;
  /** The job's Redis key (`queue.toKey(id)`). */
  key: string;
}

export class EndpointIndex {
  private readonly cache = new Map<string, { at: number; value: Promise<PublishedEndpoint[]> }>();

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    private readonly refreshMs = REFRESH_MS,
  ) {}

  /** Append the jobs an endpoint of `accountId` serves to its backlog index (one round trip). */
  async record(accountId: string, jobs: readonly AddedJob[]): Promise<void> {
    const endpoints = await this.endpointsOf(accountId);
    if (endpoints.length === 0) return;
    const byEndpoint = new Map<string, string[]>();
    for (const job of jobs) {
      const endpoint = endpointFor(endpoints, job);
      if (!endpoint) continue;
      const keys = byEndpoint.get(endpoint.name) ?? [];
      keys.push(job.key);
      byEndpoint.set(endpoint.name, keys);
    }
    if (byEndpoint.size === 0) return;
    // A pipeline, not a transaction: each append stands alone (the jobs are in already).
    const pipeline = this.redis.pipeline();
    appendToBacklogs(pipeline, this.prefix, accountId, byEndpoint);
    const replies = await pipeline.exec();
    const failed = replies?.find(([err]) => err);
    if (failed?.[0]) throw failed[0];
  }

  /** The endpoints workers published for an account (a copy at most `refreshMs` old; none if the read fails). */
  endpointsOf(accountId: string): Promise<PublishedEndpoint[]> {
    const now = Date.now();
    const cached = this.cache.get(accountId);
    if (cached && now - cached.at < this.refreshMs) return cached.value;
    const value = readPublishedEndpoints(this.redis, this.prefix, accountId);
    this.cache.set(accountId, { at: now, value });
    // A failed read is not kept: the next call reads again.
    value.catch(() => this.cache.delete(accountId));
    return value;
  }
}
