import { LIMITS } from '@hfq/shared';
import {
  parseBodyReset,
  parseProviderReset,
  parseRateLimitReset,
  parseRetryAfter,
  parseStatedLimit,
  statedThrottleDelay,
} from '@hfq/shared/internal';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

const NOW = Date.UTC(2026, 10, 24);
const headerValue = fc.oneof(
  fc.string(),
  fc.double().map(String),
  fc.integer().map(String),
  fc
    .date({ noInvalidDate: false })
    .map((d) => (Number.isNaN(d.getTime()) ? 'Invalid Date' : d.toUTCString())),
);

describe('header parsers (property)', () => {
  it('never throw and always return a bounded delay or nothing', () => {
    fc.assert(
      fc.property(headerValue, headerValue, fc.string(), (a, b, body) => {
        const get = (name: string) => (name.includes('reset') ? a : b);
        for (const ms of [
          parseRetryAfter(a, NOW),
          parseRateLimitReset(a),
          parseProviderReset(get, NOW),
          parseBodyReset(body, NOW),
        ]) {
          if (ms !== undefined) {
            expect(Number.isFinite(ms)).toBe(true);
            expect(ms).toBeGreaterThanOrEqual(0);
            expect(ms).toBeLessThanOrEqual(LIMITS.MAX_QUOTA_DELAY_MS);
          }
        }
        const delay = statedThrottleDelay({ get, body, nowMs: NOW })?.delayMs ?? 0;
        expect(delay).toBeGreaterThanOrEqual(0);
        expect(delay).toBeLessThanOrEqual(LIMITS.MAX_QUOTA_DELAY_MS);
        const stated = parseStatedLimit(get);
        if (stated !== undefined) {
          expect(Number.isSafeInteger(stated.max)).toBe(true);
          expect(stated.max).toBeGreaterThan(0);
          expect(Number.isFinite(stated.durationMs)).toBe(true);
          expect(stated.durationMs).toBeGreaterThan(0);
        }
      }),
      { numRuns: 3000 },
    );
  });
});
