import type { AccountConfig, RoutingPolicy } from '@hfq/shared';
import {
  type CreditState,
  creditScope,
  type DomainLimiter,
  keyScope,
  type LaneId,
  type OverrideOutcome,
  type RedisClient,
  readLanes,
  readPublishedEndpoints,
} from '@hfq/shared/internal';
import type { Queue } from 'bullmq';
import { holdKey, releaseHold } from './account-hold.js';
import { readPublishedAccounts } from './cockpit/published-accounts.js';
import { queueStartLimit } from './endpoints/endpoint-queue-limit.js';

/**
 * The operator's actions on one account (`hfq limit`, `hfq credits reset`; `Admin` calls them).
 * The account is the one configured in this process, else as its workers published it, so the
 * commands need only REDIS_URL and HFQ_PREFIX, no token.
 */

/** An account as the admin views and actions need it: from the local config or from what a worker published. */
export interface AccountView {
  tier: string;
  scope: string;
  routerDomain: string | undefined;
  window: { max: number; durationMs: number } | undefined;
  budgetUsd: number | undefined;
  includedCreditsUsd?: number | undefined;
  providerBudgetUsd: number | undefined;
  routing?: RoutingPolicy | undefined;
  keyDomains?: { provider: string; domain: string }[];
}

export interface OperatorDeps {
  redis: RedisClient;
  prefix: string;
  accounts: readonly AccountConfig[];
  credits: CreditState;
  limiter: DomainLimiter;
  now: () => number;
  queueOf: (accountId: string, lane?: LaneId) => Queue;
  viewOf: (account: AccountConfig) => Promise<AccountView>;
}

/** What `setLimit` set: the limit in force, the configured one it replaces, and when an override lapses. */
export interface LimitChange {
  max: number;
  durationMs: number;
  configuredMax: number;
  untilMs: number | undefined;
  /** What the change did to what the workers had learned (a running Retry-After pause is kept). */
  learned: OverrideOutcome;
}

/** The account's view and its endpoints' slots; an `UnknownAccountError` naming the known ones. */
async function operatorView(
  deps: OperatorDeps,
  accountId: string,
): Promise<{ view: AccountView; endpointSlots: number }> {
  const local = deps.accounts.find((a) => a.id === accountId);
  if (local) {
    const slots = (local.endpoints ?? []).reduce((n, e) => n + e.concurrency, 0);
    return { view: await deps.viewOf(local), endpointSlots: slots };
  }
  const published = await readPublishedAccounts(deps.redis, deps.prefix);
  const view = published.get(accountId);
  if (!view) {
    const known = [...new Set([...deps.accounts.map((a) => a.id), ...published.keys()])].sort();
    const err = new Error(
      `unknown account "${accountId}": no worker under prefix "${deps.prefix}" has published it and it is not configured here (known: ${known.join(', ') || 'none'})`,
    );
    err.name = 'UnknownAccountError';
    throw err;
  }
  const endpoints = await readPublishedEndpoints(deps.redis, deps.prefix, accountId);
  return { view, endpointSlots: endpoints.reduce((n, e) => n + e.concurrency, 0) };
}

/**
 * Run `reset`, then lift the hold of every held lane of the accounts: resumed when any lane was
 * held just before the reset or is lifted here. A worker's supervisor may lift a hold in between
 * (it sees the gate open once the reset is written), and the reset still resumed it. The lanes are
 * read once, before the reset.
 */
async function resetAndRelease(
  deps: OperatorDeps,
  accountIds: Iterable<string>,
  reset: () => Promise<void>,
): Promise<boolean> {
  const lanes: { accountId: string; lane: LaneId }[] = [];
  for (const accountId of accountIds) {
    for (const lane of (await readLanes(deps.redis, deps.prefix, accountId)).keys())
      lanes.push({ accountId, lane });
  }
  let resumed = false;
  for (const { accountId, lane } of lanes) {
    if ((await deps.redis.exists(holdKey(deps.prefix, accountId, lane))) === 1) {
      resumed = true;
      break;
    }
  }
  await reset();
  for (const { accountId, lane } of lanes) {
    const queue = deps.queueOf(accountId, lane);
    if (await releaseHold({ redis: deps.redis, prefix: deps.prefix, queue, accountId, lane })) resumed = true;
  }
  return resumed;
}

/** See `Admin.resetCredits`. */
export async function resetCredits(
  deps: OperatorDeps,
  accountId: string,
): Promise<{ scope: string; resumed: boolean }> {
  const { view } = await operatorView(deps, accountId);
  const scope = view.scope;
  const published = await readPublishedAccounts(deps.redis, deps.prefix);
  const sharing = new Set([
    accountId,
    ...deps.accounts.filter((a) => creditScope(a) === scope).map((a) => a.id),
    ...[...published.values()].filter((a) => a.scope === scope).map((a) => a.id),
  ]);
  const resumed = await resetAndRelease(deps, sharing, async () => {
    await deps.credits.reset(scope);
    for (const key of view.keyDomains ?? []) await deps.credits.reset(keyScope(key.domain));
  });
  return { scope, resumed };
}

/** See `Admin.resetKeyCredits`. */
export async function resetKeyCredits(
  deps: OperatorDeps,
  accountId: string,
  provider: string,
): Promise<{ scope: string; resumed: boolean }> {
  const { view } = await operatorView(deps, accountId);
  const keys = view.keyDomains ?? [];
  const key = keys.find((k) => k.provider === provider);
  if (!key) {
    const known = keys.map((k) => k.provider).join(', ') || 'none';
    throw new Error(`account "${accountId}" has no provider key "${provider}" (its keys: ${known})`);
  }
  const scope = keyScope(key.domain);
  return { scope, resumed: await resetAndRelease(deps, [accountId], () => deps.credits.reset(scope)) };
}

/** See `Admin.setLimit`. */
export async function setLimit(
  deps: OperatorDeps,
  accountId: string,
  max: number | undefined,
  options: { forMs?: number } = {},
): Promise<LimitChange> {
  if (max !== undefined && !(Number.isInteger(max) && max >= 1))
    throw new Error(`limit must be a whole number ≥ 1, got ${max}`);
  const { forMs } = options;
  if (forMs !== undefined && !(Number.isInteger(forMs) && forMs >= 1_000))
    throw new Error(`an override lasts at least 1 s, got ${forMs} ms`);
  const { view, endpointSlots } = await operatorView(deps, accountId);
  const primary = view.window;
  if (!primary || !view.routerDomain)
    throw new Error(`account "${accountId}" has no request window to change`);
  const lapses = max !== undefined && forMs !== undefined;
  const learned = await deps.limiter.setOverride(view.routerDomain, {
    limit: max,
    ...(lapses ? { forMs } : {}),
  });
  // BullMQ's coarse limiter must not hold jobs back below a raised limit, nor stay below the
  // configured one once an override lapses: the domain limiter is what enforces a lower one. A
  // queue that never waited carries none (lane-queue-limit.ts), and gets none here.
  const queue = deps.queueOf(accountId);
  if ((await queue.getGlobalRateLimit()) !== null) {
    await queue.setGlobalRateLimit(
      queueStartLimit(
        { endpoints: [{ concurrency: endpointSlots }] },
        Math.max(max ?? primary.max, primary.max),
        primary.durationMs,
      ),
      primary.durationMs,
    );
  }
  return {
    max: max ?? primary.max,
    durationMs: primary.durationMs,
    configuredMax: primary.max,
    untilMs: lapses ? deps.now() + (forMs as number) : undefined,
    learned,
  };
}
