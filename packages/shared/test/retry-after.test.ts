import {
  AccountHeldError,
  CreditsExhaustedError,
  EndpointColdError,
  EndpointPausedError,
  EndpointRefusedError,
  ModelNotSupportedError,
  PermanentUpstreamError,
  ThrottledError,
  TransientUpstreamError,
} from '@hfq/shared';
import {
  classifyUpstream,
  parseBodyReset,
  parseProviderReset,
  parseRateLimitReset,
  parseRetryAfter,
  parseStatedLimit,
  scrubSecrets,
  statedThrottleDelay,
} from '@hfq/shared/internal';
import { describe, expect, it } from 'vitest';

const NOW = Date.UTC(2026, 10, 24, 12, 0, 0);
const headers = (h: Record<string, string>) => (name: string) => h[name.toLowerCase()];

describe('Retry-After', () => {
  it('reads delta-seconds and HTTP dates', () => {
    expect(parseRetryAfter('2', NOW)).toBe(2000);
    expect(parseRetryAfter('0.5', NOW)).toBe(500);
    expect(parseRetryAfter(new Date(NOW + 7000).toUTCString(), NOW)).toBe(7000);
  });
  it('ignores invalid values and clamps absurd ones', () => {
    expect(parseRetryAfter('-5', NOW)).toBeUndefined();
    expect(parseRetryAfter('soon', NOW)).toBeUndefined();
    expect(parseRetryAfter('', NOW)).toBeUndefined();
    expect(parseRetryAfter('1e9', NOW)).toBeUndefined();
    expect(parseRetryAfter('99999999', NOW, 60_000)).toBe(60_000);
    expect(parseRetryAfter(new Date(NOW - 5000).toUTCString(), NOW)).toBe(0);
  });
});

describe('other wait sources', () => {
  it('reads RateLimit t=', () => {
    expect(parseRateLimitReset('"api";r=0;t=55')).toBe(55_000);
  });
  it('reads provider reset headers, fractional and as durations', () => {
    expect(parseProviderReset(headers({ 'x-ratelimit-reset-tokens-minute': '12.5' }), NOW)).toBe(12_500);
    expect(parseProviderReset(headers({ 'x-ratelimit-reset': '3', 'x-ratelimit-remaining': '0' }), NOW)).toBe(
      3000,
    );
    expect(parseProviderReset(headers({ 'x-ratelimit-reset-requests': '1m30s' }), NOW)).toBe(90_000);
  });
  it('reads a quota reset named in the body', () => {
    expect(parseBodyReset('Your rate limit resets in ~30s.', NOW)).toBe(30_000);
    expect(parseBodyReset('You reached free usage limit (reset hourly).', NOW)).toBe(3_600_000);
  });
  it('prefers Retry-After, and names no wait when the answer has none (the limiter backs off)', () => {
    const get = headers({ 'retry-after': '3', ratelimit: '"x";r=0;t=9' });
    expect(statedThrottleDelay({ get, body: '', nowMs: NOW })).toEqual({
      delayMs: 3000,
      source: 'retry-after',
    });
    expect(statedThrottleDelay({ get: () => undefined, body: '{}', nowMs: NOW })).toBeUndefined();
  });
  it('reads stated limits', () => {
    expect(parseStatedLimit(headers({ 'ratelimit-policy': '"fixed window";"api";q=1000;w=300' }))).toEqual({
      max: 1000,
      durationMs: 300_000,
    });
    expect(parseStatedLimit(headers({ 'x-ratelimit-limit': '40' }))).toEqual({ max: 40, durationMs: 1000 });
  });
});

describe('classification', () => {
  const base = { requestId: 'req-1', route: 'hf-router' as const };
  it('sorts answers by status and body', () => {
    expect(
      classifyUpstream({ ...base, status: 429, body: '{"error":"Rate limit reached"}' }).retryClass,
    ).toBe('throttle');
    expect(
      classifyUpstream({
        ...base,
        status: 402,
        body: '{"error":"You have exceeded your monthly included credits for Inference Providers."}',
      }).retryClass,
    ).toBe('credits');
    expect(
      classifyUpstream({
        ...base,
        status: 429,
        body: '{"error":"You have no remaining credits. Purchase pre-paid credits"}',
      }).retryClass,
    ).toBe('credits');
    expect(
      classifyUpstream({ ...base, status: 401, body: '{"error":"Invalid credentials"}' }).retryClass,
    ).toBe('hold');
    expect(
      classifyUpstream({ ...base, status: 503, body: 'Service Temporarily Unavailable' }).retryClass,
    ).toBe('retry');
    const notFound = classifyUpstream({ ...base, status: 404, body: '{"error":"Not Found"}' });
    expect(notFound.retryClass).toBe('fail');
    expect(notFound.message).toContain('404');
    expect(notFound.message).toContain('req-1');
    expect(notFound.message).toContain('Not Found');
  });
  it("reads an Inference Endpoint's answers as the endpoint's state, not the account's", () => {
    const endpoint = { requestId: 'req-2', route: 'endpoint' as const };
    const paused = '{"error":"Bad Request: Invalid state"}';
    const cold = classifyUpstream({ ...endpoint, status: 503, body: 'Service Unavailable' });
    expect(cold).toBeInstanceOf(EndpointColdError);
    expect([cold.code, cold.retryClass]).toEqual(['HFQ_ENDPOINT_COLD', 'throttle']);
    const pause = classifyUpstream({ ...endpoint, status: 400, body: paused });
    expect(pause).toBeInstanceOf(EndpointPausedError);
    expect([pause.code, pause.retryClass]).toEqual(['HFQ_ENDPOINT_PAUSED', 'hold']);
    expect(pause.info).toMatchObject({
      status: 400,
      requestId: 'req-2',
      upstreamMessage: 'Bad Request: Invalid state',
    });
    // A pause is a pause even if its text mentions credits.
    expect(
      classifyUpstream({ ...endpoint, status: 400, body: 'Invalid state: add credits to your account' }),
    ).toBeInstanceOf(EndpointPausedError);
    for (const [status, body] of [
      [401, '{"error":"Invalid credentials"}'],
      [403, '{"error":"You do not have sufficient permissions"}'],
      [402, '{"error":"Payment required"}'],
      [429, '{"error":"You have no remaining credits. Purchase pre-paid credits"}'],
    ] as const) {
      const refused = classifyUpstream({ ...endpoint, status, body });
      expect(refused, `${status}`).toBeInstanceOf(EndpointRefusedError);
      expect([refused.code, refused.retryClass]).toEqual(['HFQ_ENDPOINT_REFUSED', 'hold']);
      // Not the router's verdicts, which would hold the account's router gate or close its credits.
      expect(refused).not.toBeInstanceOf(AccountHeldError);
      expect(refused).not.toBeInstanceOf(CreditsExhaustedError);
    }
    // The serving container's concurrency limit: a 429 like any other.
    expect(classifyUpstream({ ...endpoint, status: 429, body: 'Too Many Requests' })).toBeInstanceOf(
      ThrottledError,
    );
    // Other answers mean what they mean on the router.
    expect(classifyUpstream({ ...endpoint, status: 500, body: 'boom' })).toBeInstanceOf(
      TransientUpstreamError,
    );
    expect(classifyUpstream({ ...endpoint, status: 502, body: 'Bad Gateway' }).retryClass).toBe('retry');
    expect(classifyUpstream({ ...endpoint, status: 422, body: '{"error":"bad input"}' })).toBeInstanceOf(
      PermanentUpstreamError,
    );
    expect(
      classifyUpstream({ ...endpoint, status: 400, body: '{"error":"Model not supported by provider"}' }),
    ).toBeInstanceOf(ModelNotSupportedError);
  });
  it('reads endpoint meanings only from an endpoint', () => {
    const paused = '{"error":"Bad Request: Invalid state"}';
    for (const route of ['hf-router', 'provider-key'] as const) {
      const answer = classifyUpstream({ route, provider: 'together', status: 400, body: paused });
      expect(answer, route).toBeInstanceOf(PermanentUpstreamError);
      expect(answer.retryClass).toBe('fail');
      expect(classifyUpstream({ route, status: 503, body: 'Service Unavailable' })).toBeInstanceOf(
        TransientUpstreamError,
      );
    }
    expect(classifyUpstream({ route: 'hf-router', status: 401, body: 'Invalid credentials' })).toBeInstanceOf(
      AccountHeldError,
    );
  });
  it('scrubs secrets from texts', () => {
    expect(scrubSecrets('token hf_abcdefghijklmnop and key tg-123456', ['tg-123456'])).toBe(
      'token [redacted] and key [redacted]',
    );
    expect(scrubSecrets('Authorization: Bearer abc.def')).toBe('Authorization: Bearer [redacted]');
  });
});
