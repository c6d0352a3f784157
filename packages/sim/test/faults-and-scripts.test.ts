/** Scripted answers, random faults, latency and input caps. */
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { type FaultKind, type Sim, startSim } from '../src/index.js';
import { type CapturedResponse, simClient } from './helpers/sim-fetch.js';

const LLAMA = 'meta-llama/Llama-3.1-8B-Instruct';
const BGE = 'BAAI/bge-small-en-v1.5';
const messages = [{ role: 'user', content: 'hi' }];

let sim: Sim;
beforeAll(async () => {
  sim = await startSim();
});
afterAll(async () => {
  await sim.close();
});

const chat = (token: string): Promise<Response> =>
  fetch(`${sim.routerUrl}/together/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo', messages }),
  });

describe('scripts', () => {
  test('force an exact sequence through the client: 429 with Retry-After, 500, then normal service', async () => {
    sim.setToken('hf_scripted', { label: 'scripted' });
    sim.script('hf_scripted', [{ status: 429, retryAfter: 2 }, { status: 500 }, { status: 200 }]);
    const seen: CapturedResponse[] = [];
    const client = simClient(sim, 'hf_scripted', { seen });
    const first = await client.chatCompletion({ model: LLAMA, messages }).catch((e) => e);
    expect(first.httpResponse.status).toBe(429);
    expect(first.httpResponse.body).toEqual({ error: 'Rate limit reached' });
    expect(seen.at(-1)?.headers.get('retry-after')).toBe('2');
    const second = await client.chatCompletion({ model: LLAMA, messages }).catch((e) => e);
    expect(second.httpResponse.status).toBe(500);
    expect(second.httpResponse.body).toEqual({ error: 'Internal Server Error' });
    await expect(client.chatCompletion({ model: LLAMA, messages })).resolves.toBeDefined();
    await expect(client.chatCompletion({ model: LLAMA, messages })).resolves.toBeDefined();
    expect(sim.received({ tokenLabel: 'scripted', scripted: true })).toBe(3);
    expect(sim.received({ tokenLabel: 'scripted' })).toBe(4); // the auto-router needs no Hub lookup
  });

  test('custom status, headers and body, including request-too-large', async () => {
    sim.script('hf_custom', [
      { status: 429, headers: { 'X-RateLimit-Reset': '7' }, body: { detail: 'slow down' } },
      { status: 413, body: { error: 'Input too large' } },
      { status: 422, body: 'plain words' },
    ]);
    const throttled = await chat('hf_custom');
    expect(throttled.status).toBe(429);
    expect(throttled.headers.get('x-ratelimit-reset')).toBe('7');
    expect(await throttled.json()).toEqual({ detail: 'slow down' });
    const tooLarge = await chat('hf_custom');
    expect(tooLarge.status).toBe(413);
    expect(await tooLarge.json()).toEqual({ error: 'Input too large' });
    const unprocessable = await chat('hf_custom');
    expect(unprocessable.status).toBe(422);
    expect(unprocessable.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await unprocessable.text()).toBe('plain words');
  });

  test('a hang is ended by the client aborting', async () => {
    sim.script('hf_hang', [{ fault: 'hang' }]);
    const client = simClient(sim, 'hf_hang');
    const abort = new AbortController();
    const pending = client.chatCompletion({ model: LLAMA, messages }, { signal: abort.signal });
    await vi.waitFor(() => expect(sim.stats().hanging).toBe(1));
    abort.abort();
    await expect(pending).rejects.toThrow();
    await vi.waitFor(() => expect(sim.received({ fault: 'hang' })).toBe(1));
    expect(sim.requests({ fault: 'hang' })[0]?.status).toBe(0);
    expect(sim.stats().hanging).toBe(0);
  });

  test('close() ends hung requests', async () => {
    const own = await startSim({ faults: { hangRate: 1 } });
    const pending = fetch(`${own.routerUrl}/cerebras/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: 'Bearer hf_x', 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'llama3.1-8b', messages }),
    });
    await vi.waitFor(() => expect(own.stats().hanging).toBe(1));
    await own.close();
    await expect(pending).rejects.toThrow();
  });
});

describe('random faults', () => {
  const cases: Array<[FaultKind, (response: Response) => Promise<void>]> = [
    [
      'error5xx',
      async (response) => {
        expect(response.status).toBe(500);
        expect(await response.json()).toEqual({ error: 'Internal Server Error' });
      },
    ],
    [
      'overloaded',
      async (response) => {
        expect(response.status).toBe(503);
        expect(await response.text()).toBe('Service Temporarily Unavailable');
      },
    ],
    [
      'garbage',
      async (response) => {
        expect(response.status).toBe(200);
        expect(response.headers.get('content-type')).toMatch(/^application\/json/);
        await expect(response.json()).rejects.toThrow(SyntaxError);
      },
    ],
    [
      'html',
      async (response) => {
        expect(response.status).toBe(502);
        expect(await response.text()).toContain('<h1>502 Bad Gateway</h1>');
      },
    ],
    [
      'truncated-json',
      async (response) => {
        expect(response.status).toBe(200);
        const text = await response.text();
        expect(text.startsWith('{"id":"chatcmpl-')).toBe(true);
        expect(() => JSON.parse(text)).toThrow(SyntaxError);
      },
    ],
    [
      'oversized',
      async (response) => {
        expect(response.status).toBe(200);
        expect((await response.arrayBuffer()).byteLength).toBe(300_000);
      },
    ],
  ];

  test.each(cases)('%s', async (kind, check) => {
    const rateField = {
      error5xx: 'error5xxRate',
      overloaded: 'overloadedRate',
      garbage: 'garbageRate',
      html: 'htmlRate',
      'truncated-json': 'truncatedJsonRate',
      oversized: 'oversizedRate',
      hang: 'hangRate',
      reset: 'resetRate',
    }[kind];
    sim.setToken(`hf_fault_${kind}`, { faults: { [rateField]: 1, oversizedBytes: 300_000 } });
    await check(await chat(`hf_fault_${kind}`));
    expect(sim.received({ fault: kind })).toBeGreaterThanOrEqual(1);
  });

  test('reset destroys the socket', async () => {
    sim.setToken('hf_fault_reset', { faults: { resetRate: 1 } });
    await expect(chat('hf_fault_reset')).rejects.toThrow();
    await vi.waitFor(() => expect(sim.received({ fault: 'reset', status: 0 })).toBe(1));
  });

  test('legacy model-loading 503 keeps estimated_time as 20.0', async () => {
    sim.setToken('hf_loading', { faults: { overloadedRate: 1, overloadedStyle: 'loading' } });
    const response = await chat('hf_loading');
    expect(response.status).toBe(503);
    expect(await response.text()).toBe(
      `{"error":"Model ${LLAMA} is currently loading","estimated_time":20.0}`,
    );
  });

  test('the same seed gives the same fault sequence', async () => {
    const statuses = async (): Promise<number[]> => {
      const own = await startSim({ seed: 7, faults: { error5xxRate: 0.5 } });
      try {
        const result: number[] = [];
        for (let i = 0; i < 20; i++) {
          const response = await fetch(`${own.routerUrl}/together/v1/embeddings`, {
            method: 'POST',
            headers: { authorization: 'Bearer hf_seeded', 'content-type': 'application/json' },
            body: JSON.stringify({ model: BGE, input: 'a' }),
          });
          await response.arrayBuffer();
          result.push(response.status);
        }
        return result;
      } finally {
        await own.close();
      }
    };
    const first = await statuses();
    expect(first).toEqual(await statuses());
    expect(first).toContain(500);
    expect(first).toContain(200);
  });
});

describe('latency and input size', () => {
  test('latency applies base plus per-item cost', async () => {
    sim.setToken('hf_slow', { label: 'slow', latency: { baseMs: 30, perItemMs: 10 } });
    const client = simClient(sim, 'hf_slow');
    await client.featureExtraction({ model: BGE, inputs: ['a', 'b', 'c'], provider: 'hf-inference' });
    const record = sim.requests({ route: 'router', tokenLabel: 'slow' }).at(-1);
    expect(record?.items).toBe(3);
    expect(record?.durationMs).toBeGreaterThanOrEqual(59);
  });

  test('an array over maxItemsPerRequest gets 413 (or 422)', async () => {
    sim.configure({ maxItemsPerRequest: 2 });
    try {
      const client = simClient(sim, 'hf_big');
      const error = await client
        .featureExtraction({ model: BGE, inputs: ['a', 'b', 'c'], provider: 'hf-inference' })
        .catch((e) => e);
      expect(error.httpResponse.status).toBe(413);
      expect(error.httpResponse.body).toEqual({
        error: 'Input validation error: batch size 3 > maximum allowed batch size 2',
        error_type: 'Validation',
      });
      sim.configure({ tooLargeStatus: 422 });
      const again = await client
        .featureExtraction({ model: BGE, inputs: ['a', 'b', 'c'], provider: 'hf-inference' })
        .catch((e) => e);
      expect(again.httpResponse.status).toBe(422);
      await expect(
        client.featureExtraction({ model: BGE, inputs: ['a', 'b'], provider: 'hf-inference' }),
      ).resolves.toHaveLength(2);
    } finally {
      sim.configure({ maxItemsPerRequest: null, tooLargeStatus: 413 });
    }
  });
});
