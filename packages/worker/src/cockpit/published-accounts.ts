import type { RoutingPolicy } from '@hfq/shared';
import { REGISTRY_TAG, stateKey } from '@hfq/shared/internal';
import type { Cluster, Redis } from 'ioredis';

/**
 * What a worker tells the read-only views about each account it serves, so that `hfq status`,
 * `hfq credits status` and `hfq board` need only REDIS_URL and HFQ_PREFIX: the tier, the credit
 * scope, the router domain (a hash of the token, never the token), the configured window and the
 * budgets. One hash for the prefix, field = account id; its TTL is refreshed on every write.
 */
export interface PublishedAccount {
  id: string;
  tier: string;
  scope: string;
  routerDomain: string;
  window: { max: number; durationMs: number } | undefined;
  /** Absent: no budget, the router's 402 is the signal (older workers always published one). */
  budgetUsd: number | undefined;
  /** The tier's included monthly credits (absent from older workers). */
  includedCreditsUsd?: number;
  providerBudgetUsd: number | undefined;
  /** How the account's jobs use its Inference Endpoints; absent without endpoints. */
  routing?: RoutingPolicy;
  /** Each provider key's rate-limit domain (a hash of the key), for its credit gate. Absent from older workers. */
  keyDomains?: { provider: string; domain: string }[];
  publishedAtMs: number;
}

/** Lifetime of the published accounts, refreshed on every write. */
export const PUBLISHED_ACCOUNTS_TTL_SECONDS = 30 * 24 * 3600;

export function publishedAccountsKey(prefix: string): string {
  return stateKey(prefix, REGISTRY_TAG, 'account-config');
}

export async function publishAccounts(
  redis: Redis | Cluster,
  prefix: string,
  accounts: PublishedAccount[],
): Promise<void> {
  if (accounts.length === 0) return;
  const key = publishedAccountsKey(prefix);
  const fields = accounts.flatMap((a) => [a.id, JSON.stringify(a)]);
  await redis
    .multi()
    .hset(key, ...fields)
    .expire(key, PUBLISHED_ACCOUNTS_TTL_SECONDS)
    .exec();
}

export async function readPublishedAccounts(
  redis: Pick<Redis | Cluster, 'hgetall'>,
  prefix: string,
): Promise<Map<string, PublishedAccount>> {
  const raw = await redis.hgetall(publishedAccountsKey(prefix));
  const out = new Map<string, PublishedAccount>();
  for (const [id, json] of Object.entries(raw)) {
    try {
      out.set(id, JSON.parse(json) as PublishedAccount);
    } catch {
      // A field that is not ours (or half-written by an older version): not shown.
    }
  }
  return out;
}
