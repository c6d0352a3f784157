import type { Logger } from '@hfq/shared';
import {
  ENDPOINT_BACKLOG_TTL_MS,
  endpointKeys,
  publishedEndpointsKey,
  type RedisClient,
  readEndpointBacklog,
  redisTimeMs,
} from '@hfq/shared/internal';
import type { WorkerEvents } from '../worker-events.js';
import { EndpointManagement, type ManagedState } from './endpoint-management.js';
import type { AccountEndpoint } from './endpoint-slots.js';

/**
 * An Inference Endpoint's lifecycle, driven by its backlog: the account's jobs that it serves,
 * not the account's whole queue (see docs/architecture.md, "Dedicated capacity", and
 * @hfq/shared endpoint-backlog.ts). Every `checkMs`, one worker process of all (a lock in Redis)
 * reads the endpoint's state from the management API and shares it (paused, failed, cold, up),
 * resumes a paused or scaled-to-zero endpoint when jobs for it wait (`autoResume`), and scales it
 * to zero or pauses it once its backlog has been empty for `idleScaleToZeroMs` / `idlePauseMs`.
 * It also keeps the endpoint's cost so far: replica time seen running, at `hourlyUsd`.
 *
 * The lifecycle hash (`…:lifecycle`: state, billedMs, lastAt, idleSince, lastAction) is written
 * here only; it carries a TTL refreshed on every check. Its times are Redis's clock, since the
 * checks of every worker take turns on it; the marks it shares are durations that the status
 * script turns into Redis times (see docs/architecture.md, 'Redis time').
 */

const LIFECYCLE_TTL_MS = 35 * 24 * 3_600_000;
/** States billed by the hour (a replica exists or is starting). */
const BILLED = new Set(['running', 'initializing', 'updating', 'pending']);
const COLD = new Set(['scaledToZero', 'initializing', 'pending', 'updating']);

export interface LifecycleOptions {
  redis: RedisClient;
  prefix: string;
  hfToken: string;
  endpointsApiUrl: string | undefined;
  checkMs: number;
  logger: Logger;
  events: WorkerEvents;
}

export class EndpointLifecycle {
  private readonly timer: NodeJS.Timeout;
  private readonly management: EndpointManagement;
  private running: Promise<void> | undefined;

  constructor(
    private readonly endpoints: AccountEndpoint[],
    private readonly options: LifecycleOptions,
  ) {
    this.management = new EndpointManagement(options.hfToken, options.endpointsApiUrl);
    this.timer = setInterval(() => {
      this.running ??= this.checkAll().finally(() => {
        this.running = undefined;
      });
    }, options.checkMs);
    this.timer.unref();
  }

  /** Check every endpoint once (each under its lock, so one process of all does it per interval). */
  async checkAll(): Promise<void> {
    for (const endpoint of this.endpoints) {
      await this.check(endpoint).catch((err: Error) =>
        this.options.logger.warn(
          { account: endpoint.accountId, endpoint: endpoint.name, err: err.message },
          'endpoint check failed',
        ),
      );
    }
  }

  private async check(endpoint: AccountEndpoint): Promise<void> {
    const { redis, prefix, checkMs } = this.options;
    const keys = endpointKeys(prefix, endpoint.accountId, endpoint.name);
    const locked = await redis.set(keys.lock, '1', 'PX', Math.max(50, checkMs - 50), 'NX');
    if (locked !== 'OK') return;
    const nowMs = await redisTimeMs(redis);
    const managed = endpoint.config.management;
    const state = managed
      ? await this.management.state(managed.namespace, managed.name)
      : await this.observedState(endpoint);
    if (managed) await this.share(endpoint, state, nowMs);

    // Only the jobs this endpoint serves: the account's other jobs never go to it.
    const demand = await readEndpointBacklog(redis, prefix, endpoint.accountId, endpoint.name);
    const busy = demand.waiting;
    const backlog = demand.jobs;
    const why =
      demand.jobs > 0 ? `backlog of ${demand.jobs} jobs for it` : 'a job for it found it unavailable';
    const previous = await redis.hmget(keys.lifecycle, 'state', 'lastAt', 'billedMs', 'idleSince');
    const lastAt = Number(previous[1] ?? nowMs);
    const billedMs =
      Number(previous[2] ?? 0) + (BILLED.has(previous[0] ?? '') ? Math.max(0, nowMs - lastAt) : 0);
    let idleSince = busy ? 0 : Number(previous[3] ?? 0) || nowMs;

    let current = state;
    if (managed) {
      const config = endpoint.config;
      const idleMs = idleSince ? nowMs - idleSince : 0;
      if (busy && config.autoResume && (state === 'paused' || state === 'scaledToZero')) {
        current = await this.act(endpoint, 'resume', why, nowMs);
      } else if (!busy && config.idlePauseMs && idleMs >= config.idlePauseMs && state !== 'paused') {
        current = await this.act(endpoint, 'pause', `backlog empty for ${idleMs} ms`, nowMs);
        idleSince = nowMs;
      } else if (
        !busy &&
        config.idleScaleToZeroMs &&
        idleMs >= config.idleScaleToZeroMs &&
        state === 'running'
      ) {
        current = await this.act(endpoint, 'scale-to-zero', `backlog empty for ${idleMs} ms`, nowMs);
        idleSince = nowMs;
      }
    }
    await redis
      .multi()
      .hset(
        keys.lifecycle,
        'state',
        current,
        'lastAt',
        nowMs,
        'billedMs',
        billedMs,
        'idleSince',
        idleSince,
        'backlog',
        backlog,
      )
      .pexpire(keys.lifecycle, LIFECYCLE_TTL_MS)
      // What producers index the endpoint's jobs by lives as long as a worker serves the account.
      .pexpire(publishedEndpointsKey(prefix, endpoint.accountId), ENDPOINT_BACKLOG_TTL_MS)
      .exec();
  }

  /** Without management access, the state as hfq's own requests found it. */
  private async observedState(endpoint: AccountEndpoint): Promise<ManagedState> {
    const status = await endpoint.status.read(endpoint.accountId, endpoint.name);
    if (status.state === 'ok') return 'running';
    if (status.state === 'cold') return status.reason ? 'initializing' : 'unknown';
    return status.state;
  }

  /** Share what the management API says, for every worker's slot script. */
  private async share(endpoint: AccountEndpoint, state: ManagedState, nowMs: number): Promise<void> {
    // Until the next checks say otherwise: a duration, made a Redis time by the status script.
    const forMs = 3 * this.options.checkMs;
    if (state === 'running') {
      const current = await endpoint.status.read(endpoint.accountId, endpoint.name);
      if (current.state !== 'ok') await endpoint.noteAnswered(true, nowMs);
    } else if (state === 'paused') {
      await endpoint.noteUnavailable('paused', 'paused (management API)', forMs);
    } else if (state === 'failed' || state === 'updateFailed') {
      await endpoint.noteUnavailable('failed', `${state} (management API)`, forMs);
    } else if (COLD.has(state)) {
      await endpoint.noteCold(`${state} (management API)`, nowMs);
    }
  }

  private async act(
    endpoint: AccountEndpoint,
    action: 'resume' | 'pause' | 'scale-to-zero',
    why: string,
    nowMs: number,
  ): Promise<ManagedState> {
    const managed = endpoint.config.management;
    if (!managed) throw new Error('no management access');
    const state = await this.management.act(managed.namespace, managed.name, action);
    const log = { account: endpoint.accountId, endpoint: endpoint.name, reason: why, state };
    this.options.logger.info(log, `endpoint ${action}`);
    this.options.events.emit('endpoint', {
      account: endpoint.accountId,
      endpoint: endpoint.name,
      event: action === 'resume' ? 'resumed' : action === 'pause' ? 'paused' : 'scaled-to-zero',
      reason: why,
    });
    await this.options.redis.hset(
      endpointKeys(this.options.prefix, endpoint.accountId, endpoint.name).lifecycle,
      'lastAction',
      `${action} at ${new Date(nowMs).toISOString()}: ${why}`,
    );
    await this.share(
      endpoint,
      action === 'pause' ? 'paused' : COLD.has(state) ? state : 'initializing',
      nowMs,
    );
    return state;
  }

  close(): void {
    clearInterval(this.timer);
  }

  /** Wait for a check under way (graceful close). */
  async idle(): Promise<void> {
    await this.running;
  }
}
