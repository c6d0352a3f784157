import type { JobData } from '@hfq/shared/internal';
import type { AccountContext } from '../account-context.js';
import { acquireRouterPermit } from './router-permit.js';
import { routerTarget } from './router-target.js';
import type { Target } from './target.js';

/**
 * While the router's credit gate is closed (credits exhausted), one real queued request goes to
 * the router every `probeIntervalMs`, all workers together (the claim is in the gate hash): a
 * late monthly reset, a skewed clock or credits bought early reopen the gate on its success,
 * instead of the router staying closed until the next month (see docs/architecture.md, 'What
 * a 402 does'). A held gate (a refused token) is not probed: an operator resets it.
 */
export async function probeRouter(
  ctx: AccountContext,
  job: JobData['job'],
  tokens: number,
  signal?: AbortSignal,
): Promise<Target | undefined> {
  const nowMs = ctx.now();
  if (!(await ctx.credits.takeProbe(ctx.scope, nowMs))) return undefined;
  const permit = await acquireRouterPermit(ctx, job, tokens, signal, { probe: true });
  if (permit.kind !== 'admitted') {
    await ctx.credits.releaseProbe(ctx.scope);
    return undefined;
  }
  ctx.logger.info({ account: ctx.account.id, scope: ctx.scope }, 'credits exhausted: probing the router');
  return { ...routerTarget(ctx, job, permit), probe: true };
}
