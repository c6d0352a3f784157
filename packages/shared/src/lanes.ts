import { endpointFor, type PublishedEndpoint } from './endpoint-backlog.js';
import { accountQueueName, hashTag, stateKey } from './queue-names.js';

/**
 * Lanes: the unit of waiting is the route, so each route of an account has its own BullMQ queue
 * (see docs/architecture.md, "Every route its own lane"). The lane of a job is chosen at enqueue:
 *
 * - `endpoint.<name>`: an Inference Endpoint of the account serves the job (from the table workers
 *   publish); the policy may still spill it to the router inside the run;
 * - `router.<provider>`: an explicit provider behind the HF router (its own limits and
 *   `Retry-After` pass through the router);
 * - `router`: provider `auto` or none. This lane's queue is the account queue `account-{<id>}`,
 *   so jobs of the layout before lanes need no migration.
 *
 * Every lane queue carries the account's hash tag: a batch's children (any lane) and its parent
 * (`batch-{<id>}`), and hfq's per-account scripts, stay in one Redis Cluster slot.
 */

/** A lane id: `router`, `router.<provider>` or `endpoint.<name>` (names are `[a-z0-9-]`). */
export type LaneId = string;

export const ROUTER_LANE: LaneId = 'router';

const LANE_ID = /^(router|router\.[a-z0-9][a-z0-9-]*|endpoint\.[a-z0-9][a-z0-9-]*)$/;

export function isLaneId(value: string): value is LaneId {
  return LANE_ID.test(value);
}

/** The lane of a job: its endpoint's, else its explicit provider's, else the router's. */
export function laneOf(
  job: { model: string; task: string; provider?: string | undefined },
  endpoints: readonly Pick<PublishedEndpoint, 'name' | 'models' | 'task'>[],
): LaneId {
  const endpoint = endpointFor(endpoints, job);
  if (endpoint) return `endpoint.${endpoint.name}`;
  if (job.provider && job.provider !== 'auto') return `router.${job.provider}`;
  return ROUTER_LANE;
}

/** The endpoint a lane is for, if it is an endpoint lane. */
export function laneEndpoint(lane: LaneId): string | undefined {
  return lane.startsWith('endpoint.') ? lane.slice('endpoint.'.length) : undefined;
}

/** The explicit provider a lane is for, if it is a provider lane behind the router. */
export function laneProvider(lane: LaneId): string | undefined {
  return lane.startsWith('router.') ? lane.slice('router.'.length) : undefined;
}

/** The BullMQ queue of one lane: the account queue for `router`, else `account-{<id>}.<lane>`. */
export function laneQueueName(accountId: string, lane: LaneId): string {
  return lane === ROUTER_LANE ? accountQueueName(accountId) : `${accountQueueName(accountId)}.${lane}`;
}

/**
 * The lane registry of an account: a hash lane → the last time (ms) a producer added to it,
 * written at most once per `LANE_RECORD_MS` per lane and producer. Workers read it on their
 * supervisor round to start a lane's BullMQ worker; status and the board list its lanes. Tagged
 * with the account, so a producer writes it in the same transaction as the jobs.
 */
export function laneRegistryKey(prefix: string, accountId: string): string {
  return stateKey(prefix, 'lanes', hashTag(accountId));
}

/** The lane registry outlives its last write by this much (retention of finished jobs is shorter). */
export const LANE_REGISTRY_TTL_MS = 35 * 24 * 3_600_000;

/** A producer rewrites a lane's time in the registry at most this often. */
export const LANE_RECORD_MS = 10_000;

type Multi = {
  hset(key: string, values: Record<string, string | number>): unknown;
  pexpire(key: string, ms: number): unknown;
};

/** Queue on a transaction or pipeline the registry write of `lanes` at `nowMs`. */
export function recordLanes(
  multi: Multi,
  prefix: string,
  accountId: string,
  lanes: Iterable<LaneId>,
  nowMs: number,
): void {
  const key = laneRegistryKey(prefix, accountId);
  const values: Record<string, number> = {};
  for (const lane of lanes) values[lane] = nowMs;
  if (Object.keys(values).length === 0) return;
  // The object form: BullMQ's client wrapper (a queue's transaction) takes no field/value pairs.
  multi.hset(key, values);
  multi.pexpire(key, LANE_REGISTRY_TTL_MS);
}

/**
 * The Pub/Sub channel on which a producer announces a lane it records (`<account>\n<lane>`), so
 * that a worker starts the lane at once instead of on its next supervisor round. A channel, not
 * a key: on a Redis Cluster a publish reaches every node.
 */
export function lanesChannel(prefix: string): string {
  return stateKey(prefix, 'lanes-announced');
}

export function laneAnnouncement(accountId: string, lane: LaneId): string {
  return `${accountId}\n${lane}`;
}

export function parseLaneAnnouncement(message: string): { accountId: string; lane: LaneId } | undefined {
  const at = message.indexOf('\n');
  if (at <= 0) return undefined;
  const lane = message.slice(at + 1);
  return isLaneId(lane) ? { accountId: message.slice(0, at), lane } : undefined;
}

/** The lanes of an account with their last enqueue time (ms), the router lane always among them. */
export async function readLanes(
  redis: { hgetall(key: string): Promise<Record<string, string>> },
  prefix: string,
  accountId: string,
): Promise<Map<LaneId, number>> {
  const raw = await redis.hgetall(laneRegistryKey(prefix, accountId));
  const lanes = new Map<LaneId, number>([[ROUTER_LANE, 0]]);
  for (const [lane, at] of Object.entries(raw)) {
    if (isLaneId(lane)) lanes.set(lane, Number(at) || 0);
  }
  return lanes;
}
