/**
 * Limiter state by scope, and admission against several limits at once.
 *
 * A limiter is keyed by its scope (`token:<id>`, `token:<id>|<provider>`, `provider:<name>`,
 * `hub:<id>`) and by its config, so changing a limit at runtime starts a fresh counter while
 * unchanged limits keep their state.
 */
import type { RateLimitConfig } from '../config.js';
import { createLimiter } from './create-limiter.js';
import type { LimitDecision, Limiter } from './limiter.js';

/** One limit to check for a request, with what the request costs against it. */
export interface AppliedLimit {
  config: RateLimitConfig;
  limiter: Limiter;
  cost: number;
}

export interface LimitOutcome {
  config: RateLimitConfig;
  decision: LimitDecision;
}

export interface Admission {
  allowed: boolean;
  outcomes: LimitOutcome[];
}

export class LimiterRegistry {
  private readonly limiters = new Map<string, Limiter>();

  get(scope: string, config: RateLimitConfig): Limiter {
    const key = `${scope}\u0000${JSON.stringify(config)}`;
    let limiter = this.limiters.get(key);
    if (!limiter) {
      limiter = createLimiter(config);
      this.limiters.set(key, limiter);
    }
    return limiter;
  }

  /** Drop every limiter whose scope starts with `scopePrefix`. */
  forget(scopePrefix: string): void {
    for (const key of this.limiters.keys()) {
      if (key.startsWith(scopePrefix)) this.limiters.delete(key);
    }
  }
}

/** Admit only if every limit admits; then count the request in all of them, else in none. */
export function admitAll(limits: readonly AppliedLimit[], now: number): Admission {
  const outcomes = limits.map((applied) => ({
    config: applied.config,
    decision: applied.limiter.check(now, applied.cost),
  }));
  const allowed = outcomes.every((outcome) => outcome.decision.allowed);
  if (allowed) {
    for (const applied of limits) applied.limiter.commit(now, applied.cost);
  }
  return { allowed, outcomes };
}
