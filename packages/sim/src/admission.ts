/** The limits that apply to an inference request, with its cost against each. */
import type { Caller } from './auth.js';
import type { ProviderName, SimConfig } from './config.js';
import type { AppliedLimit, LimiterRegistry } from './limiters/limiter-registry.js';
import type { Operation } from './operations.js';

/** The token's own limits (per token, or per token and provider) and the provider's shared limits. */
export function inferenceLimits(
  config: SimConfig,
  limiters: LimiterRegistry,
  caller: Caller,
  provider: ProviderName,
  operation: Operation,
  body: Record<string, unknown>,
): AppliedLimit[] {
  const tokens = operation.tokens(body);
  const applied: AppliedLimit[] = [];
  for (const limit of caller.policy.limits ?? []) {
    const scope =
      (limit.scope ?? 'token') === 'token' ? `token:${caller.id}` : `token:${caller.id}|${provider}`;
    applied.push({
      config: limit,
      limiter: limiters.get(scope, limit),
      cost: limit.unit === 'tokens' ? tokens : 1,
    });
  }
  for (const limit of config.providerLimits[provider] ?? []) {
    applied.push({
      config: limit,
      limiter: limiters.get(`provider:${provider}`, limit),
      cost: limit.unit === 'tokens' ? tokens : 1,
    });
  }
  return applied;
}
