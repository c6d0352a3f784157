import {
  ACCOUNTS,
  type AccountConfigInput,
  accountBudgetUsd,
  accountQueueName,
  type ConnectionInput,
  CreditState,
  createProducerConnection,
  creditScope,
  DEFAULT_PREFIX,
  DomainLimiter,
  describeMemory,
  type GateStatus,
  isRedisOutOfMemory,
  keyScope,
  parseOrThrow,
  primaryWindow,
  type RedisMemory,
  readRedisMemory,
  type SpendByRoute,
  TIER_TABLE,
  whenReady,
} from '@hfq/shared';
import { Queue } from 'bullmq';
import { holdKey, releaseHold } from './account-hold.js';
import { queueStartLimit } from './endpoint-queue-limit.js';
import { type EndpointStatusView, readEndpointStatus } from './endpoint-status-view.js';
import { RouteSelection } from './route-selection.js';

/** What `hfq status`, `hfq credits status` and the status page show per account. */
export interface AccountStatus {
  account: string;
  tier: string;
  scope: string;
  counts: Record<string, number>;
  paused: boolean;
  holdReason: string | undefined;
  configuredRate: { max: number; durationMs: number };
  learnedRate: number | undefined;
  pausedForMs: number;
  recent429s: number;
  credits: GateStatus;
  /** Each provider key's own gate: refused (401/403, held with the reason) or out of credits. */
  keys: { provider: string; credits: GateStatus }[];
  route: 'hf-router' | 'provider-key' | 'holding';
  spend: SpendByRoute;
  budgetUsd: number;
  providerBudgetUsd: number | undefined;
  /** Redis memory (the same for every account): `usedBytes ≥ maxBytes` means Redis is full and refuses writes. */
  redisMemory: RedisMemory;
  /** The account's Inference Endpoints: state, in flight, learned concurrency, cost so far. */
  endpoints: EndpointStatusView[];
}

export interface AdminOptions {
  connection: ConnectionInput;
  prefix?: string;
  accounts: AccountConfigInput[];
  now?: () => number;
}

/** Operator actions and views: status, credits status and reset (the library side of the CLI). */
export class Admin {
  private readonly redis;
  private readonly credits: CreditState;
  private readonly limiter: DomainLimiter;
  private readonly prefix: string;
  private readonly accounts;
  private readonly now: () => number;
  /** Per account, made on first use and kept: status runs on every scrape and status page. */
  private readonly perAccount = new Map<string, Promise<{ queue: Queue; routes: RouteSelection }>>();

  constructor(options: AdminOptions) {
    this.prefix = options.prefix ?? DEFAULT_PREFIX;
    this.accounts = parseOrThrow(ACCOUNTS, options.accounts, 'accounts');
    this.redis = createProducerConnection(options.connection, `${this.prefix}:hfq-admin`);
    this.redis.on('error', () => {});
    this.credits = new CreditState(this.redis, this.prefix);
    this.limiter = new DomainLimiter(this.redis, this.prefix);
    this.now = options.now ?? Date.now;
  }

  async status(): Promise<AccountStatus[]> {
    await whenReady(this.redis);
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
    return Promise.all(
      this.accounts.map(async (account) => {
        const { queue, routes } = await this.of(account);
        const scope = creditScope(account);
        const [counts, paused, holdReason, domain, credits, spend, endpoints] = await Promise.all([
          queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed'),
          queue.isPaused(),
          this.redis.get(holdKey(this.prefix, account.id)),
          this.limiter.state(routes.routerDomain.id),
          this.credits.status(scope, nowMs),
          this.credits.spend(scope, nowMs),
          Promise.all(
            (account.endpoints ?? []).map((e) => readEndpointStatus(this.redis, this.prefix, account.id, e)),
          ),
        ]);
        const keys = await Promise.all(
          routes.providerDomains().map(async (p) => ({
            provider: p.provider,
            credits: await this.credits.status(keyScope(p.domain.id), nowMs),
          })),
        );
        const primary = primaryWindow(routes.routerDomain.windows) ?? TIER_TABLE[account.tier].inference;
        const budgetUsd = accountBudgetUsd(account);
        const route =
          holdReason !== null
            ? 'holding'
            : credits.state === 'ok' && spend.hfRouterUsd < budgetUsd
              ? 'hf-router'
              : 'provider-key';
        return {
          account: account.id,
          tier: account.tier,
          scope,
          counts,
          paused,
          holdReason: holdReason ?? undefined,
          configuredRate: { max: domain.override ?? primary.max, durationMs: primary.durationMs },
          learnedRate: domain.rate,
          pausedForMs: Math.max(0, domain.pausedUntil - Date.now()),
          recent429s: domain.recent429s,
          credits,
          keys,
          route,
          spend,
          budgetUsd,
          providerBudgetUsd: account.providerBudgetUsd,
          redisMemory,
          endpoints,
        } satisfies AccountStatus;
      }),
    ).catch(whenFull);
  }

  private of(account: (typeof this.accounts)[number]) {
    let entry = this.perAccount.get(account.id);
    if (!entry) {
      entry = RouteSelection.create(account, {}).then((routes) => ({
        routes,
        queue: new Queue(accountQueueName(account.id), { connection: this.redis, prefix: this.prefix }),
      }));
      this.perAccount.set(account.id, entry);
    }
    return entry;
  }

  /**
   * Operator's reset after buying credits or fixing a token: opens the account's (or its
   * organisation's) credit gate and its provider keys' gates, and resumes a held queue.
   */
  async resetCredits(accountId: string): Promise<{ scope: string; resumed: boolean }> {
    const account = this.accounts.find((a) => a.id === accountId);
    if (!account) throw new Error(`unknown account "${accountId}"`);
    await whenReady(this.redis);
    const scope = creditScope(account);
    await this.credits.reset(scope);
    const { routes } = await this.of(account);
    for (const provider of routes.providerDomains()) await this.credits.reset(keyScope(provider.domain.id));
    let resumed = false;
    for (const other of this.accounts.filter((a) => creditScope(a) === scope)) {
      const { queue } = await this.of(other);
      if (await releaseHold({ redis: this.redis, prefix: this.prefix, queue, accountId: other.id }))
        resumed = true;
    }
    return { scope, resumed };
  }

  /**
   * Change an account's router request limit (its primary window's `max`) at run time: every
   * worker applies it on its next permit, and the learned rate restarts from it. `undefined`
   * goes back to the configured limit.
   */
  async setLimit(accountId: string, max: number | undefined): Promise<{ max: number; durationMs: number }> {
    const account = this.accounts.find((a) => a.id === accountId);
    if (!account) throw new Error(`unknown account "${accountId}"`);
    if (max !== undefined && !(Number.isInteger(max) && max >= 1))
      throw new Error(`limit must be a whole number ≥ 1, got ${max}`);
    await whenReady(this.redis);
    const { routes, queue } = await this.of(account);
    const primary = primaryWindow(routes.routerDomain.windows);
    if (!primary) throw new Error(`account "${accountId}" has no request window to change`);
    await this.limiter.setOverride(routes.routerDomain.id, max);
    // BullMQ's coarse limiter must not hold jobs back below a raised limit.
    await queue.setGlobalRateLimit(
      queueStartLimit(account, max ?? primary.max, primary.durationMs),
      primary.durationMs,
    );
    return { max: max ?? primary.max, durationMs: primary.durationMs };
  }

  async close(): Promise<void> {
    const entries = await Promise.allSettled(this.perAccount.values());
    await Promise.all(entries.map((e) => (e.status === 'fulfilled' ? e.value.queue.close() : undefined)));
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}

export function createAdmin(options: AdminOptions): Admin {
  return new Admin(options);
}
