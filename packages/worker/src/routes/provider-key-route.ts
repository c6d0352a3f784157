import { type AcquireResult, keyScope, LEDGER_FIELDS } from '@hfq/shared/internal';
import type { AccountContext } from '../account-context.js';
import type { ProviderRoute } from '../route-selection.js';
import type { Target } from './target.js';

/**
 * A provider key as a route: its permit, the probe of its closed credit gate, and the request it
 * admits. Its call, span, event and result are those of every route (`route.ts`).
 */

/**
 * While a provider key's credit gate is closed (its prepaid balance ran out: a 402), one real
 * queued request goes through that key every `probeIntervalMs`, all workers together (the claim
 * is in the key's gate hash, as for the router: `router-route.ts`). Its success reopens the
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
  const permit = await acquireProviderKeyPermit(ctx, candidate, tokens, nowMs, signal, { probe: true });
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

/**
 * A provider key's permit: its domain, its credit gate, the account's provider-key budget. The
 * probe (`probe: true`) finds out whether the gate may open, so its permit checks no gate (a key
 * that is never written); the key's rate limit and the budget apply as usual.
 */
export function acquireProviderKeyPermit(
  ctx: AccountContext,
  candidate: ProviderRoute,
  tokens: number,
  nowMs: number,
  signal?: AbortSignal,
  options: { probe?: boolean } = {},
): Promise<AcquireResult> {
  const scope = keyScope(candidate.domain.id);
  return ctx.limiter.acquire({
    domain: candidate.domain,
    gateKey: options.probe ? ctx.credits.probeGateKey(scope) : ctx.credits.gateKey(scope),
    ledgerKey: ctx.credits.ledgerKey(ctx.scope, nowMs),
    ledgerField: LEDGER_FIELDS.providerKeyUsd,
    ...(ctx.account.providerBudgetUsd !== undefined ? { budgetUsd: ctx.account.providerBudgetUsd } : {}),
    appNowMs: nowMs,
    tokens,
    signal,
  });
}

/**
 * A provider key's admission: its permit or, when its gate is closed and its probe is due, the
 * probe's permit (`probe` says which).
 */
export async function admitProviderKey(
  ctx: AccountContext,
  candidate: ProviderRoute,
  tokens: number,
  nowMs: number,
  signal?: AbortSignal,
): Promise<{ permit: AcquireResult; probe: boolean }> {
  const permit = await acquireProviderKeyPermit(ctx, candidate, tokens, nowMs, signal);
  // A key out of credits is probed once per interval, all workers together.
  const probe = permit.kind === 'gate' ? await probeProviderKey(ctx, candidate, tokens, signal) : undefined;
  return probe ? { permit: probe, probe: true } : { permit, probe: false };
}

/** A request through a provider's own API with the user's key, on the permit it was admitted with. */
export function providerKeyTarget(
  candidate: ProviderRoute,
  permit: { sentAt: number; waitedMs: number; uid: string },
  probe: boolean,
): Extract<Target, { kind: 'go' }> {
  return {
    kind: 'go',
    route: {
      route: 'provider-key',
      credential: candidate.key,
      provider: candidate.provider,
      billTo: undefined,
    },
    domain: candidate.domain,
    provider: candidate.provider,
    permit,
    ...(probe ? { probe: true as const } : {}),
  };
}
