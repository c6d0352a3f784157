import { MAX_QUOTA_DELAY_MS, MAX_THROTTLE_DELAY_MS } from './limits.js';

/**
 * How long the upstream asked us to wait, from the headers and body of a 429 (or 503).
 * Every parser here returns a finite delay in [0, maxMs] or undefined; none throws.
 */

export type HeaderLookup = (name: string) => string | null | undefined;

/** `Retry-After`: delta-seconds (fractions allowed) or an HTTP-date. */
export function parseRetryAfter(
  value: string | null | undefined,
  nowMs: number,
  maxMs = MAX_THROTTLE_DELAY_MS,
): number | undefined {
  if (typeof value !== 'string') return undefined;
  const text = value.trim();
  if (text === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(text)) return clamp(Number(text) * 1000, maxMs);
  if (!/[a-z]/i.test(text)) return undefined; // "-5", "1e9" and other non-dates
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return clamp(at - nowMs, maxMs);
}

/** IETF draft `RateLimit: "policy";r=0;t=55` (or the older `limit=…, remaining=…, reset=…`): the `t`/`reset` seconds. */
export function parseRateLimitReset(
  value: string | null | undefined,
  maxMs = MAX_THROTTLE_DELAY_MS,
): number | undefined {
  if (typeof value !== 'string') return undefined;
  const match = /(?:^|[;,\s])(?:t|reset)\s*=\s*(\d+(?:\.\d+)?)/i.exec(value);
  if (!match) return undefined;
  return clamp(Number(match[1]) * 1000, maxMs);
}

/**
 * Provider reset headers: `x-ratelimit-reset` (Together: seconds or an epoch), `x-ratelimit-reset-requests*`,
 * `x-ratelimit-reset-tokens*` (Cerebras, fractional seconds; OpenAI style `1m30s`). The largest reset wins,
 * but only for windows reported exhausted when a remaining count is given.
 */
export function parseProviderReset(
  get: HeaderLookup,
  nowMs: number,
  maxMs = MAX_THROTTLE_DELAY_MS,
): number | undefined {
  const names = [
    'x-ratelimit-reset',
    'x-ratelimit-reset-requests',
    'x-ratelimit-reset-tokens',
    'x-ratelimit-reset-requests-minute',
    'x-ratelimit-reset-tokens-minute',
    'x-ratelimit-reset-requests-day',
    'x-ratelimit-reset-tokens-day',
  ];
  let best: number | undefined;
  for (const name of names) {
    const raw = safeGet(get, name);
    if (raw == null) continue;
    const remaining = safeGet(get, name.replace('reset', 'remaining'));
    if (remaining != null && Number(remaining) > 0) continue;
    const ms = parseResetValue(raw, nowMs, maxMs);
    if (ms !== undefined && (best === undefined || ms > best)) best = ms;
  }
  return best;
}

function parseResetValue(raw: string, nowMs: number, maxMs: number): number | undefined {
  const text = raw.trim();
  if (/^\d+(\.\d+)?$/.test(text)) {
    const n = Number(text);
    // Large numbers are epoch timestamps (seconds or milliseconds), small ones delta-seconds.
    if (n > 1e12) return clamp(n - nowMs, maxMs);
    if (n > 1e9) return clamp(n * 1000 - nowMs, maxMs);
    return clamp(n * 1000, maxMs);
  }
  const duration = /^(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+)ms)?$/.exec(text);
  if (duration && text !== '') {
    const [, h, m, s, ms] = duration;
    return clamp(
      Number(h ?? 0) * 3_600_000 + Number(m ?? 0) * 60_000 + Number(s ?? 0) * 1000 + Number(ms ?? 0),
      maxMs,
    );
  }
  return undefined;
}

/** A quota named in the body with its own reset, e.g. "(reset hourly)" or "resets in ~30s". */
export function parseBodyReset(body: string, nowMs: number, maxMs = MAX_QUOTA_DELAY_MS): number | undefined {
  const text = body.slice(0, 4096);
  const inSeconds = /resets? in ~?\s*(\d+(?:\.\d+)?)\s*s/i.exec(text);
  if (inSeconds) return clamp(Number(inSeconds[1]) * 1000, maxMs);
  if (/reset hourly/i.test(text)) {
    const nextHour = Math.ceil((nowMs + 1) / 3_600_000) * 3_600_000;
    return clamp(nextHour - nowMs, maxMs);
  }
  if (/reset daily/i.test(text)) {
    const nextDay = Math.ceil((nowMs + 1) / 86_400_000) * 86_400_000;
    return clamp(nextDay - nowMs, maxMs);
  }
  return undefined;
}

export interface ThrottleDelay {
  delayMs: number;
  source: 'retry-after' | 'ratelimit' | 'provider-reset' | 'body';
}

/**
 * The wait a 429 names, in order of trust: Retry-After, RateLimit `t=`, provider reset headers,
 * a quota reset named in the body. `undefined` when it names none: the domain limiter then backs
 * off with full jitter on the domain's consecutive congestion episodes (record-throttle.lua).
 */
export function statedThrottleDelay(input: {
  get: HeaderLookup;
  body: string;
  nowMs: number;
  maxMs?: number;
}): ThrottleDelay | undefined {
  const maxMs = input.maxMs ?? MAX_THROTTLE_DELAY_MS;
  const fromRetryAfter = parseRetryAfter(safeGet(input.get, 'retry-after'), input.nowMs, maxMs);
  if (fromRetryAfter !== undefined) return { delayMs: fromRetryAfter, source: 'retry-after' };
  const fromRateLimit = parseRateLimitReset(safeGet(input.get, 'ratelimit'), maxMs);
  if (fromRateLimit !== undefined) return { delayMs: fromRateLimit, source: 'ratelimit' };
  const fromProvider = parseProviderReset(input.get, input.nowMs, maxMs);
  if (fromProvider !== undefined) return { delayMs: fromProvider, source: 'provider-reset' };
  const fromBody = parseBodyReset(input.body, input.nowMs);
  if (fromBody !== undefined) return { delayMs: fromBody, source: 'body' };
  return undefined;
}

function clamp(ms: number, maxMs: number): number | undefined {
  if (!Number.isFinite(ms)) return undefined;
  return Math.min(Math.max(0, Math.round(ms)), maxMs);
}

function safeGet(get: HeaderLookup, name: string): string | undefined {
  try {
    const value = get(name);
    return typeof value === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}
