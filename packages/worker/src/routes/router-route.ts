import type { Job } from '@hfq/shared';
import { type AcquireResult, accountBudgetUsd, LEDGER_FIELDS } from '@hfq/shared/internal';
import type { AccountContext } from '../account-context.js';
import type { Target } from './target.js';

/**
 * The HF router as a route: its permit, the request it admits, and the probe of its closed
 * credit gate. Its call, span, event and result are those of every route (`route.ts`).
 */

/**
 * The one place a router permit is taken (see docs/architecture.md, "Where a permit is taken"):
 * from the router's domain for the job's provider (the account's for `auto`, its own for an
 * explicit provider), with the account's credit gate and monthly budget checked inside the permit
 * script. `chooseTarget` waits for it; the endpoint spill takes it only when due within
 * `maxWaitMs`; the router probe of a closed gate checks a gate key that is never written.
 */
export function acquireRouterPermit(
  ctx: AccountContext,
  job: Job,
  /** The job's estimated token cost (`estimateTokens`), for token windows. */
  tokens: number,
  signal: AbortSignal | undefined,
  options: { maxWaitMs?: number; probe?: boolean } = {},
): Promise<AcquireResult> {
  const nowMs = ctx.now();
  const common = {
    domain: ctx.routes.routerDomainFor(job.provider),
    ledgerKey: ctx.credits.ledgerKey(ctx.scope, nowMs),
    appNowMs: nowMs,
    tokens,
    signal,
    ...(options.maxWaitMs !== undefined ? { maxWaitMs: options.maxWaitMs } : {}),
  };
  // No budget (the default): nothing stops on an estimate; the router's 402 is the signal.
  const budgetUsd = accountBudgetUsd(ctx.account);
  const budget = budgetUsd !== undefined ? { ledgerField: LEDGER_FIELDS.hfRouterUsd, budgetUsd } : {};
  if (options.probe) {
    // The probe is the request that finds out whether the gate may open, so its permit checks
    // no gate: this key is never written. The domain's rate limit applies as to any request,
    // and so does the user's budget: a spent budget is no reason to probe the router.
    return ctx.limiter.acquire({ ...common, gateKey: ctx.credits.probeGateKey(ctx.scope), ...budget });
  }
  return ctx.limiter.acquire({ ...common, gateKey: ctx.credits.gateKey(ctx.scope), ...budget });
}

/**
 * A request through the HF router: the account's token (and the organisation it bills), the
 * job's provider, on the router permit it was admitted with.
 */
export function routerTarget(
  ctx: AccountContext,
  job: Job,
  permit: { sentAt: number; waitedMs: number; uid: string },
): Extract<Target, { kind: 'go' }> {
  const { account } = ctx;
  return {
    kind: 'go',
    route: {
      route: 'hf-router',
      credential: account.hfToken,
      provider: job.provider,
      billTo: account.billTo,
    },
    domain: ctx.routes.routerDomainFor(job.provider),
    provider: job.provider,
    permit,
  };
}

/**
 * While the router's credit gate is closed (credits exhausted), one real queued request goes to
 * the router every `probeIntervalMs`, all workers together (the claim is in the gate hash): a
 * late monthly reset, a skewed clock or credits bought early reopen the gate on its success,
 * instead of the router staying closed until the next month (see docs/architecture.md, 'What
 * a 402 does'). A held gate (a refused token) is not probed: an operator resets it.
 */
export async function probeRouter(
  ctx: AccountContext,
  job: Job,
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
