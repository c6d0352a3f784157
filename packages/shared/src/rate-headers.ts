import type { HeaderLookup } from './retry-after.js';

/**
 * A limit the upstream states on its responses, for the learned rate (decision 4): IETF
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
      if (q && w && Number(q[1]) > 0 && Number(w[1]) > 0)
        return { max: Number(q[1]), durationMs: Number(w[1]) * 1000 };
    }
    const perMinute = get('x-ratelimit-limit-requests-minute') ?? get('x-ratelimit-limit-requests');
    if (typeof perMinute === 'string' && Number(perMinute) > 0)
      return { max: Number(perMinute), durationMs: 60_000 };
    const perSecond = get('x-ratelimit-limit');
    if (typeof perSecond === 'string' && Number(perSecond) > 0)
      return { max: Number(perSecond), durationMs: 1_000 };
  } catch {
    return undefined;
  }
  return undefined;
}
