import type { AccountConfig, Logger } from '@hfq/shared';
import {
  accountHoldKey,
  accountQueueName,
  batchQueueName,
  creditGateKey,
  creditScope,
  domainStateKey,
  keyScope,
  ledgerMonth,
  type RedisClient,
  spendLedgerKey,
} from '@hfq/shared/internal';
import { Queue } from 'bullmq';
import type { RouteSelection } from './route-selection.js';

/**
 * Moving from the key layout without hash tags (see docs/redis-cluster.md, 'Migrating'). Queues
 * are drained, not moved: BullMQ jobs cannot change queues without breaking their handles, ids and
 * flow parents, so a worker refuses to start while an old queue of its accounts holds unfinished
 * jobs. hfq's own state (learned rates and operator overrides, credit gates, this month's ledger,
 * holds) is copied to its tagged key once, with its TTL, and the old key removed.
 */

export class LegacyLayoutError extends Error {
  readonly code = 'HFQ_LEGACY_LAYOUT';
  constructor(message: string) {
    super(message);
    this.name = 'LegacyLayoutError';
  }
}

/** Old names, as the layout without tags wrote them. */
const legacy = {
  accountQueue: (id: string) => `account-${id}`,
  batchQueue: (id: string) => `batch-${id}`,
  state: (prefix: string, ...parts: string[]) => [prefix, 'hfq', ...parts].join(':'),
};

const OVERRIDE_SUFFIX = ':override';
const UNFINISHED = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children'] as const;

/** Pairs of (old key, new key) of hfq's own state for one account and its domains. */
function statePairs(
  prefix: string,
  account: AccountConfig,
  routes: RouteSelection,
  nowMs: number,
): [string, string][] {
  const scope = creditScope(account);
  const month = ledgerMonth(nowMs);
  const pairs: [string, string][] = [
    [legacy.state(prefix, 'credits', scope), creditGateKey(prefix, scope)],
    [legacy.state(prefix, 'spend', scope, month), spendLedgerKey(prefix, scope, month)],
    [legacy.state(prefix, 'hold', account.id), accountHoldKey(prefix, account.id)],
  ];
  for (const domain of [routes.routerDomain, ...routes.providerDomains().map((p) => p.domain)]) {
    pairs.push([legacy.state(prefix, 'domain', domain.id), domainStateKey(prefix, domain.id)]);
    // The operator's `hfq limit` override: permanent, so it must not be left behind.
    pairs.push([
      `${legacy.state(prefix, 'domain', domain.id)}${OVERRIDE_SUFFIX}`,
      `${domainStateKey(prefix, domain.id)}${OVERRIDE_SUFFIX}`,
    ]);
  }
  for (const provider of routes.providerDomains()) {
    const key = keyScope(provider.domain.id);
    pairs.push([legacy.state(prefix, 'credits', key), creditGateKey(prefix, key)]);
  }
  return pairs;
}

/**
 * Unfinished jobs of one old queue; 0 when the queue does not exist. Only a queue that exists is
 * counted (a multi-key script): on a cluster that is one whose prefix has a tag, the only way the
 * old layout ever ran there.
 */
async function unfinishedJobs(redis: RedisClient, prefix: string, name: string): Promise<number> {
  // One key per EXISTS: the old names carry no tag, so two of them are two slots on a cluster.
  const exists = await Promise.all([
    redis.exists(`${prefix}:${name}:meta`),
    redis.exists(`${prefix}:${name}:id`),
  ]);
  if (exists.every((n) => n === 0)) return 0;
  const queue = new Queue(name, { connection: redis, prefix });
  queue.on('error', () => {});
  try {
    const counts = await queue.getJobCounts(...UNFINISHED);
    return Object.values(counts).reduce((a, b) => a + b, 0);
  } finally {
    await queue.close();
  }
}

/** Copy `from` to `to` with its TTL and delete `from`; a second copier finds `to` taken and only deletes. */
async function moveKey(redis: RedisClient, from: string, to: string): Promise<boolean> {
  const dump = await redis.dumpBuffer(from);
  if (dump === null) return false;
  const pttl = await redis.pttl(from);
  try {
    await redis.restore(to, Math.max(pttl, 0), dump);
  } catch (err) {
    if (!/BUSYKEY/.test((err as Error).message)) throw err;
  }
  await redis.del(from);
  return true;
}

/**
 * Refuses to start while an old queue of `accounts` holds unfinished jobs; then moves their old
 * state keys to the tagged layout. Idempotent: a second run finds nothing to do.
 */
export async function migrateLegacyLayout(options: {
  redis: RedisClient;
  prefix: string;
  accounts: { account: AccountConfig; routes: RouteSelection }[];
  nowMs: number;
  logger: Logger;
}): Promise<void> {
  const { redis, prefix, logger } = options;
  const blocked: string[] = [];
  for (const { account } of options.accounts) {
    for (const [oldName, newName] of [
      [legacy.accountQueue(account.id), accountQueueName(account.id)],
      [legacy.batchQueue(account.id), batchQueueName(account.id)],
    ] as const) {
      const left = await unfinishedJobs(redis, prefix, oldName);
      if (left > 0)
        blocked.push(`${prefix}:${oldName} holds ${left} unfinished jobs (this version uses ${newName})`);
    }
  }
  if (blocked.length > 0) {
    throw new LegacyLayoutError(
      `Queues of the key layout without hash tags still hold work: ${blocked.join('; ')}. ` +
        'Stop the producers, let workers of the previous hfq version finish these jobs (hfq status shows ' +
        'nothing waiting, active or delayed), then start this version. See docs/redis-cluster.md, "Migrating".',
    );
  }
  let moved = 0;
  for (const { account, routes } of options.accounts) {
    for (const [from, to] of statePairs(prefix, account, routes, options.nowMs)) {
      if (!(await moveKey(redis, from, to))) continue;
      moved += 1;
      // A moved override: permits read it from its copy in the domain's state, which may predate it.
      if (to.endsWith(OVERRIDE_SUFFIX))
        await redis.hdel(to.slice(0, -OVERRIDE_SUFFIX.length), 'ovr', 'ovrUntil');
    }
  }
  if (moved > 0) logger.info({ moved }, 'state keys moved to the tagged key layout');
}
