/** Simulated Inference Endpoints through the official client's `endpointUrl`, and their management API. */
import { InferenceClient, InferenceClientProviderApiError } from '@huggingface/inference';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { waitFor } from '../../../test/support/wait.js';
import { expectedEmbedding, INVALID_STATE, type Sim, startSim } from '../src/index.js';

const TOKEN = 'hf_endpointowner';
const client = new InferenceClient(TOKEN, { retry_on_error: false });

let sim: Sim;
beforeAll(async () => {
  sim = await startSim();
});
afterAll(async () => {
  await sim.close();
});

async function statusOf(promise: Promise<unknown>): Promise<number> {
  try {
    await promise;
    return 200;
  } catch (error) {
    if (error instanceof InferenceClientProviderApiError) return error.httpResponse.status;
    throw error;
  }
}

function embed(name: string, text = 'hello', headers?: Record<string, string>) {
  const fetchWith: typeof fetch = (input, init) =>
    fetch(input, { ...init, headers: { ...(init?.headers as Record<string, string>), ...headers } });
  return client.featureExtraction(
    { endpointUrl: sim.endpointUrl(name), model: 'sim/embedder', inputs: text },
    { fetch: fetchWith },
  );
}

async function manage(name: string, action?: string, token = TOKEN): Promise<Response> {
  return fetch(`${sim.endpointsApiUrl}/v2/endpoint/sim/${name}${action ? `/${action}` : ''}`, {
    method: action ? 'POST' : 'GET',
    headers: token ? { Authorization: `Bearer ${token}` } : {},
  });
}

describe('serving', () => {
  test('answers task payloads like the router (embeddings, chat) through endpointUrl', async () => {
    sim.setEndpoint('emb', { model: 'sim/embedder', task: 'feature-extraction' });
    expect(await embed('emb', 'hello')).toEqual(expectedEmbedding('hello', 8));
    sim.setEndpoint('chat', { model: 'sim/chat', task: 'chat-completion' });
    const chat = await client.chatCompletion({
      endpointUrl: sim.endpointUrl('chat'),
      model: 'sim/chat',
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(chat.choices[0]?.message.content).toBeTruthy();
  });

  test('never holds more than replicas × slots in flight, and answers 429 past that', async () => {
    sim.setEndpoint('small', { replicas: 2, slotsPerReplica: 3, latency: { baseMs: 400 } });
    const statuses = await Promise.all(
      Array.from({ length: 12 }, (_, i) => statusOf(embed('small', `t${i}`))),
    );
    const stats = sim.endpointStats('small');
    expect(stats.capacity).toBe(6);
    expect(stats.maxInFlight).toBe(6);
    const ok = statuses.filter((s) => s === 200).length;
    expect(ok).toBeGreaterThanOrEqual(6);
    expect(ok).toBeLessThan(12);
    expect(stats.byStatus).toEqual({ '200': ok, '429': 12 - ok });
  });

  test('latency grows with the requests in flight', async () => {
    sim.setEndpoint('loaded', { slotsPerReplica: 8, latency: { baseMs: 10, perInFlightMs: 30 } });
    const one = performance.now();
    await embed('loaded');
    const alone = performance.now() - one;
    const start = performance.now();
    const ends = await Promise.all(
      Array.from({ length: 6 }, async (_, i) => {
        await embed('loaded', `x${i}`);
        return performance.now() - start;
      }),
    );
    // The last admitted of six waits 10 + 5 × 30 ms of simulated work.
    expect(Math.max(...ends)).toBeGreaterThanOrEqual(160);
    expect(alone).toBeLessThan(Math.max(...ends));
  });

  test('rejects a missing or foreign token with 401', async () => {
    sim.setEndpoint('private', { token: 'hf_only' });
    expect(await statusOf(embed('private'))).toBe(401);
  });
});

describe('state', () => {
  test('scaled to zero: 503 while a replica starts, then serves; the 503 itself wakes it', async () => {
    sim.setEndpoint('cold', { initialState: 'scaledToZero', coldStartMs: 300 });
    expect(await statusOf(embed('cold'))).toBe(503);
    expect(sim.endpointStats('cold').state).toBe('initializing');
    await waitFor(() => sim.endpointStats('cold').state === 'running', 'the replica to start');
    expect(await statusOf(embed('cold'))).toBe(200);
    expect(sim.endpointStats('cold').wakeRequests).toBe(1);
  });

  test('X-Scale-Up-Timeout holds the request until a replica is ready', async () => {
    sim.setEndpoint('held', { initialState: 'scaledToZero', coldStartMs: 300 });
    const started = performance.now();
    expect(await statusOf(embed('held', 'x', { 'X-Scale-Up-Timeout': '10' }))).toBe(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(290);
    expect(sim.endpointStats('held').maxWakingInFlight).toBe(1);
  });

  test('scales to zero after the idle time', async () => {
    sim.setEndpoint('idle', { idleScaleToZeroMs: 150 });
    expect(await statusOf(embed('idle'))).toBe(200);
    await waitFor(() => sim.endpointStats('idle').state === 'scaledToZero', 'idle scale-to-zero');
    expect(sim.endpointStats('idle').stateChanges.at(-1)?.by).toBe('idle');
  });

  test('paused answers 400 "Invalid state" until resumed through the management API', async () => {
    sim.setEndpoint('paused', { initialState: 'paused', coldStartMs: 100 });
    try {
      await embed('paused');
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(InferenceClientProviderApiError);
      const { status, body } = (error as InferenceClientProviderApiError).httpResponse;
      expect(status).toBe(400);
      expect(JSON.stringify(body)).toContain(INVALID_STATE);
    }
    const resumed = await manage('paused', 'resume');
    expect(resumed.status).toBe(200);
    expect(((await resumed.json()) as { status: { state: string } }).status.state).toBe('initializing');
    await waitFor(async () => {
      const body = (await (await manage('paused')).json()) as { status: { state: string } };
      return body.status.state === 'running';
    }, 'running after resume');
    expect(await statusOf(embed('paused'))).toBe(200);
  });
});

describe('management API', () => {
  test('needs a bearer token, knows its endpoints, and pauses and scales to zero', async () => {
    sim.setEndpoint('managed', { token: TOKEN });
    expect((await manage('managed', undefined, '')).status).toBe(401);
    expect((await manage('managed', undefined, 'hf_other')).status).toBe(401);
    expect((await manage('nobody')).status).toBe(404);
    const state = async () =>
      ((await (await manage('managed')).json()) as { status: { state: string } }).status.state;
    expect(await state()).toBe('running');
    await manage('managed', 'scale-to-zero');
    expect(await state()).toBe('scaledToZero');
    await manage('managed', 'pause');
    expect(await state()).toBe('paused');
    expect(sim.endpointStats('managed').management).toMatchObject({ pause: 1, 'scale-to-zero': 1 });
  });

  test('a simulator process is configured and read over /_sim/endpoints', async () => {
    const set = await fetch(`${sim.url}/_sim/endpoints`, {
      method: 'POST',
      body: JSON.stringify({ name: 'remote', config: { replicas: 3 } }),
    });
    expect(set.status).toBe(200);
    const bad = await fetch(`${sim.url}/_sim/endpoints`, {
      method: 'POST',
      body: JSON.stringify({ name: 'remote', config: { replicas: 0 } }),
    });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain('replicas');
    const stats = (await (await fetch(`${sim.url}/_sim/endpoints`)).json()) as Record<
      string,
      { capacity: number }
    >;
    expect(stats.remote?.capacity).toBe(12);
  });
});
