import type { Job } from '@hfq/shared';
import { type AcquireResult, accountBudgetUsd, LEDGER_FIELDS } from '@hfq/shared/internal';
import type { AccountContext } from '../account-context.js';

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
