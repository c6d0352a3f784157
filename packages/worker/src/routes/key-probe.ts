import { type AcquireResult, keyScope, LEDGER_FIELDS } from '@hfq/shared/internal';
import type { AccountContext } from '../account-context.js';
import type { ProviderRoute } from '../route-selection.js';

/**
 * While a provider key's credit gate is closed (its prepaid balance ran out: a 402), one real
 * queued request goes through that key every `probeIntervalMs`, all workers together (the claim
 * is in the key's gate hash, as for the router: `router-probe.ts`). Its success reopens the
 * key's gate, so a balance topped up is noticed within one interval instead of at the next
 * month; its failure leaves the gate closed and the next probe one interval on (see
 * docs/architecture.md, 'What a 402 does'). A held key gate (401/403: a refused key) is not
 * probed: an operator resets it.
 *
 * Returns the probe's permit (admitted, or why it could not be sent now, with the probe given
 * back), or undefined when no probe of this key is due.
 */
export async function probeProviderKey(
  ctx: AccountContext,
  candidate: ProviderRoute,
  tokens: number,
  signal?: AbortSignal,
): Promise<AcquireResult | undefined> {
  const scope = keyScope(candidate.domain.id);
  const nowMs = ctx.now();
  if (!(await ctx.credits.takeProbe(scope, nowMs))) return undefined;
  const permit = await ctx.limiter.acquire({
    domain: candidate.domain,
    // The probe finds out whether the gate may open, so its permit checks no gate (this key is
    // never written); the key's rate limit and the account's provider-key budget apply as usual.
    gateKey: ctx.credits.probeGateKey(scope),
    ledgerKey: ctx.credits.ledgerKey(ctx.scope, nowMs),
    ledgerField: LEDGER_FIELDS.providerKeyUsd,
    ...(ctx.account.providerBudgetUsd !== undefined ? { budgetUsd: ctx.account.providerBudgetUsd } : {}),
    appNowMs: nowMs,
    tokens,
    signal,
  });
  if (permit.kind !== 'admitted') {
    await ctx.credits.releaseProbe(scope);
    return permit;
  }
  ctx.logger.info(
    { account: ctx.account.id, provider: candidate.provider, scope },
    'provider key out of credits: probing it',
  );
  return permit;
}
