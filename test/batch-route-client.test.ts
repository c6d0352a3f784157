/**
 * The worker's provider batch API client against the simulator over HTTP: JSONL within limits,
 * both providers' shapes, results by custom_id in any order, failures classified like real-time
 * answers, and the key kept out of every error.
 */
import { CreditsExhaustedError, type Job, KeyRefusedError, TransientUpstreamError } from '@hfq/shared';
import { expectedChatContent, expectedEmbedding } from '@hfq/sim';
import { beforeEach, describe, expect, test } from 'vitest';
import {
  type BatchApiTarget,
  batchApiTargetFor,
  ProviderBatchClient,
} from '../packages/worker/src/batch-route/batch-api-client.js';
import {
  batchRequestFor,
  customIdFor,
  jsonlLine,
  splitIntoFiles,
} from '../packages/worker/src/batch-route/batch-requests.js';
import { readBatchResults } from '../packages/worker/src/batch-route/batch-results.js';
import {
  BatchShapeError,
  readBatchList,
  readBatchView,
} from '../packages/worker/src/batch-route/batch-view.js';
import { simForFile } from './support/sim-clock.js';

const MINUTE = 60_000;
const LLAMA = 'meta-llama/Llama-3.1-8B-Instruct';
const chatJob = (text: string): Job => ({
  account: 'acme',
  task: 'chat-completion',
  model: LLAMA,
  messages: [{ role: 'user', content: text }],
  parameters: { max_tokens: 16 },
});

let clock = 0;
const sim = simForFile(() => clock);
beforeEach(() => {
  clock = 1_000_000;
  sim.configure({
    unknownTokens: 'allow',
    batchApi: { turnaround: { kind: 'fixed', ms: 10 * MINUTE }, failureShare: 0, timeScale: 1 },
  });
});

const cerebras = (): BatchApiTarget => ({
  provider: 'cerebras',
  baseUrl: sim.providerUrls.cerebras,
  style: 'openai',
  limits: { maxRequests: 50_000, maxBytes: 200_000_000 },
});

describe('input files', () => {
  test('a job id a provider would refuse as custom_id becomes a stable short hash', () => {
    expect(customIdFor('batch-7-12')).toBe('batch-7-12');
    const long = `b-${'x'.repeat(80)}-3`;
    expect(customIdFor(long)).toMatch(/^hfq-[0-9a-f]{40}$/);
    expect(customIdFor(long)).toBe(customIdFor(long));
    expect(customIdFor('has space')).not.toBe('has space');
  });

  test('split by request count and by bytes, in order, and refuse a line over the byte cap', () => {
    const requests = Array.from({ length: 10 }, (_, i) => batchRequestFor(`j${i}`, chatJob(`p${i}`), 'm'));
    const bytes = Buffer.byteLength(jsonlLine(requests[0] as (typeof requests)[0]));
    const byCount = splitIntoFiles(requests, { maxRequests: 4, maxBytes: 1e9 });
    expect(byCount.map((file) => file.length)).toEqual([4, 4, 2]);
    expect(byCount.flat().map((r) => r.jobId)).toEqual(requests.map((r) => r.jobId));
    const byBytes = splitIntoFiles(requests, { maxRequests: 100, maxBytes: bytes * 3 });
    expect(byBytes.map((file) => file.length)).toEqual([3, 3, 3, 1]);
    for (const file of byBytes)
      expect(Buffer.byteLength(file.map(jsonlLine).join(''))).toBeLessThanOrEqual(bytes * 3);
    expect(() => splitIntoFiles(requests, { maxRequests: 100, maxBytes: bytes - 1 })).toThrow(
      /over the .*-byte file limit/,
    );
  });

  test('the known targets follow the configured upstream', () => {
    expect(
      batchApiTargetFor('together', { providerUrls: { together: sim.providerUrls.together } }),
    ).toMatchObject({
      baseUrl: sim.providerUrls.together,
      style: 'together',
    });
    expect(batchApiTargetFor('groq')?.baseUrl).toBe('https://api.groq.com/openai');
    expect(batchApiTargetFor('hf-inference')).toBeUndefined();
  });
});

describe('finding a batch', () => {
  test('page by page, newest first, until one matches or they are older than asked', async () => {
    const client = new ProviderBatchClient(cerebras(), 'key-pages');
    const file = await client.upload(jsonlLine(batchRequestFor('p', chatJob('p'), 'llama3.1-8b')), 'p.jsonl');
    const made = [];
    for (let i = 0; i < 230; i++)
      made.push(await client.create(file.id, '/v1/chat/completions', { n: String(i) }));
    const first = await client.list();
    expect(first).toMatchObject({ hasMore: true, lastId: made[130]?.id });
    expect(first.batches).toHaveLength(100);
    const oldest = await client.find((batch) => batch.metadata?.n === '3', 0);
    expect(oldest?.id).toBe(made[3]?.id);
    expect(await client.find((batch) => batch.metadata?.n === 'none', 0)).toBeUndefined();
    // Batches older than `sinceSec` end the search on the first page.
    expect(
      await client.find((batch) => batch.metadata?.n === '3', Math.floor(Date.now() / 1000) + 60),
    ).toBeUndefined();
  });
});

describe('reading answers', () => {
  test('both batch shapes, and what is not a batch', () => {
    expect(
      readBatchView({
        id: 'b1',
        status: 'finalizing',
        request_counts: { total: 4, completed: 2, failed: 1 },
      }),
    ).toMatchObject({ id: 'b1', status: 'finalizing', terminal: false, progress: 75 });
    expect(
      readBatchView({
        job: { id: 'b2', status: 'EXPIRED', progress: 40, output_file_id: 'f-out' },
        warning: null,
      }),
    ).toMatchObject({ id: 'b2', status: 'expired', terminal: true, progress: 40, outputFileId: 'f-out' });
    expect(() => readBatchView({ id: 'b3', status: 'DONE' })).toThrow(BatchShapeError);
    expect(() => readBatchView([])).toThrow(/not a JSON object/);
    const together = readBatchList([{ id: 'b4', status: 'CANCELLED', created_at: '2026-12-06T12:00:00Z' }]);
    expect(together).toMatchObject({ hasMore: false, lastId: 'b4' });
    expect(together.batches[0]).toMatchObject({
      status: 'cancelled',
      createdAtSec: Date.parse('2026-12-06T12:00:00Z') / 1000,
    });
    const page = readBatchList({
      object: 'list',
      data: [{ id: 'b5', status: 'completed', created_at: 7, metadata: { hfq_record: 'r' } }],
      has_more: true,
      last_id: 'b5',
    });
    expect(page).toMatchObject({
      hasMore: true,
      lastId: 'b5',
      batches: [{ createdAtSec: 7, metadata: { hfq_record: 'r' } }],
    });
  });

  test('result lines: matched by custom_id (hashed ids too), unknown and broken lines counted, a line that never ran retries', () => {
    const long = `batch-${'y'.repeat(70)}-1`;
    const lines = [
      { custom_id: customIdFor(long), response: { status_code: 200, body: { answer: 1 } }, error: null },
      {
        custom_id: 'j2',
        response: null,
        error: {
          code: 'batch_expired',
          message: 'This request could not be executed before the completion window expired.',
        },
      },
      {
        custom_id: 'j3',
        response: { status_code: 401, body: { error: { message: 'bad key' } } },
        error: null,
      },
      { custom_id: 'stranger', response: { status_code: 200, body: {} }, error: null },
    ];
    const text = `${lines.map((line) => JSON.stringify(line)).join('\n')}\nnot json\n`;
    const { byJob, unknownLines } = readBatchResults([long, 'j2', 'j3'], [text], 'together');
    expect(unknownLines).toBe(2);
    expect(byJob.get(long)).toEqual({ ok: true, output: { answer: 1 } });
    const expired = byJob.get('j2') as { ok: false; error: Error };
    expect(expired.error).toBeInstanceOf(TransientUpstreamError);
    expect(expired.error.message).toMatch(/did not run: This request could not be executed/);
    expect((byJob.get('j3') as { ok: false; error: Error }).error).toBeInstanceOf(KeyRefusedError);
  });
});

describe('a batch through the client', () => {
  test.each([
    ['cerebras (OpenAI shape)', 'cerebras', 'llama3.1-8b'],
    ['together (Together shape)', 'together', 'meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo'],
  ] as const)(
    '%s: upload, create, poll, download; every job gets its own answer',
    async (_, provider, model) => {
      const target =
        provider === 'together'
          ? (batchApiTargetFor('together', {
              providerUrls: { together: sim.providerUrls.together },
            }) as BatchApiTarget)
          : cerebras();
      const client = new ProviderBatchClient(target, `key-${provider}-round-trip`);
      const jobIds = Array.from({ length: 25 }, (_, i) => `acme-job-${i}`);
      const requests = jobIds.map((id) => batchRequestFor(id, chatJob(`question ${id}`), model));
      const file = await client.upload(requests.map(jsonlLine).join(''), 'plan.jsonl');
      const created = await client.create(file.id, '/v1/chat/completions', { hfq_record: 'r1' });
      expect(created).toMatchObject({
        status: 'in_progress',
        terminal: false,
        inputFileId: file.id,
        progress: 0,
      });
      clock += 5 * MINUTE;
      const half = await client.get(created.id);
      expect(half.progress).toBeGreaterThan(0);
      expect(half.progress).toBeLessThan(100);
      clock += 5 * MINUTE;
      const done = await client.get(created.id);
      expect(done).toMatchObject({ status: 'completed', terminal: true, errorFileId: undefined });
      const output = await client.download(done.outputFileId as string);
      const order = output
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line).custom_id);
      expect(order).not.toEqual(jobIds); // any order: results are matched by custom_id
      const { byJob, unknownLines } = readBatchResults(jobIds, [output], provider);
      expect(unknownLines).toBe(0);
      expect(byJob.size).toBe(25);
      for (const id of jobIds) {
        const result = byJob.get(id);
        expect(result?.ok).toBe(true);
        const content = (result as { output: { choices: { message: { content: string } }[] } }).output
          .choices[0]?.message.content;
        expect(content).toBe(expectedChatContent([{ role: 'user', content: `question ${id}` }]));
      }
      expect((await client.list()).batches.map((batch) => batch.id)).toContain(created.id);
    },
  );

  test('embeddings at Together', async () => {
    const target = batchApiTargetFor('together', { providerUrls: { together: sim.providerUrls.together } });
    const client = new ProviderBatchClient(target as BatchApiTarget, 'key-together-embed');
    const job: Job = {
      account: 'acme',
      task: 'feature-extraction',
      model: 'BAAI/bge-small-en-v1.5',
      inputs: 'hello',
    };
    const request = batchRequestFor('e1', job, 'BAAI/bge-small-en-v1.5');
    const file = await client.upload(jsonlLine(request), 'e.jsonl');
    const created = await client.create(file.id, request.endpoint, {});
    clock += 10 * MINUTE;
    const done = await client.get(created.id);
    const { byJob } = readBatchResults(
      ['e1'],
      [await client.download(done.outputFileId as string)],
      'together',
    );
    const output = (byJob.get('e1') as { ok: true; output: { data: { embedding: number[] }[] } }).output;
    expect(output.data[0]?.embedding).toEqual(expectedEmbedding('hello', 8));
  });

  test("failed lines come back classified: a 5xx retries, a 402 is the key's credits", async () => {
    sim.configure({ batchApi: { failureShare: 0.5 } });
    sim.setToken('key-fail-share', { credits: { balanceUsd: 0.0005 } }); // ten lines at half of 0.0001
    const client = new ProviderBatchClient(cerebras(), 'key-fail-share');
    const jobIds = Array.from({ length: 40 }, (_, i) => `f-${i}`);
    const file = await client.upload(
      jobIds.map((id) => jsonlLine(batchRequestFor(id, chatJob(id), 'llama3.1-8b'))).join(''),
      'f.jsonl',
    );
    const created = await client.create(file.id, '/v1/chat/completions', {});
    clock += 10 * MINUTE;
    const done = await client.get(created.id);
    const files = [
      await client.download(done.outputFileId as string),
      await client.download(done.errorFileId as string),
    ];
    const { byJob } = readBatchResults(jobIds, files, 'cerebras');
    expect(byJob.size).toBe(40);
    const results = [...byJob.values()];
    const errors = results.flatMap((result) => (result.ok ? [] : [result.error]));
    expect(results.filter((result) => result.ok)).toHaveLength(10);
    expect(
      errors.some((error) => error instanceof TransientUpstreamError && error.retryClass === 'retry'),
    ).toBe(true);
    expect(errors.some((error) => error instanceof CreditsExhaustedError && error.info.status === 402)).toBe(
      true,
    );
    expect(
      errors.every(
        (error) => error instanceof TransientUpstreamError || error instanceof CreditsExhaustedError,
      ),
    ).toBe(true);
  });

  test("the key's 401 and 402 are classified as on the real-time route, and the key is in no error", async () => {
    const secret = 'csk-VERY-SECRET-batch-key-0001';
    sim.setToken(secret, { revoked: true });
    const refused = new ProviderBatchClient(cerebras(), secret);
    const error = await refused.upload('{}\n', 'x.jsonl').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KeyRefusedError);
    expect((error as KeyRefusedError).retryClass).toBe('hold');
    expect((error as KeyRefusedError).info.status).toBe(401);
    expect(String((error as Error).message)).toMatch(/^batch API upload: provider cerebras answered 401/);

    sim.setToken(secret, { credits: { balanceUsd: 0 } });
    const broke = await refused.create('file-x', '/v1/chat/completions', {}).catch((e: unknown) => e);
    expect(broke).toBeInstanceOf(CreditsExhaustedError);
    expect((broke as CreditsExhaustedError).info.status).toBe(402);

    const unreachable = new ProviderBatchClient(
      { ...cerebras(), baseUrl: `http://127.0.0.1:1/${secret}` },
      secret,
    );
    const network = await unreachable.get('b1').catch((e: unknown) => e);
    expect(network).toBeInstanceOf(TransientUpstreamError);
    for (const failure of [error, broke, network]) {
      const text = `${(failure as Error).message} ${JSON.stringify(failure)} ${(failure as Error).stack}`;
      expect(text).not.toContain(secret);
    }
  });
});
