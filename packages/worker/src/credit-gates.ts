import { type DomainRef, type HfqError, keyScope, scrubSecrets } from '@hfq/shared';
import type { AccountContext } from './account-context.js';
import type { CallRoute } from './inference-call.js';

/** Credits gone (402) or the router refused the account (401/403): close that gate for every worker. */
export async function closeGate(
  ctx: AccountContext,
  route: CallRoute,
  provider: string | undefined,
  domain: DomainRef,
  error: HfqError,
  excluded: Set<string>,
): Promise<void> {
  const nowMs = ctx.now();
  const reason = scrubSecrets(error.message, ctx.routes.secrets());
  if (route.route === 'provider-key') {
    // A provider-key request's domain is its key's: only that key's gate closes.
    await ctx.credits.markExhausted(keyScope(domain.id), reason, nowMs);
    ctx.events.emit('credits', { account: ctx.account.id, scope: keyScope(domain.id), event: 'key-refused' });
    if (provider) excluded.add(provider);
    ctx.logger.warn(
      { account: ctx.account.id, provider, status: error.info.status },
      'provider key refused: trying the next',
    );
    return;
  }
  if (error.retryClass === 'hold') {
    await ctx.credits.hold(ctx.scope, reason, nowMs);
    ctx.events.emit('credits', { account: ctx.account.id, scope: ctx.scope, event: 'held' });
    ctx.logger.error(
      { account: ctx.account.id, status: error.info.status, reason },
      'router refused the account: held',
    );
    return;
  }
  const first = await ctx.credits.markExhausted(ctx.scope, reason, nowMs);
  if (first) {
    ctx.events.emit('credits', { account: ctx.account.id, scope: ctx.scope, event: 'exhausted' });
    ctx.logger.warn(
      { account: ctx.account.id, scope: ctx.scope, status: error.info.status, reason },
      'HF credits exhausted: failing over to provider keys',
    );
  }
}
