import type { HeaderLookup } from './retry-after.js';

/** A stated count of requests: a whole number from 1 to 10^9, else nothing (no Infinity, no 1.5). */
function statedCount(value: unknown): number | undefined {
  if (typeof value !== 'string' || !/^\s*\d{1,10}\s*$/.test(value)) return undefined;
  const n = Number(value);
  return n >= 1 && n <= 1e9 ? n : undefined;
}

/**
 * A limit the upstream states on its responses, for the learned rate (see docs/architecture.md, "What a 429 means"): IETF
 * `RateLimit-Policy: "name";q=1000;w=300`, or `x-ratelimit-limit-requests` with a window named
 * in the header (`-minute`, `-day`), or Together's `x-ratelimit-limit` (requests per second).
 * Returns undefined when nothing usable is stated; never throws.
 */
export function parseStatedLimit(get: HeaderLookup): { max: number; durationMs: number } | undefined {
  try {
    const policy = get('ratelimit-policy');
    if (typeof policy === 'string') {
      const q = /(?:^|[;,\s])q\s*=\s*(\d+)/i.exec(policy);
      const w = /(?:^|[;,\s])w\s*=\s*(\d+)/i.exec(policy);
      const max = statedCount(q?.[1]);
      const seconds = statedCount(w?.[1]);
      if (max !== undefined && seconds !== undefined && seconds <= 86_400 * 31)
        return { max, durationMs: seconds * 1000 };
    }
    const perMinute = statedCount(
      get('x-ratelimit-limit-requests-minute') ?? get('x-ratelimit-limit-requests'),
    );
    if (perMinute !== undefined) return { max: perMinute, durationMs: 60_000 };
    const perSecond = statedCount(get('x-ratelimit-limit'));
    if (perSecond !== undefined) return { max: perSecond, durationMs: 1_000 };
  } catch {
    return undefined;
  }
  return undefined;
}
