import { type DomainRef, parseStatedLimit, primaryWindow } from '@hfq/shared/internal';
import type { AccountContext } from './account-context.js';

/** Rate headers on a success set the learned rate directly (README, "What a 429 means"). */
export async function applyStatedLimit(
  ctx: AccountContext,
  domain: DomainRef,
  headers: Headers | undefined,
): Promise<void> {
  if (!headers) return;
  const stated = parseStatedLimit((name) => headers.get(name));
  if (!stated) return;
  const primary = primaryWindow(domain.windows);
  if (!primary) return;
  const rate = (stated.max * primary.durationMs) / stated.durationMs;
  const key = `${domain.id}:${rate}`;
  if (appliedRates.has(key)) return;
  appliedRates.add(key);
  await ctx.limiter.setRate(domain, rate);
  ctx.logger.info(
    { account: ctx.account.id, domain: domain.id, learnedRate: rate },
    'learned rate set from rate headers',
  );
}
const appliedRates = new Set<string>();
