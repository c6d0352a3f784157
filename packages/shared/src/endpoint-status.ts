import type { Redis } from 'ioredis';
import { endpointKeys } from './endpoint-semaphore.js';

/**
 * What hfq knows of an Inference Endpoint's availability, shared by every worker: `cold` while
 * a replica starts (one waking request at a time), `paused` or `failed` (routed around or held,
 * with the reason), else `ok` (no key). Written by the worker from the endpoint's answers and its
 * management API; read by the slot script (acquire-endpoint-slot.lua) and by status.
 */

export type EndpointAvailability = 'ok' | 'cold' | 'paused' | 'failed';

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
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private keys(accountId: string, name: string) {
    return endpointKeys(this.prefix, accountId, name);
  }

  /** A replica is starting: admit one waking request at a time until it answers. */
  async markCold(accountId: string, name: string, reason: string, nowMs: number): Promise<void> {
    const { status } = this.keys(accountId, name);
    const current = await this.redis.hget(status, 'state');
    if (current === 'cold') return;
    await this.redis
      .multi()
      .hset(status, 'state', 'cold', 'reason', reason, 'until', 0, 'since', nowMs)
      .pexpire(status, STATUS_TTL_MS)
      .exec();
  }

  /** Paused or failed: admit nothing until `untilMs` (Redis ms; 0 = until cleared). */
  async markUnavailable(
    accountId: string,
    name: string,
    state: 'paused' | 'failed',
    reason: string,
    untilMs: number,
    nowMs: number,
  ): Promise<void> {
    const { status, waker } = this.keys(accountId, name);
    await this.redis
      .multi()
      .hset(status, 'state', state, 'reason', reason, 'until', untilMs, 'since', nowMs)
      .pexpire(status, STATUS_TTL_MS)
      .del(waker)
      .exec();
  }

  /** The endpoint answered: every worker may use it again. */
  async markOk(accountId: string, name: string): Promise<void> {
    const { status, waker } = this.keys(accountId, name);
    await this.redis.del(status, waker);
  }

  async read(accountId: string, name: string): Promise<EndpointStatus> {
    const fields = await this.redis.hmget(
      this.keys(accountId, name).status,
      'state',
      'reason',
      'until',
      'since',
    );
    const state = (fields[0] ?? 'ok') as EndpointAvailability;
    return {
      state,
      reason: fields[1] ?? undefined,
      untilMs: Number(fields[2] ?? 0),
      since: fields[3] == null ? undefined : Number(fields[3]),
    };
  }
}
