import type { HfqError } from '@hfq/shared';
import { type DomainRef, keyScope, scrubSecrets } from '@hfq/shared/internal';
import type { AccountContext } from './account-context.js';
import type { CallRoute } from './inference-call.js';

/** Which credential's gate: the router's (the account's credit scope) or a provider key's. No credential. */
export type GateRoute = Pick<CallRoute, 'route' | 'provider'>;

/**
 * A credential cannot go on, for every worker: credits gone (402, or credit wording) close its
 * gate until the monthly reset or a successful probe; a refused credential (router 401 or a 403
 * about the account, a provider key's 401/403) holds its gate until an operator resets it. A
 * provider key's gate is its own: only that key closes, and the job tries the next.
 */
export async function closeGate(
  ctx: AccountContext,
  route: GateRoute,
  provider: string | undefined,
  domain: DomainRef,
  error: HfqError,
  excluded: Set<string>,
): Promise<void> {
  const nowMs = ctx.now();
  const reason = scrubSecrets(error.message, ctx.routes.secrets());
  const status = error.info.status;
  if (route.route === 'provider-key') {
    const scope = keyScope(domain.id);
    if (error.retryClass === 'hold') await ctx.credits.hold(scope, reason, nowMs);
    else await ctx.credits.markExhausted(scope, reason, nowMs);
    ctx.events.emit('credits', { account: ctx.account.id, scope, event: 'key-refused' });
    if (provider) excluded.add(provider);
    ctx.logger.warn(
      { account: ctx.account.id, provider, status, reason },
      error.retryClass === 'hold'
        ? 'provider key refused: its gate is held until an operator resets it; trying the next key'
        : 'provider key out of credits: trying the next key; the key is probed until they are back',
    );
    return;
  }
  if (error.retryClass === 'hold') {
    await ctx.credits.hold(ctx.scope, reason, nowMs);
    ctx.events.emit('credits', { account: ctx.account.id, scope: ctx.scope, event: 'held' });
    ctx.logger.error(
      { account: ctx.account.id, scope: ctx.scope, status, reason },
      status === 401
        ? 'router refused the account token (401): account held until an operator resets it'
        : 'router refused the account: held until an operator resets it',
    );
    return;
  }
  const closed = await ctx.credits.markExhausted(ctx.scope, reason, nowMs);
  if (closed) {
    ctx.events.emit('credits', { account: ctx.account.id, scope: ctx.scope, event: 'exhausted' });
    ctx.logger.warn(
      { account: ctx.account.id, scope: ctx.scope, status, reason },
      'HF credits exhausted: failing over to provider keys; the router is probed until they are back',
    );
  }
}

/** A probe got through (the router's, or a provider key's): that credential's credits are back, for every worker. */
export async function reopenGate(ctx: AccountContext, route: GateRoute, domain: DomainRef): Promise<void> {
  if (route.route === 'provider-key') {
    const scope = keyScope(domain.id);
    await ctx.credits.reopen(scope);
    ctx.events.emit('credits', { account: ctx.account.id, scope, event: 'reopened' });
    ctx.logger.info(
      { account: ctx.account.id, provider: route.provider, scope },
      'provider key probe succeeded: its credits are back',
    );
    return;
  }
  await ctx.credits.reopen(ctx.scope);
  ctx.events.emit('credits', { account: ctx.account.id, scope: ctx.scope, event: 'reopened' });
  ctx.logger.info({ account: ctx.account.id, scope: ctx.scope }, 'router probe succeeded: HF credits back');
}
