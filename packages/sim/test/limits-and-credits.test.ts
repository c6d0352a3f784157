/** Rate limits, credits and organisation billing, on an injected clock. */
import { InferenceClientProviderApiError } from '@huggingface/inference';
import { beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { simForFile } from '../../../test/support/sim-clock.js';
import { CREDIT_MESSAGES, RATE_LIMIT_LEGACY, type TokenConfig } from '../src/index.js';
import { type CapturedResponse, simClient } from './helpers/sim-fetch.js';

const LLAMA = 'meta-llama/Llama-3.1-8B-Instruct';
const BGE = 'BAAI/bge-small-en-v1.5';
const messages = [{ role: 'user', content: 'hi' }];

let clock = 0;
const sim = simForFile(() => clock);
beforeEach(() => {
  clock = 1_000_000;
});

function post(
  url: string,
  token: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

const chatOn = (token: string, headers?: Record<string, string>) =>
  post(`${sim.routerUrl}/v1/chat/completions`, token, { model: LLAMA, messages }, headers);

const twoPerTenSeconds = (throttleStyle: TokenConfig['throttleStyle']): TokenConfig => ({
  limits: [{ algorithm: 'sliding-window', limit: 2, windowMs: 10_000 }],
  throttleStyle,
});

describe('429 answers', () => {
  test('Retry-After in seconds is the ceiling of the true wait, and the client sees a 429', async () => {
    sim.setToken('hf_seconds', twoPerTenSeconds({ retryAfter: 'seconds', rateLimitHeaders: 'ietf' }));
    const seen: CapturedResponse[] = [];
    const client = simClient(sim, 'hf_seconds', { seen });
    await client.chatCompletion({ model: LLAMA, messages });
    clock += 1;
    await client.chatCompletion({ model: LLAMA, messages });
    clock += 0.5;
    const error = await client.chatCompletion({ model: LLAMA, messages }).catch((e) => e);
    expect(error).toBeInstanceOf(InferenceClientProviderApiError);
    expect(error.httpResponse.status).toBe(429);
    expect(error.httpResponse.body).toEqual({ error: 'Rate limit reached' });
    const refused = seen.at(-1);
    expect(refused?.headers.get('retry-after')).toBe('10'); // 9999.5 ms
    expect(refused?.headers.get('ratelimit')).toBe('"default";r=0;t=10');
    expect(refused?.headers.get('ratelimit-policy')).toBe('"sliding window";"default";q=2;w=10');
    clock += 9_999.5; // the first admission leaves the window
    await expect(client.chatCompletion({ model: LLAMA, messages })).resolves.toBeDefined();
  });

  test('Retry-After as an HTTP date, never earlier than the true wait', async () => {
    sim.setToken('hf_date', twoPerTenSeconds({ retryAfter: 'http-date' }));
    await chatOn('hf_date');
    await chatOn('hf_date');
    const before = Date.now();
    const refused = await chatOn('hf_date');
    expect(refused.status).toBe(429);
    const retryAt = Date.parse(refused.headers.get('retry-after') ?? '');
    expect(retryAt - before).toBeGreaterThanOrEqual(10_000 - 1000);
    expect(retryAt - before).toBeLessThanOrEqual(12_000);
    expect(refused.headers.get('retry-after')).toMatch(/GMT$/);
  });

  test('no Retry-After by default on the router, as reported', async () => {
    sim.setToken('hf_none', twoPerTenSeconds(undefined));
    await chatOn('hf_none');
    await chatOn('hf_none');
    const refused = await chatOn('hf_none');
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBeNull();
    expect(refused.headers.get('x-inference-provider')).toBe('together');
    expect(await refused.json()).toEqual({ error: 'Rate limit reached' });
  });

  test('legacy and Replicate bodies', async () => {
    sim.setToken('hf_legacy', twoPerTenSeconds({ body: 'hf-legacy' }));
    sim.setToken('hf_replicate', twoPerTenSeconds({ body: 'replicate' }));
    for (let i = 0; i < 2; i++) {
      await chatOn('hf_legacy');
      await chatOn('hf_replicate');
    }
    expect(await (await chatOn('hf_legacy')).json()).toEqual({ error: RATE_LIMIT_LEGACY });
    expect(await (await chatOn('hf_replicate')).json()).toEqual({
      detail: 'Request was throttled. Your rate limit resets in ~10s.',
    });
  });

  test('Together direct: x-ratelimit headers on success and on the 429, with error_type', async () => {
    sim.setToken('tgp_limited', { limits: [{ algorithm: 'fixed-window', limit: 1, windowMs: 60_000 }] });
    clock = 60_000 * 20 + 15_000;
    const url = `${sim.providerUrls.together}/v1/embeddings`;
    const ok = await post(url, 'tgp_limited', { model: BGE, input: 'a' });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('x-ratelimit-limit')).toBe('1');
    expect(ok.headers.get('x-ratelimit-remaining')).toBe('0');
    expect(ok.headers.get('x-ratelimit-reset')).toBe('45');
    const refused = await post(url, 'tgp_limited', { model: BGE, input: 'a' });
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe('45');
    const body = await refused.json();
    expect(body.error.error_type).toBe('dynamic_request_limited');
  });

  test('Cerebras direct: tokens-per-minute limit metered from prompt + max_tokens', async () => {
    sim.setToken('csk_tpm', {
      limits: [
        { algorithm: 'sliding-window', limit: 1000, windowMs: 86_400_000 },
        { algorithm: 'sliding-window', limit: 20, windowMs: 60_000, unit: 'tokens' },
      ],
    });
    const url = `${sim.providerUrls.cerebras}/v1/chat/completions`;
    const body = {
      model: 'llama3.1-8b',
      messages: [{ role: 'user', content: 'x'.repeat(40) }],
      max_tokens: 5,
    };
    const ok = await post(url, 'csk_tpm', body); // 10 prompt + 5 = 15 tokens
    expect(ok.status).toBe(200);
    expect(ok.headers.get('x-ratelimit-remaining-tokens-minute')).toBe('5');
    expect(ok.headers.get('x-ratelimit-remaining-requests-day')).toBe('999');
    clock += 30_000;
    const refused = await post(url, 'csk_tpm', body);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('x-ratelimit-reset-tokens-minute')).toBe('30');
    expect((await refused.json()).code).toBe('token_quota_exceeded');
  });

  test('a provider-wide limit is shared by every caller of the provider', async () => {
    sim.configure({
      providerLimits: { cerebras: [{ algorithm: 'fixed-window', limit: 1, windowMs: 1000 }] },
    });
    try {
      clock = 5_000;
      const url = `${sim.routerUrl}/cerebras/v1/chat/completions`;
      expect((await post(url, 'hf_shared_a', { model: 'llama3.1-8b', messages })).status).toBe(200);
      expect((await post(url, 'hf_shared_b', { model: 'llama3.1-8b', messages })).status).toBe(429);
      expect(
        (
          await post(`${sim.providerUrls.cerebras}/v1/chat/completions`, 'csk_x', {
            model: 'llama3.1-8b',
            messages,
          })
        ).status,
      ).toBe(429);
    } finally {
      sim.configure({ providerLimits: { cerebras: [] } });
    }
  });

  test('the Hub has its own fixed-window limit with IETF headers', async () => {
    sim.setToken('hf_hub', { hubLimits: [{ algorithm: 'fixed-window', limit: 2, windowMs: 300_000 }] });
    clock = 300_000 * 7 + 100_000;
    const lookup = () =>
      fetch(`${sim.hubUrl}/api/models/${BGE}?expand[]=inferenceProviderMapping`, {
        headers: { authorization: 'Bearer hf_hub' },
      });
    expect((await lookup()).headers.get('ratelimit')).toBe('"api";r=1;t=200');
    await lookup();
    const refused = await lookup();
    expect(refused.status).toBe(429);
    expect(refused.headers.get('ratelimit')).toBe('"api";r=0;t=200');
    expect(refused.headers.get('ratelimit-policy')).toBe('"fixed window";"api";q=2;w=300');
  });
});

describe('credits', () => {
  test('402 with the exact wording once the balance is spent; refused requests are free', async () => {
    sim.setToken('hf_credit', {
      label: 'credit',
      credits: { balanceUsd: 0.0003, costPerRequestUsd: 0.0001 },
    });
    const client = simClient(sim, 'hf_credit');
    for (let i = 0; i < 3; i++) await client.chatCompletion({ model: LLAMA, messages });
    const error = await client.chatCompletion({ model: LLAMA, messages }).catch((e) => e);
    expect(error.httpResponse.status).toBe(402);
    expect(error.httpResponse.body).toEqual({ error: CREDIT_MESSAGES['monthly-included-exceeded'] });
    expect(error.message).toBe(
      `Failed to perform inference: ${CREDIT_MESSAGES['monthly-included-exceeded']}`,
    );
    expect(sim.stats().credits['token:credit']).toEqual({ balanceUsd: 0, spentUsd: 0.0003 });
  });

  test('the wording is configurable, and can come as a 429', async () => {
    sim.setToken('hf_credit429', {
      credits: { balanceUsd: 0, creditMessage: 'no-remaining-credits', as402: false },
    });
    const refused = await chatOn('hf_credit429');
    expect(refused.status).toBe(429);
    expect(await refused.json()).toEqual({ error: CREDIT_MESSAGES['no-remaining-credits'] });
  });

  test('items are charged per element', async () => {
    sim.setToken('hf_items', {
      credits: { balanceUsd: 0.001, costPerRequestUsd: 0, costPerItemUsd: 0.0002 },
    });
    const client = simClient(sim, 'hf_items');
    await client.featureExtraction({ model: BGE, inputs: ['a', 'b', 'c', 'd'], provider: 'hf-inference' });
    const error = await client
      .featureExtraction({ model: BGE, inputs: ['a', 'b'], provider: 'hf-inference' })
      .catch((e) => e);
    expect(error.httpResponse.status).toBe(402);
    await expect(
      client.featureExtraction({ model: BGE, inputs: 'a', provider: 'hf-inference' }),
    ).resolves.toBeDefined();
  });

  test("a direct provider key runs out with the provider's 402, never HF wording", async () => {
    sim.setToken('tgp_poor', { credits: { balanceUsd: 0 } });
    const refused = await post(`${sim.providerUrls.together}/v1/chat/completions`, 'tgp_poor', {
      model: 'meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo',
      messages,
    });
    expect(refused.status).toBe(402);
    const body = await refused.json();
    expect(body.error.type).toBe('credit_limit');
    expect(JSON.stringify(body)).not.toContain('Inference Providers');
  });
});

describe('organisation billing (X-HF-Bill-To)', () => {
  beforeAll(() => {
    sim.setOrg('acme', { credits: { balanceUsd: 0.0002, costPerRequestUsd: 0.0001 } });
    sim.setToken('hf_member_a', { orgs: ['acme'] });
    sim.setToken('hf_member_b', { orgs: ['acme'], credits: { balanceUsd: 0 } });
  });

  test('members share the pool; the pool runs out with 402', async () => {
    const a = simClient(sim, 'hf_member_a', { billTo: 'acme' });
    const b = simClient(sim, 'hf_member_b', { billTo: 'acme' });
    await a.chatCompletion({ model: LLAMA, messages });
    await b.chatCompletion({ model: LLAMA, messages }); // b's own empty balance is not used
    const error = await a.chatCompletion({ model: LLAMA, messages }).catch((e) => e);
    expect(error.httpResponse.status).toBe(402);
    expect(sim.received({ billTo: 'acme', status: 200 })).toBe(2);
  });

  test('403 for a non-member or an unknown org', async () => {
    expect((await chatOn('hf_outsider', { 'x-hf-bill-to': 'acme' })).status).toBe(403);
    expect((await chatOn('hf_member_a', { 'x-hf-bill-to': 'ghost-org' })).status).toBe(403);
  });

  test('a direct provider ignores the header, and the leak is recorded', async () => {
    sim.resetStats();
    const client = simClient(sim, 'tgp_leaky', { billTo: 'acme' });
    await client.chatCompletion({ model: LLAMA, messages, provider: 'together' });
    const leaks = await post(`${sim.providerUrls.together}/v1/embeddings`, 'hf_wrong_place', {
      model: BGE,
      input: 'a',
    });
    expect(leaks.status).toBe(401);
    expect(sim.stats().headerLeaks).toEqual({ billToAtProvider: 1, hfTokenAtProvider: 1 });
    expect(sim.received({ route: 'provider', billTo: true })).toBe(1);
  });
});

describe('authentication', () => {
  test('revoked and missing tokens get 401; unknown tokens can be rejected', async () => {
    sim.setToken('hf_revoked', { revoked: true });
    const revoked = await chatOn('hf_revoked');
    expect(revoked.status).toBe(401);
    expect(await revoked.json()).toEqual({ error: 'Invalid credentials in Authorization header' });
    const anonymous = await fetch(`${sim.routerUrl}/v1/chat/completions`, { method: 'POST', body: '{}' });
    expect(anonymous.status).toBe(401);
    sim.configure({ unknownTokens: 'reject' });
    try {
      expect((await chatOn('hf_stranger')).status).toBe(401);
      sim.setToken('hf_friend', {});
      expect((await chatOn('hf_friend')).status).toBe(200);
    } finally {
      sim.configure({ unknownTokens: 'allow' });
    }
  });

  test('stats never hold a raw token', async () => {
    await chatOn('hf_very_secret_value');
    const stats = JSON.stringify(sim.stats());
    expect(stats).not.toContain('hf_very_secret_value');
    expect(stats).toMatch(/token-[0-9a-f]{12}/);
  });
});
