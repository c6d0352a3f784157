/**
 * How a rate limit is reported: the 429 answer (status, Retry-After, headers, body) and the
 * rate-limit headers that may ride on successful answers.
 */
import type { RateLimitConfig, ThrottleStyle } from './config.js';
import { jsonReply, type Reply } from './http/reply.js';
import type { LimitOutcome } from './limiters/limiter-registry.js';
import {
  cerebrasThrottled,
  RATE_LIMIT_LEGACY,
  RATE_LIMIT_REACHED,
  replicateThrottled,
  togetherThrottled,
} from './texts.js';

const ALGORITHM_WORDS: Record<RateLimitConfig['algorithm'], string> = {
  'fixed-window': 'fixed window',
  'sliding-window': 'sliding window',
  'token-bucket': 'token bucket',
};

/**
 * The limit to report: when refused, the refusing limit with the longest wait; otherwise the one
 * with the smallest share left. `unit` restricts the choice to one kind of limit.
 */
export function bindingOutcome(
  outcomes: readonly LimitOutcome[],
  unit?: 'requests' | 'tokens',
): LimitOutcome | undefined {
  const candidates = outcomes.filter((outcome) => !unit || (outcome.config.unit ?? 'requests') === unit);
  const refused = candidates.filter((outcome) => !outcome.decision.allowed);
  if (refused.length > 0) {
    return refused.reduce((a, b) => (waitMs(b) > waitMs(a) ? b : a));
  }
  return candidates.reduce<LimitOutcome | undefined>(
    (a, b) => (!a || share(b) < share(a) ? b : a),
    undefined,
  );
}

/** ms until the outcome's limit admits the request (its reset when it already did). */
export function waitMs(outcome: LimitOutcome): number {
  const { decision, config } = outcome;
  if (decision.allowed) return decision.resetMs;
  return Number.isFinite(decision.retryAfterMs) ? decision.retryAfterMs : config.windowMs;
}

function share(outcome: LimitOutcome): number {
  return outcome.decision.remaining / outcome.config.limit;
}

const seconds = (ms: number): number => Math.max(0, Math.ceil(ms / 1000));

/** `Retry-After` for a wait of `wait` ms; an HTTP date is rounded up to the next whole second. */
export function retryAfterHeader(style: ThrottleStyle['retryAfter'], wait: number): Record<string, string> {
  if (style === 'seconds') return { 'retry-after': String(Math.max(1, seconds(wait))) };
  if (style === 'http-date') {
    return { 'retry-after': new Date(Math.ceil((Date.now() + wait) / 1000) * 1000).toUTCString() };
  }
  return {};
}

/** IETF draft headers; `policy` is the quoted policy name (`default` on the router, `api` on the Hub). */
export function ietfHeaders(outcome: LimitOutcome, policy: string): Record<string, string> {
  const { config, decision } = outcome;
  return {
    ratelimit: `"${policy}";r=${decision.remaining};t=${seconds(waitMs(outcome))}`,
    'ratelimit-policy': `"${ALGORITHM_WORDS[config.algorithm]}";"${policy}";q=${config.limit};w=${seconds(config.windowMs)}`,
  };
}

export function rateLimitHeaders(
  kind: ThrottleStyle['rateLimitHeaders'],
  outcomes: readonly LimitOutcome[],
): Record<string, string> {
  if (kind === 'none') return {};
  if (kind === 'cerebras') return cerebrasHeaders(outcomes);
  const outcome = bindingOutcome(outcomes);
  if (!outcome) return {};
  if (kind === 'ietf') return ietfHeaders(outcome, 'default');
  return {
    'x-ratelimit-limit': String(outcome.config.limit),
    'x-ratelimit-remaining': String(outcome.decision.remaining),
    'x-ratelimit-reset': String(seconds(waitMs(outcome))),
  };
}

// Cerebras reports a requests limit and a tokens limit side by side, resets in fractional seconds.
function cerebrasHeaders(outcomes: readonly LimitOutcome[]): Record<string, string> {
  const headers: Record<string, string> = {};
  const requests = bindingOutcome(outcomes, 'requests');
  if (requests) {
    headers['x-ratelimit-limit-requests-day'] = String(requests.config.limit);
    headers['x-ratelimit-remaining-requests-day'] = String(requests.decision.remaining);
    headers['x-ratelimit-reset-requests-day'] = String(waitMs(requests) / 1000);
  }
  const tokens = bindingOutcome(outcomes, 'tokens');
  if (tokens) {
    headers['x-ratelimit-limit-tokens-minute'] = String(tokens.config.limit);
    headers['x-ratelimit-remaining-tokens-minute'] = String(tokens.decision.remaining);
    headers['x-ratelimit-reset-tokens-minute'] = String(waitMs(tokens) / 1000);
  }
  return headers;
}

/** The 429 for a refused admission. */
export function throttleReply(style: ThrottleStyle, outcomes: readonly LimitOutcome[]): Reply {
  const outcome = bindingOutcome(outcomes);
  const wait = outcome ? waitMs(outcome) : 1000;
  const unit = outcome?.config.unit ?? 'requests';
  const headers = {
    ...rateLimitHeaders(style.rateLimitHeaders, outcomes),
    ...retryAfterHeader(style.retryAfter, wait),
  };
  return jsonReply(429, throttleBody(style.body, unit, wait), headers);
}

export function throttleBody(
  body: ThrottleStyle['body'],
  unit: 'requests' | 'tokens',
  wait: number,
): unknown {
  switch (body) {
    case 'hf':
      return { error: RATE_LIMIT_REACHED };
    case 'hf-legacy':
      return { error: RATE_LIMIT_LEGACY };
    case 'together':
      return togetherThrottled(unit);
    case 'replicate':
      return { detail: replicateThrottled(Math.max(1, seconds(wait))) };
    case 'cerebras':
      return cerebrasThrottled(unit);
  }
}
