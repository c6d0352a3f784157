import type { RoutingPolicy } from '@hfq/shared';
import {
  EndpointSemaphore,
  EndpointStatusStore,
  endpointKeys,
  type PublishedEndpoint,
  type RedisClient,
} from '@hfq/shared/internal';

/** What status shows of one Inference Endpoint (see docs/architecture.md, "Dedicated capacity"). */
export interface EndpointStatusView {
  name: string;
  /** The management API's state when hfq has access, else what hfq's requests found (`unknown` before any). */
  state: string;
  /** Whether jobs may use it: `ok`, `cold` (one waking request at a time), `paused`, `failed`. */
  availability: string;
  /** Why it is cold, paused or failed. */
  reason: string | undefined;
  inFlight: number;
  /** Learned concurrency (at most `concurrency`), lowered by the endpoint's 429s. */
  limit: number;
  concurrency: number;
  /** Concurrency cuts so far (one per 429 episode). */
  episodes: number;
  /** Jobs for it (the account's jobs it serves) at the lifecycle's last check; undefined before one. */
  backlog: number | undefined;
  /** Replica time seen running, at `hourlyUsd`; undefined without a price. */
  costUsd: number | undefined;
  /** The last resume, pause or scale-to-zero hfq made, and why. */
  lastAction: string | undefined;
}

/**
 * What an endpoint's availability means for its jobs, as status and the status page say it: `ok`;
 * `cold` (one waking request at a time, the rest wait); `paused`/`failed` with where its jobs go
 * under the account's routing policy.
 */
export function endpointAvailabilityText(
  view: Pick<EndpointStatusView, 'availability'>,
  routing: RoutingPolicy | undefined,
): string {
  if (view.availability === 'ok') return 'ok';
  if (view.availability === 'cold') return 'cold: one waking request at a time';
  const where =
    routing === 'endpoint-only'
      ? 'its jobs are held'
      : routing
        ? 'its jobs go to the router'
        : 'its jobs go around it or are held';
  return `${view.availability}: ${where}`;
}

export async function readEndpointStatus(
  redis: RedisClient,
  prefix: string,
  accountId: string,
  /** The endpoint's config, or what a worker published of it (read-only views). */
  config: Pick<PublishedEndpoint, 'name' | 'concurrency' | 'hourlyUsd'>,
): Promise<EndpointStatusView> {
  const ref = { accountId, name: config.name, concurrency: config.concurrency };
  const [slots, status, lifecycle] = await Promise.all([
    new EndpointSemaphore(redis, prefix).state(ref),
    new EndpointStatusStore(redis, prefix).read(accountId, config.name),
    redis.hmget(
      endpointKeys(prefix, accountId, config.name).lifecycle,
      'state',
      'billedMs',
      'lastAction',
      'backlog',
    ),
  ]);
  const billedMs = Number(lifecycle[1] ?? 0);
  return {
    name: config.name,
    state: lifecycle[0] ?? 'unknown',
    availability: status.state,
    reason: status.reason,
    inFlight: slots.inFlight,
    limit: slots.limit,
    concurrency: config.concurrency,
    episodes: slots.episodes,
    backlog: lifecycle[3] == null ? undefined : Number(lifecycle[3]),
    costUsd: config.hourlyUsd === undefined ? undefined : (billedMs / 3_600_000) * config.hourlyUsd,
    lastAction: lifecycle[2] ?? undefined,
  };
}
