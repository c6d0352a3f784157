import {
  ACCOUNTS,
  type AccountConfigInput,
  type Connection,
  DEFAULT_PREFIX,
  type RoutingPolicy,
} from '@hfq/shared';
import {
  accountBudgetUsd,
  CreditState,
  checkPrefix,
  checkRedisTarget,
  connectionFor,
  creditScope,
  DomainLimiter,
  describeMemory,
  type GateStatus,
  isRedisOutOfMemory,
  keyScope,
  type LaneId,
  laneQueueName,
  parseOrThrow,
  primaryWindow,
  type RedisMemory,
  ROUTER_LANE,
  readAccountRegistry,
  readPublishedEndpoints,
  readRedisMemory,
  type SpendByRoute,
  TIER_TABLE,
  tierMonthlyCreditsUsd,
  whenReady,
} from '@hfq/shared/internal';
import { Queue } from 'bullmq';
import { holdKey } from './account-hold.js';
import {
  type AccountBatchPlanRow,
  type AccountBatchRow,
  batchSavingUsd,
  readAccountBatchPlanRows,
  readAccountBatchRows,
} from './batch-route/batch-status-rows.js';
import { type AccountForecast, FORECAST_WINDOW_MS, forecast } from './cockpit/forecast.js';
import { type HistoryPoint, readHistory, readRecentThroughput } from './cockpit/history-reader.js';
import { readPublishedAccounts } from './cockpit/published-accounts.js';
import { readHeartbeats, type WorkerHeartbeatInfo } from './cockpit/worker-heartbeat.js';
import { type EndpointStatusView, readEndpointStatus } from './endpoints/endpoint-status-view.js';
import { type LaneStatus, readLaneStatuses } from './lane-status.js';
import {
  type AccountView,
  type LimitChange,
  type OperatorDeps,
  resetCredits,
  resetKeyCredits,
  setLimit,
} from './operator-actions.js';
import { RouteSelection } from './route-selection.js';

/** What `hfq status`, `hfq credits status` and the status page show per account. */
export interface AccountStatus {
  account: string;
  /**
   * Where hfq learned of the account: this process's config, a worker's published description
   * (read-only views need no token), or only its queue (no worker serves it: a mistyped account?).
   */
  source: 'config' | 'published' | 'unconfigured';
  tier: string;
  scope: string;
  /** Jobs by state, summed over the account's lanes. */
  counts: Record<string, number>;
  /** The router lane (the account queue) is paused. */
  paused: boolean;
  holdReason: string | undefined;
  /** Each lane: its backlog, whether it is held and why, its router domain's stated wait. */
  lanes: LaneStatus[];
  /** The limit in force: the configured one, or an operator's override (`hfq limit`). undefined for an unconfigured account. */
  configuredRate: { max: number; durationMs: number } | undefined;
  /** An operator's override of the configured limit, and when it lapses (undefined: permanent). */
  override: { max: number; configuredMax: number; untilMs: number | undefined } | undefined;
  learnedRate: number | undefined;
  /**
   * The noise level the 429 detector learned for the account's router domain (a share of 429s that
   * does not depend on the rate): its share, the sends of evidence behind it now (it decays with
   * a half-life), its age, and whether it is still in force (else 429s are judged against the
   * prior). undefined when none was ever measured. README, "What a 429 means".
   */
  learnedNoise:
    | { share: number; evidenceSends: number; ageMs: number; halfLifeMs: number; inForce: boolean }
    | undefined;
  pausedForMs: number;
  recent429s: number;
  credits: GateStatus;
  /** Each provider key's own gate: refused (401/403, held with the reason) or out of credits. */
  keys: { provider: string; credits: GateStatus }[];
  route: 'hf-router' | 'provider-key' | 'holding';
  spend: SpendByRoute;
  /** undefined for an unconfigured account, or one with no budget (the router's 402 is the signal). */
  budgetUsd: number | undefined;
  /** The tier's included monthly credits (spend past them is pay-as-you-go: `spend.payAsYouGoSinceMs`). */
  includedCreditsUsd: number | undefined;
  providerBudgetUsd: number | undefined;
  /** Redis memory (the same for every account): `usedBytes ≥ maxBytes` means Redis is full and refuses writes. */
  redisMemory: RedisMemory;
  /** The account's Inference Endpoints (configured locally, or published by a worker): state, in flight, learned concurrency, cost so far. */
  endpoints: EndpointStatusView[];
  /** How the account's jobs use its endpoints (where they go when one is paused or failed); undefined without endpoints. */
  routing: RoutingPolicy | undefined;
  /** Live worker processes serving the account. */
  liveWorkers: number;
  /** Active jobs whose worker is gone (no live worker holds their lock): re-delivered when the lock expires. */
  orphanedActive: number;
  forecast: AccountForecast;
  /**
   * The account's provider batches not yet collected (README, "Deadlines and the batch route"):
   * provider, state, jobs, hedge time, deadline. Absent for an account without any.
   */
  batches?: AccountBatchRow[];
  /**
   * The planner's current split per lane and model of the account's deadline jobs: real time
   * against batches, the projected finish against the deadline, the cost against all real time.
   * Present only while a plan is recent.
   */
  batchPlans?: AccountBatchPlanRow[];
  /**
   * Estimated money those batches save against all real time: their jobs at this month's average
   * cost per request on the route in use, less the batch price. Absent while unknown.
   */
  batchSavingUsd?: number;
}

/** What holds an account's jobs back now (see `Admin.runStates`). */
export interface AccountRunState {
  account: string;
  /** The queue is paused: held by hfq (`holdReason`) or by an operator. */
  paused: boolean;
  holdReason: string | undefined;
  /** Each lane: whether it is held (paused) and why, and its router domain's stated wait. */
  lanes?: LaneStatus[];
  /** The router's credit gate (the account's or its organisation's). */
  credits: GateStatus;
  /** Each provider key's own gate. */
  keys: { provider: string; credits: GateStatus }[];
  /** How much longer the router waits for a stated wait (Retry-After and the like), ms. */
  pausedForMs: number;
}

/** A domain's pause for a stated wait, from now (by Redis's clock: see `DomainLimiter.state`). */
function pausedForMs(domain: { pausedForMs: number } | undefined): number {
  return domain?.pausedForMs ?? 0;
}

export interface AdminOptions {
  /** A Redis URL, ioredis options, an ioredis `Redis` or `Cluster` (duplicated), or cluster nodes. */
  connection: Connection;
  prefix?: string;
  /** Accounts configured locally; others are read from what workers published. @defaultValue [] */
  accounts?: AccountConfigInput[];
  now?: () => number;
}

/** The most active jobs inspected per account for a missing worker. */
const ORPHAN_SCAN_LIMIT = 1000;

/** Operator actions and views: status, credits status and reset (the library side of the CLI). */
export class Admin {
  private readonly redis;
  private readonly connection: Connection;
  /** Set once the start-up check passed (see `checkRedisTarget`). */
  private checked: Promise<void> | undefined;
  private readonly credits: CreditState;
  private readonly limiter: DomainLimiter;
  private readonly prefix: string;
  private readonly accounts;
  private readonly now: () => number;
  /** Per account, made on first use and kept: status runs on every scrape and status page. */
  private readonly routes = new Map<string, Promise<RouteSelection>>();
  private readonly queues = new Map<string, Queue>();

  constructor(options: AdminOptions) {
    this.prefix = checkPrefix(options.prefix ?? DEFAULT_PREFIX);
    // No local account is fine here: the read-only views read what workers published.
    this.accounts = options.accounts?.length ? parseOrThrow(ACCOUNTS, options.accounts, 'accounts') : [];
    this.connection = options.connection;
    this.redis = connectionFor(options.connection, 'producer', `${this.prefix}:hfq-admin`);
    this.redis.on('error', () => {});
    this.credits = new CreditState(this.redis, this.prefix);
    this.limiter = new DomainLimiter(this.redis, this.prefix);
    this.now = options.now ?? Date.now;
  }

  /** Every account: configured here, published by a worker, or found in the queue registry. */
  async status(): Promise<AccountStatus[]> {
    await this.ready();
    const nowMs = this.now();
    const redisMemory = await readRedisMemory(this.redis);
    // A full Redis refuses even BullMQ's read scripts: say so rather than pass on a raw EXECABORT.
    const whenFull = (err: unknown): never => {
      if (!isRedisOutOfMemory(err)) throw err;
      throw new Error(
        `Redis is full: ${describeMemory(redisMemory)}; writes (and BullMQ's scripts) are refused until memory is freed or maxmemory raised`,
        { cause: err },
      );
    };
    const [registry, published, heartbeats] = await Promise.all([
      readAccountRegistry(this.redis, this.prefix),
      readPublishedAccounts(this.redis, this.prefix),
      readHeartbeats(this.redis, this.prefix, nowMs),
    ]);
    const live = heartbeats.filter((w) => w.live);
    const liveBullWorkers = new Set(live.flatMap((w) => w.bullWorkerIds));
    const ids = [
      ...new Set([...this.accounts.map((a) => a.id), ...[...published.keys()].sort(), ...registry]),
    ];
    return Promise.all(
      ids.map(async (id): Promise<AccountStatus> => {
        const local = this.accounts.find((a) => a.id === id);
        const view = local ? await this.viewOf(local) : published.get(id);
        const source = local ? 'config' : view ? 'published' : 'unconfigured';
        const scope = view?.scope ?? creditScope({ id });
        const queue = this.queueOf(id);
        // Configured here, else as a worker published them: read-only views show them too.
        const endpointConfigs = local
          ? (local.endpoints ?? [])
          : view
            ? await readPublishedEndpoints(this.redis, this.prefix, id)
            : [];
        const [
          { paused, holdReason, domain, credits, keys },
          routerCounts,
          lanes,
          spend,
          history,
          endpoints,
          batches,
          batchPlans,
        ] = await Promise.all([
          this.readRunState(id, view, nowMs),
          queue.getJobCounts('completed', 'failed'),
          readLaneStatuses(this.laneDeps(), id, view?.routerDomain, true),
          this.credits.spend(scope, nowMs),
          readRecentThroughput(this.redis, this.prefix, id, nowMs, FORECAST_WINDOW_MS),
          Promise.all(endpointConfigs.map((e) => readEndpointStatus(this.redis, this.prefix, id, e))),
          readAccountBatchRows(this.redis, this.prefix, id),
          readAccountBatchPlanRows(this.redis, this.prefix, id, nowMs),
        ]);
        const counts: Record<string, number> = { ...routerCounts };
        for (const lane of lanes) {
          for (const [state, n] of Object.entries(lane.counts ?? {}))
            counts[state] = (counts[state] ?? 0) + n;
        }
        const budgetUsd = view?.budgetUsd;
        const route =
          holdReason !== undefined
            ? 'holding'
            : credits.state === 'ok' && spend.hfRouterUsd < (budgetUsd ?? Number.POSITIVE_INFINITY)
              ? 'hf-router'
              : 'provider-key';
        const backlog =
          (counts.waiting ?? 0) + (counts.prioritized ?? 0) + (counts.delayed ?? 0) + (counts.active ?? 0);
        const accountForecast = forecast({
          history,
          backlog,
          spend,
          // Without a budget, "credits left" are the included credits (then pay-as-you-go).
          budgetUsd: budgetUsd ?? view?.includedCreditsUsd ?? 0,
          route,
          nowMs,
        });
        // Only accounts with batches get the fields: no new noise for the others.
        const saving = batchSavingUsd(batches, accountForecast.costPerRequestUsd);
        const batchFields = {
          ...(batches.length > 0
            ? { batches, ...(saving !== undefined ? { batchSavingUsd: saving } : {}) }
            : {}),
          ...(batchPlans.length > 0 ? { batchPlans } : {}),
        };
        return {
          account: id,
          source,
          tier: view?.tier ?? 'unknown',
          scope,
          counts,
          paused,
          holdReason,
          lanes,
          configuredRate: view?.window && {
            max: domain?.override ?? view.window.max,
            durationMs: view.window.durationMs,
          },
          override:
            domain?.override !== undefined && view?.window
              ? { max: domain.override, configuredMax: view.window.max, untilMs: domain.overrideUntilMs }
              : undefined,
          learnedRate: domain?.rate,
          learnedNoise: domain?.noise,
          pausedForMs: pausedForMs(domain),
          recent429s: domain?.recent429s ?? 0,
          credits,
          keys,
          route,
          spend,
          budgetUsd,
          includedCreditsUsd: view?.includedCreditsUsd,
          providerBudgetUsd: view?.providerBudgetUsd,
          redisMemory,
          endpoints,
          routing: endpoints.length > 0 ? view?.routing : undefined,
          liveWorkers: live.filter((w) => w.accounts.includes(id)).length,
          orphanedActive: await this.orphanedActiveIn(id, lanes, liveBullWorkers),
          forecast: accountForecast,
          ...batchFields,
        };
      }),
    ).catch(whenFull);
  }

  /**
   * What holds each account's jobs back now, for a progress line: paused or held (and why), the
   * credit gates of the router and of each provider key, the router's pause for a stated wait.
   * The same reading as `status`, without counts, spend or history; no scan.
   */
  async runStates(accountIds: readonly string[]): Promise<AccountRunState[]> {
    await this.ready();
    const nowMs = this.now();
    const published = await readPublishedAccounts(this.redis, this.prefix);
    return Promise.all(
      accountIds.map(async (id) => {
        const local = this.accounts.find((a) => a.id === id);
        const view = local ? await this.viewOf(local) : published.get(id);
        const [{ domain, ...state }, lanes] = await Promise.all([
          this.readRunState(id, view, nowMs),
          readLaneStatuses(this.laneDeps(), id, view?.routerDomain, false),
        ]);
        return { account: id, ...state, lanes, pausedForMs: pausedForMs(domain) };
      }),
    );
  }

  /** The part of an account's status that says whether its jobs can move (see `runStates`). */
  private async readRunState(id: string, view: AccountView | undefined, nowMs: number) {
    const queue = this.queueOf(id);
    const [paused, holdReason, domain, credits, keys] = await Promise.all([
      queue.isPaused(),
      this.redis.get(holdKey(this.prefix, id)),
      view?.routerDomain ? this.limiter.state(view.routerDomain) : undefined,
      this.credits.status(view?.scope ?? creditScope({ id }), nowMs),
      Promise.all(
        (view?.keyDomains ?? []).map(async (k) => ({
          provider: k.provider,
          credits: await this.credits.status(keyScope(k.domain), nowMs),
        })),
      ),
    ]);
    return { paused, holdReason: holdReason ?? undefined, domain, credits, keys };
  }

  /** Worker processes that published a heartbeat recently (live) or within its TTL (gone). */
  async workers(): Promise<(WorkerHeartbeatInfo & { live: boolean })[]> {
    await this.ready();
    return readHeartbeats(this.redis, this.prefix, this.now());
  }

  /** The cockpit's history of an account over the last `hours` (10-second buckets). */
  async history(accountId: string, hours = 1): Promise<HistoryPoint[]> {
    await this.ready();
    return readHistory(this.redis, this.prefix, accountId, this.now(), hours);
  }

  /**
   * Active jobs no live worker holds: each active job's lock holds its worker's token, which
   * starts with the BullMQ worker id that the worker's heartbeat lists.
   */
  /** Orphaned active jobs over the lanes with active jobs. */
  private async orphanedActiveIn(
    id: string,
    lanes: readonly LaneStatus[],
    liveBullWorkers: ReadonlySet<string>,
  ): Promise<number> {
    let n = 0;
    for (const lane of lanes) {
      if ((lane.counts?.active ?? 0) > 0)
        n += await this.orphanedActive(this.queueOf(id, lane.lane), liveBullWorkers);
    }
    return n;
  }

  private async orphanedActive(queue: Queue, liveBullWorkers: ReadonlySet<string>): Promise<number> {
    const ids = await this.redis.lrange(queue.keys.active as string, 0, ORPHAN_SCAN_LIMIT - 1);
    const tokens = await Promise.all(ids.map((jobId) => this.redis.get(`${queue.toKey(jobId)}:lock`)));
    return tokens.filter((token) => {
      if (token === null) return true;
      return !liveBullWorkers.has(token.slice(0, token.lastIndexOf(':')));
    }).length;
  }

  private async viewOf(account: (typeof this.accounts)[number]): Promise<AccountView> {
    const routes = await this.routesOf(account);
    const window = primaryWindow(routes.routerDomain.windows) ?? TIER_TABLE[account.tier].inference;
    return {
      tier: account.tier,
      scope: creditScope(account),
      routerDomain: routes.routerDomain.id,
      window: { max: window.max, durationMs: window.durationMs },
      budgetUsd: accountBudgetUsd(account),
      includedCreditsUsd: tierMonthlyCreditsUsd(account.tier, account.seats),
      providerBudgetUsd: account.providerBudgetUsd,
      routing: account.routing ?? 'endpoint-first',
      keyDomains: routes.providerDomains().map((p) => ({ provider: p.provider, domain: p.domain.id })),
    };
  }

  private routesOf(account: (typeof this.accounts)[number]): Promise<RouteSelection> {
    let entry = this.routes.get(account.id);
    if (!entry) {
      entry = RouteSelection.create(account, {});
      this.routes.set(account.id, entry);
    }
    return entry;
  }

  private laneDeps() {
    return {
      redis: this.redis,
      prefix: this.prefix,
      limiter: this.limiter,
      queueOf: (id: string, lane: LaneId) => this.queueOf(id, lane),
    };
  }

  /** The queue of a lane of an account (the router lane by default), made once. */
  private queueOf(accountId: string, lane: LaneId = ROUTER_LANE): Queue {
    const name = laneQueueName(accountId, lane);
    let queue = this.queues.get(name);
    if (!queue) {
      queue = new Queue(name, { connection: this.redis, prefix: this.prefix });
      // Without a listener BullMQ prints each connection error's stack; a failed read rejects instead.
      queue.on('error', () => {});
      this.queues.set(name, queue);
    }
    return queue;
  }

  /** The dependencies of the operator actions (`operator-actions.ts`). */
  private operatorDeps(): OperatorDeps {
    return {
      redis: this.redis,
      prefix: this.prefix,
      accounts: this.accounts,
      credits: this.credits,
      limiter: this.limiter,
      now: this.now,
      queueOf: (id, lane) => this.queueOf(id, lane),
      viewOf: (account) => this.viewOf(account),
    };
  }

  /**
   * Operator's reset after buying credits or fixing a token: opens the account's (or its
   * organisation's) credit gate and its provider keys' gates, and resumes a held queue of every
   * account sharing that credit scope. The account is found here or in what its workers published.
   */
  async resetCredits(accountId: string): Promise<{ scope: string; resumed: boolean }> {
    await this.ready();
    return resetCredits(this.operatorDeps(), accountId);
  }

  /**
   * Operator's reset of one provider key's gate, after topping up its balance or fixing the key:
   * that key's gate opens at once; the router's and the other keys' gates stay as they are. A
   * held queue is resumed (a cause that still holds holds it again). Needs only Redis when a
   * worker published the account (its keys' domains are hashes, never the keys).
   */
  async resetKeyCredits(accountId: string, provider: string): Promise<{ scope: string; resumed: boolean }> {
    await this.ready();
    return resetKeyCredits(this.operatorDeps(), accountId, provider);
  }

  /**
   * Change an account's router request limit (its primary window's `max`) at run time: every
   * worker applies it on its next permit, and the learned rate restarts from it. `undefined`
   * goes back to the configured limit. With `forMs`, the override lapses by itself after that
   * long. The account is found here or in what its workers published (no token needed).
   */
  async setLimit(
    accountId: string,
    max: number | undefined,
    options: { forMs?: number } = {},
  ): Promise<LimitChange> {
    await this.ready();
    return setLimit(this.operatorDeps(), accountId, max, options);
  }

  /** Ready, and the start-up check passed once (a cluster that is not whole is named, not waited on). */
  private async ready(): Promise<void> {
    this.checked ??= checkRedisTarget(this.redis, this.connection, 5_000).catch((err) => {
      this.checked = undefined;
      throw err;
    });
    await this.checked;
    await whenReady(this.redis);
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()));
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}

export function createAdmin(options: AdminOptions): Admin {
  return new Admin(options);
}
