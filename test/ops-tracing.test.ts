import type { AccountConfigInput } from '@hfq/shared';
import { SpanStatusCode, trace } from '@opentelemetry/api';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { BullMQOtel } from 'bullmq-otel';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatJob, silentLogger } from './ops-support.js';
import { expectNoSecrets, startStack, upstreamOf } from './support/stack.js';
import { waitFor } from './support/wait.js';

/**
 * Tracing with the real OpenTelemetry SDK (an in-memory exporter): BullMQ's own spans through
 * `bullmq-otel`, and hfq's span per upstream call with its route, provider, status and throttle wait,
 * on every route (the router, and an Inference Endpoint through the same call path).
 */

const TOKEN = 'hf_tracing_acme_0123456789abcdef';
const ACCOUNTS: AccountConfigInput[] = [
  { id: 'acme', tier: 'pro', hfToken: TOKEN, limit: { max: 20, durationMs: 1000 } },
];

describe('tracing: a span per upstream call', () => {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });

  beforeAll(() => {
    trace.setGlobalTracerProvider(provider);
  });

  afterAll(async () => {
    await provider.shutdown();
    trace.disable();
  });

  it('records an upstream span for a 429 and for the success that follows, with BullMQ spans beside them', async () => {
    const stack = await startStack({
      label: 'tracing',
      sim: { latency: { baseMs: 0, jitterMs: 0 } },
      tokens: { [TOKEN]: { label: 'acme' } },
      accounts: ACCOUNTS,
    });
    await stack.startWorker({
      logger: silentLogger(),
      telemetry: new BullMQOtel({ tracerName: 'hfq-test' }),
    });
    stack.sim.script(TOKEN, [{ status: 429, retryAfter: 1 }]);
    const producer = stack.newProducer();
    const handle = await producer.enqueue(chatJob('acme', 'trace me'));
    await handle.result({ timeoutMs: 30_000 });
    await producer.close();
    const upstream = () =>
      exporter.getFinishedSpans().filter((s) => s.name === 'hfq upstream chat-completion');
    await waitFor(() => upstream().length === 2, 'two upstream spans');
    const [throttled, ok] = upstream();
    expect(throttled?.attributes).toMatchObject({
      'hfq.account': 'acme',
      'hfq.route': 'hf-router',
      'http.response.status_code': 429,
      'hfq.retry_class': 'throttle',
    });
    expect(throttled?.status.code).toBe(SpanStatusCode.ERROR);
    expect(ok?.attributes).toMatchObject({
      'hfq.account': 'acme',
      'hfq.route': 'hf-router',
      'http.response.status_code': 200,
    });
    expect(typeof ok?.attributes['hfq.provider']).toBe('string');
    // The time each call waited for its permit (the 429's pause itself is a delay of the job).
    for (const span of [throttled, ok]) expect(span?.attributes['hfq.throttle_wait_ms']).toBeTypeOf('number');
    // BullMQ's own spans (add, process) come from the same SDK through bullmq-otel.
    const names = new Set(exporter.getFinishedSpans().map((s) => s.name));
    expect([...names].some((n) => n.startsWith('process'))).toBe(true);
    expectNoSecrets(JSON.stringify(exporter.getFinishedSpans().map((s) => s.attributes)), [TOKEN], 'spans');
  });

  it('records the span of an Inference Endpoint call too, named by its route and endpoint', async () => {
    const model = 'BAAI/bge-small-en-v1.5';
    const stack = await startStack({
      label: 'tracing-ep',
      sim: { latency: { baseMs: 0, jitterMs: 0 } },
      tokens: { [TOKEN]: { label: 'acme' } },
    });
    stack.sim.setEndpoint('emb', { model });
    const account: AccountConfigInput = {
      id: 'acme',
      tier: 'pro',
      hfToken: TOKEN,
      limit: { max: 20, durationMs: 1000 },
      routing: 'endpoint-only',
      endpoints: [{ name: 'emb', url: stack.sim.endpointUrl('emb'), models: [model], concurrency: 2 }],
    };
    await stack.startWorker({
      logger: silentLogger(),
      accounts: [account],
      upstream: { ...upstreamOf(stack.sim), endpointsApiUrl: stack.sim.endpointsApiUrl },
    });
    const producer = stack.newProducer();
    const handle = await producer.enqueue({
      account: 'acme',
      task: 'feature-extraction',
      model,
      inputs: 'trace the endpoint',
    });
    const result = await handle.result({ timeoutMs: 30_000 });
    await producer.close();
    expect(result).toMatchObject({ route: 'endpoint', provider: 'endpoint:emb', attempts: 1 });
    const spans = () =>
      exporter
        .getFinishedSpans()
        .filter(
          (s) => s.name === 'hfq upstream feature-extraction' && s.attributes['hfq.route'] === 'endpoint',
        );
    await waitFor(() => spans().length === 1, 'one endpoint span');
    expect(spans()[0]?.attributes).toMatchObject({
      'hfq.account': 'acme',
      'hfq.route': 'endpoint',
      'hfq.provider': 'emb',
      'http.response.status_code': 200,
    });
    expect(spans()[0]?.attributes['hfq.throttle_wait_ms']).toBeTypeOf('number');
    expectNoSecrets(JSON.stringify(spans().map((s) => s.attributes)), [TOKEN], 'spans');
  });
});
