import type { AccountConfig } from '@hfq/shared';
import {
  accountBudgetUsd,
  creditScope,
  primaryWindow,
  type RedisClient,
  recordAccountQueue,
  TIER_TABLE,
  tierMonthlyCreditsUsd,
} from '@hfq/shared/internal';
import type { AccountRuntime } from '../account-runtime.js';
import { type PublishedAccount, publishAccounts } from './published-accounts.js';
import {
  newWorkerId,
  pruneHeartbeats,
  removeHeartbeat,
  WORKER_VERSION,
  writeHeartbeat,
} from './worker-heartbeat.js';

/**
 * A worker process's presence for the cockpit: a heartbeat every `intervalMs`, and (at start,
 * then every minute) its accounts' descriptions and their queues in the registry. Stops with a
 * last write removing its heartbeat, so a graceful stop is not mistaken for a dead worker.
 */
export interface WorkerPresenceOptions {
  redis: RedisClient;
  prefix: string;
  runtimes: ReadonlyMap<string, AccountRuntime>;
  concurrency: number;
  now: () => number;
  /** @defaultValue 5000 */
  intervalMs?: number;
}

const PUBLISH_EVERY_MS = 60_000;

export function describeAccount(
  account: AccountConfig,
  runtime: AccountRuntime,
  nowMs: number,
): PublishedAccount {
  const window = primaryWindow(runtime.routes.routerDomain.windows) ?? TIER_TABLE[account.tier].inference;
  return {
    id: account.id,
    tier: account.tier,
    scope: creditScope(account),
    routerDomain: runtime.routes.routerDomain.id,
    window: { max: window.max, durationMs: window.durationMs },
    budgetUsd: accountBudgetUsd(account),
    includedCreditsUsd: tierMonthlyCreditsUsd(account.tier, account.seats),
    providerBudgetUsd: account.providerBudgetUsd,
    ...(account.endpoints?.length ? { routing: account.routing ?? 'endpoint-first' } : {}),
    keyDomains: runtime.routes.providerDomains().map((p) => ({ provider: p.provider, domain: p.domain.id })),
    publishedAtMs: nowMs,
  };
}

export class WorkerPresence {
  readonly id = newWorkerId();
  private readonly startedAtMs: number;
  private readonly timer: NodeJS.Timeout;
  private publishedAtMs = 0;
  private beating: Promise<void> = Promise.resolve();

  private constructor(private readonly options: WorkerPresenceOptions) {
    this.startedAtMs = options.now();
    this.timer = setInterval(() => void this.beat(), options.intervalMs ?? 5_000);
    this.timer.unref();
  }

  /** Publishes at once (a worker is listed from its first second), then on every interval. */
  static async start(options: WorkerPresenceOptions): Promise<WorkerPresence> {
    const presence = new WorkerPresence(options);
    await presence.beat();
    return presence;
  }

  beat(): Promise<void> {
    this.beating = this.beating.then(() => this.write().catch(() => {}));
    return this.beating;
  }

  private async write(): Promise<void> {
    const { redis, prefix, runtimes } = this.options;
    const nowMs = this.options.now();
    const list = [...runtimes.values()];
    await writeHeartbeat(redis, prefix, {
      id: this.id,
      host: this.id.split(':')[0] ?? '',
      pid: process.pid,
      version: WORKER_VERSION,
      startedAtMs: this.startedAtMs,
      seenAtMs: nowMs,
      intervalMs: this.options.intervalMs ?? 5_000,
      concurrency: this.options.concurrency,
      inFlight: list.reduce((n, r) => n + r.inFlight, 0),
      accounts: list.map((r) => r.account.id),
      bullWorkerIds: list.map((r) => r.worker.id),
    });
    if (nowMs - this.publishedAtMs >= PUBLISH_EVERY_MS) {
      await publishAccounts(
        redis,
        prefix,
        list.map((r) => describeAccount(r.account, r, nowMs)),
      );
      await recordAccountQueue(
        redis,
        prefix,
        list.map((r) => r.account.id),
      );
      await pruneHeartbeats(redis, prefix, nowMs);
      this.publishedAtMs = nowMs;
    }
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.beating;
    await removeHeartbeat(this.options.redis, this.options.prefix, this.id).catch(() => {});
  }
}
