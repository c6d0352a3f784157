import { endpointKeys } from './endpoint-semaphore.js';
import type { RedisClient } from './redis-cluster.js';
import { luaScript } from './redis-script.js';

const MARK_UNAVAILABLE = luaScript('mark-endpoint-unavailable');

/**
 * What hfq knows of an Inference Endpoint's availability, shared by every worker: `ok` (it
 * answered lately; the mark expires, since an idle endpoint may scale to zero), `cold` (a replica
 * starts, or nothing is known: one waking request at a time), `paused` or `failed` (routed around
 * or held, with the reason). Written by the worker from the endpoint's answers and its management
 * API; read by the slot script (acquire-endpoint-slot.lua) and by status.
 */

export type EndpointAvailability = 'ok' | 'cold' | 'paused' | 'failed';

/** An `ok` mark lasts this long after the last answer: then one request probes again first. */
export const ENDPOINT_OK_TTL_MS = 60_000;

export interface EndpointStatus {
  state: EndpointAvailability;
  reason: string | undefined;
  /** When a `paused`/`failed` mark lapses and the endpoint is tried again (ms; 0 = until cleared). */
  untilMs: number;
  since: number | undefined;
}

/** The status hash outlives no incident by much: each write refreshes this TTL. */
const STATUS_TTL_MS = 24 * 3_600_000;

export class EndpointStatusStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
  ) {}

  private keys(accountId: string, name: string) {
    return endpointKeys(this.prefix, accountId, name);
  }

  /** A replica is starting: admit one waking request at a time until it answers. Returns whether it was news. */
  async markCold(accountId: string, name: string, reason: string, nowMs: number): Promise<boolean> {
    const { status } = this.keys(accountId, name);
    const current = await this.redis.hget(status, 'state');
    if (current === 'cold') return false;
    await this.redis
      .multi()
      .hset(status, 'state', 'cold', 'reason', reason, 'until', 0, 'since', nowMs)
      .pexpire(status, STATUS_TTL_MS)
      .exec();
    return true;
  }

  /**
   * Paused or failed: admit nothing for `forMs` (0 = until cleared), counted on Redis's clock by
   * the script, never the caller's (see docs/architecture.md, 'Redis time'). Returns when the
   * mark ends, in Redis ms (0 = until cleared).
   */
  async markUnavailable(
    accountId: string,
    name: string,
    state: 'paused' | 'failed',
    reason: string,
    forMs: number,
  ): Promise<number> {
    const { status, waker } = this.keys(accountId, name);
    const untilMs = await MARK_UNAVAILABLE.run<number>(
      this.redis,
      [status, waker],
      [state, reason, Math.max(0, Math.round(forMs)), STATUS_TTL_MS],
    );
    return Number(untilMs);
  }

  /** The endpoint answered: every worker may use it, up to its limit, for the next while. */
  async markOk(accountId: string, name: string, nowMs: number): Promise<void> {
    const { status, waker } = this.keys(accountId, name);
    await this.redis
      .multi()
      .del(status)
      .hset(status, 'state', 'ok', 'since', nowMs)
      .pexpire(status, ENDPOINT_OK_TTL_MS)
      .del(waker)
      .exec();
  }

  /**
   * A waking request was answered 503: let the next waker go at once (`keepMs` 0, after a held
   * request), or only after `keepMs` (plain requests, so probes stay one per interval).
   */
  async afterColdAnswer(accountId: string, name: string, keepMs: number): Promise<void> {
    const { waker } = this.keys(accountId, name);
    if (keepMs > 0) await this.redis.pexpire(waker, keepMs);
    else await this.redis.del(waker);
  }

  async read(accountId: string, name: string): Promise<EndpointStatus> {
    const fields = await this.redis.hmget(
      this.keys(accountId, name).status,
      'state',
      'reason',
      'until',
      'since',
    );
    // No status: nothing known lately (see ENDPOINT_OK_TTL_MS); the slot script treats it as cold.
    const state = (fields[0] ?? 'cold') as EndpointAvailability;
    return {
      state,
      reason: fields[1] ?? undefined,
      untilMs: Number(fields[2] ?? 0),
      since: fields[3] == null ? undefined : Number(fields[3]),
    };
  }
}
