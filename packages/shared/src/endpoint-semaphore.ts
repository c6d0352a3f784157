import { randomUUID } from 'node:crypto';
import { hashTag, stateKey } from './queue-names.js';
import type { RedisClient } from './redis-cluster.js';
import { luaScript } from './redis-script.js';

/**
 * The concurrency limit of an Inference Endpoint, shared by every worker process: at most N
 * requests in flight, N learned down on the endpoint's 429s once per episode and recovering one
 * slot per quiet interval (see docs/architecture.md, "Dedicated capacity"). Slots are leases that
 * expire, so a killed worker's slots come back. The atomic parts are the Lua scripts beside this
 * file; see their headers for the contract.
 */

const ACQUIRE = luaScript('acquire-endpoint-slot');
const RELEASE = luaScript('release-endpoint-slot');
const RENEW = luaScript('renew-endpoint-lease');
const THROTTLE = luaScript('record-endpoint-throttle');

/** An endpoint as the semaphore knows it: its account, its name and its configured concurrency. */
export interface EndpointRef {
  accountId: string;
  name: string;
  concurrency: number;
}

export interface SemaphoreOptions {
  /** A slot's lease; renewed while its request runs. @defaultValue 30000 */
  leaseMs?: number;
  /** After a cut, one slot comes back per this much time without another. @defaultValue 30000 */
  recoverMs?: number;
  /** TTL of the learned limit, refreshed on each write. @defaultValue 7 days */
  limitTtlMs?: number;
}

export type SlotResult =
  | { kind: 'admitted'; lease: string; admittedAt: number; inFlight: number; limit: number; waker: boolean }
  | { kind: 'full'; inFlight: number; limit: number }
  | { kind: 'waking'; inFlight: number; limit: number }
  | { kind: 'unavailable'; state: 'paused' | 'failed'; reason: string };

export interface SemaphoreState {
  inFlight: number;
  /** The effective limit: the learned concurrency, at most the configured one. */
  limit: number;
  /** Concurrency cuts (429 episodes) so far. */
  episodes: number;
}

/** Redis keys of one endpoint's state, all under one prefix per endpoint. */
export function endpointKeys(prefix: string, accountId: string, name: string) {
  // Tagged with the account: an endpoint's keys live beside its account's queues.
  const base = stateKey(prefix, 'endpoint', hashTag(accountId), name);
  return {
    slots: `${base}:slots`,
    limit: `${base}:limit`,
    status: `${base}:status`,
    waker: `${base}:waker`,
    lifecycle: `${base}:lifecycle`,
    lock: `${base}:lock`,
    backlog: `${base}:backlog`,
    demand: `${base}:demand`,
  };
}

export class EndpointSemaphore {
  readonly options: Required<SemaphoreOptions>;

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    options: SemaphoreOptions = {},
  ) {
    this.options = {
      leaseMs: 30_000,
      recoverMs: 30_000,
      limitTtlMs: 7 * 24 * 3_600_000,
      ...options,
    };
  }

  keys(ref: Pick<EndpointRef, 'accountId' | 'name'>) {
    return endpointKeys(this.prefix, ref.accountId, ref.name);
  }

  /** Try to take a slot now; never waits. The waker role, if taken, lapses with the lease. */
  async tryAcquire(ref: EndpointRef): Promise<SlotResult> {
    const keys = this.keys(ref);
    const lease = randomUUID();
    const reply = await ACQUIRE.run<(string | number)[]>(
      this.redis,
      [keys.slots, keys.limit, keys.status, keys.waker],
      [
        lease,
        this.options.leaseMs,
        ref.concurrency,
        this.options.recoverMs,
        this.options.limitTtlMs,
        this.options.leaseMs,
      ],
    );
    const code = Number(reply[0]);
    if (code === 1) {
      return {
        kind: 'admitted',
        lease,
        inFlight: Number(reply[1]),
        limit: Number(reply[2]),
        admittedAt: Number(reply[3]),
        waker: Number(reply[4]) === 1,
      };
    }
    if (code === 2) {
      return {
        kind: 'unavailable',
        state: String(reply[1]) as 'paused' | 'failed',
        reason: String(reply[2]),
      };
    }
    return { kind: code === 3 ? 'waking' : 'full', inFlight: Number(reply[1]), limit: Number(reply[2]) };
  }

  /** Give a slot back. Returns false if its lease had already lapsed. */
  async release(ref: EndpointRef, lease: string): Promise<boolean> {
    return (await RELEASE.run<number>(this.redis, [this.keys(ref).slots], [lease])) === 1;
  }

  /** Extend a running request's lease. Returns false if it had lapsed. */
  async renew(ref: EndpointRef, lease: string): Promise<boolean> {
    const keys = this.keys(ref);
    const renewed = await RENEW.run<number>(
      this.redis,
      [keys.slots, keys.waker],
      [lease, this.options.leaseMs],
    );
    return renewed === 1;
  }

  /** The endpoint answered 429: lower the learned concurrency once per episode. */
  async recordThrottle(
    ref: EndpointRef,
    admittedAt: number,
  ): Promise<{ newEpisode: boolean; limit: number; episodes: number }> {
    const keys = this.keys(ref);
    const reply = await THROTTLE.run<number[]>(
      this.redis,
      [keys.slots, keys.limit],
      [admittedAt, ref.concurrency, this.options.limitTtlMs],
    );
    return { newEpisode: Number(reply[0]) === 1, limit: Number(reply[1]), episodes: Number(reply[2]) };
  }

  /** In-flight count, effective limit and cut count, for status and metrics. */
  async state(ref: EndpointRef): Promise<SemaphoreState> {
    const keys = this.keys(ref);
    const now = Date.now();
    const [[, inFlight], [, fields]] = (await this.redis
      .multi()
      .zcount(keys.slots, now, '+inf')
      .hmget(keys.limit, 'learned', 'episodes')
      .exec()) as [[unknown, number], [unknown, (string | null)[]]];
    const learned = fields[0] == null ? ref.concurrency : Math.min(ref.concurrency, Number(fields[0]));
    return { inFlight, limit: learned, episodes: Number(fields[1] ?? 0) };
  }
}
