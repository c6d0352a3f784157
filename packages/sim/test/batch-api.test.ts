/** The providers' batch API over HTTP, in both shapes, on an injected clock (no sleeping). */
import { beforeEach, describe, expect, test } from 'vitest';
import { simForFile } from '../../../test/support/sim-clock.js';
import { expectedChatContent, SimConfigError } from '../src/index.js';

const CEREBRAS_MODEL = 'llama3.1-8b';
const TOGETHER_MODEL = 'meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo';
const MINUTE = 60_000;
// biome-ignore lint/suspicious/noExplicitAny: answers are read field by field, as the provider's JSON
type Answer = Record<string, any>;

let clock = 0;
const sim = simForFile(() => clock);
beforeEach(() => {
  clock = 1_000_000;
  sim.configure({
    batchApi: {
      turnaround: { kind: 'fixed', ms: 10 * MINUTE },
      validatingMs: 0,
      failureShare: 0,
      priceShare: 0.5,
      timeScale: 1,
      completionWindowMs: 24 * 60 * MINUTE,
      maxRequestsPerFile: 50_000,
      maxFileBytes: 200_000_000,
      answerDelayMs: { upload: 0, create: 0, download: 0 },
    },
  });
  sim.resetStats();
});

type Provider = 'together' | 'cerebras';
const base = (provider: Provider) => sim.providerUrls[provider];
const auth = (key: string) => ({ authorization: `Bearer ${key}` });

const chatLine = (id: string, model: string, text = `prompt ${id}`) => ({
  custom_id: id,
  method: 'POST',
  url: '/v1/chat/completions',
  body: { model, messages: [{ role: 'user', content: text }], max_tokens: 16 },
});
const jsonl = (lines: unknown[]) => `${lines.map((line) => JSON.stringify(line)).join('\n')}\n`;

async function upload(provider: Provider, key: string, text: string, path = '/v1/files'): Promise<Response> {
  const form = new FormData();
  form.set('purpose', path.endsWith('upload') ? 'batch-api' : 'batch');
  if (path.endsWith('upload')) form.set('file_name', 'in.jsonl');
  form.set('file', new Blob([text], { type: 'application/jsonl' }), 'in.jsonl');
  return fetch(`${base(provider)}${path}`, { method: 'POST', headers: auth(key), body: form });
}

async function json(response: Response): Promise<Answer> {
  expect(response.headers.get('content-type')).toContain('json');
  return (await response.json()) as Answer;
}

async function createBatch(provider: Provider, key: string, fileId: string, extra: object = {}) {
  return fetch(`${base(provider)}/v1/batches`, {
    method: 'POST',
    headers: { ...auth(key), 'content-type': 'application/json' },
    body: JSON.stringify({
      input_file_id: fileId,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
      ...extra,
    }),
  });
}

const getBatch = async (provider: Provider, key: string, id: string) =>
  json(await fetch(`${base(provider)}/v1/batches/${id}`, { headers: auth(key) }));

async function content(provider: Provider, key: string, fileId: string): Promise<Answer[]> {
  const response = await fetch(`${base(provider)}/v1/files/${fileId}/content`, { headers: auth(key) });
  expect(response.status).toBe(200);
  const text = await response.text();
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Answer);
}

/** Upload and create an OpenAI-shaped batch of `n` chat lines at Cerebras; the batch object. */
async function openAiBatch(key: string, n: number): Promise<Answer> {
  const ids = Array.from({ length: n }, (_, i) => `job-${i}`);
  const file = await json(
    await upload('cerebras', key, jsonl(ids.map((id) => chatLine(id, CEREBRAS_MODEL)))),
  );
  const created = await createBatch('cerebras', key, file.id);
  expect(created.status).toBe(200);
  return json(created);
}

describe('OpenAI shape (/v1/files, /v1/batches)', () => {
  test('a batch runs through its turnaround; the output has every line, by custom_id, not in input order', async () => {
    const file = await json(
      await upload(
        'cerebras',
        'csk-one',
        jsonl(Array.from({ length: 30 }, (_, i) => chatLine(`job-${i}`, CEREBRAS_MODEL))),
      ),
    );
    expect(file).toMatchObject({ object: 'file', purpose: 'batch', filename: 'in.jsonl' });
    expect(file.bytes).toBeGreaterThan(0);
    const batch = await json(await createBatch('cerebras', 'csk-one', file.id, { metadata: { hfq: 'r1' } }));
    expect(batch).toMatchObject({
      object: 'batch',
      status: 'in_progress',
      input_file_id: file.id,
      completion_window: '24h',
      output_file_id: null,
      request_counts: { total: 30, completed: 0, failed: 0 },
      metadata: { hfq: 'r1' },
    });

    clock += 5 * MINUTE;
    const half = await getBatch('cerebras', 'csk-one', batch.id);
    expect(half.status).toBe('in_progress');
    expect(half.request_counts.completed).toBeGreaterThan(0);
    expect(half.request_counts.completed).toBeLessThan(30);
    expect(half.output_file_id).toBeNull();

    clock += 5 * MINUTE;
    const done = await getBatch('cerebras', 'csk-one', batch.id);
    expect(done).toMatchObject({
      status: 'completed',
      request_counts: { total: 30, completed: 30, failed: 0 },
    });
    expect(done.error_file_id).toBeNull();
    const lines = await content('cerebras', 'csk-one', done.output_file_id);
    const ids = lines.map((line) => line.custom_id);
    expect([...ids].sort()).toEqual(Array.from({ length: 30 }, (_, i) => `job-${i}`).sort());
    expect(ids).not.toEqual(Array.from({ length: 30 }, (_, i) => `job-${i}`));
    for (const line of lines) {
      expect(line.response.status_code).toBe(200);
      const prompt = `prompt ${line.custom_id}`;
      expect(line.response.body.choices[0].message.content).toBe(
        expectedChatContent([{ role: 'user', content: prompt }]),
      );
    }
    expect(sim.batchStats()).toMatchObject({ batches: 1, linesSucceeded: 30, linesFailed: 0 });
  });

  test('validating first, then in progress; the list finds a batch by its input file', async () => {
    sim.configure({ batchApi: { validatingMs: MINUTE } });
    const batch = await openAiBatch('csk-list', 3);
    expect(batch.status).toBe('validating');
    clock += MINUTE;
    expect((await getBatch('cerebras', 'csk-list', batch.id)).status).toBe('in_progress');
    const list = await json(await fetch(`${base('cerebras')}/v1/batches`, { headers: auth('csk-list') }));
    expect(list.object).toBe('list');
    expect(list.data.map((item: { input_file_id: string }) => item.input_file_id)).toEqual([
      batch.input_file_id,
    ]);
  });

  test('cancel: what finished stays in the output file, nothing finishes after', async () => {
    const batch = await openAiBatch('csk-cancel', 40);
    clock += 4 * MINUTE;
    const cancel = await fetch(`${base('cerebras')}/v1/batches/${batch.id}/cancel`, {
      method: 'POST',
      headers: auth('csk-cancel'),
    });
    const cancelling = await json(cancel);
    expect(cancelling.status).toBe('cancelling');
    clock += 60 * MINUTE;
    const cancelled = await getBatch('cerebras', 'csk-cancel', batch.id);
    expect(cancelled.status).toBe('cancelled');
    const finished = cancelled.request_counts.completed;
    expect(finished).toBeGreaterThan(0);
    expect(finished).toBeLessThan(40);
    expect(finished).toBe(cancelling.request_counts.completed);
    expect(await content('cerebras', 'csk-cancel', cancelled.output_file_id)).toHaveLength(finished);
  });

  test('a stuck batch expires at the end of its window, scaled by timeScale', async () => {
    sim.configure({ batchApi: { turnaround: { kind: 'stuck' }, timeScale: 1000 } });
    const batch = await openAiBatch('csk-stuck', 5);
    clock += 86_399; // 24 h / 1000, less a millisecond
    expect((await getBatch('cerebras', 'csk-stuck', batch.id)).status).toBe('in_progress');
    clock += 1;
    const expired = await getBatch('cerebras', 'csk-stuck', batch.id);
    expect(expired).toMatchObject({
      status: 'expired',
      output_file_id: null,
      request_counts: { completed: 0 },
    });
  });

  test('a random turnaround is drawn per batch within its range', async () => {
    sim.configure({ batchApi: { turnaround: { kind: 'range', minMs: 4 * MINUTE, maxMs: 8 * MINUTE } } });
    const batches: Answer[] = [];
    for (let i = 0; i < 10; i++) batches.push(await openAiBatch('csk-range', 3));
    const statuses = async () =>
      new Set(
        await Promise.all(
          batches.map(async (batch) => (await getBatch('cerebras', 'csk-range', batch.id)).status),
        ),
      );
    clock += 4 * MINUTE - 1;
    expect((await statuses()).has('completed')).toBe(false);
    clock += 2 * MINUTE;
    const middle = await statuses();
    expect(middle.has('completed')).toBe(true);
    expect(middle.size).toBeGreaterThan(1); // others still in progress or finalizing
    clock += 2 * MINUTE + 1;
    expect(await statuses()).toEqual(new Set(['completed']));
  });

  test('a turnaround longer than the window expires with what finished', async () => {
    sim.configure({ batchApi: { turnaround: { kind: 'fixed', ms: 48 * 60 * MINUTE } } });
    const batch = await openAiBatch('csk-late', 50);
    clock += 24 * 60 * MINUTE;
    const expired = await getBatch('cerebras', 'csk-late', batch.id);
    expect(expired.status).toBe('expired');
    const done = expired.request_counts.completed;
    expect(done).toBeGreaterThan(0);
    expect(done).toBeLessThan(50);
    expect(await content('cerebras', 'csk-late', expired.output_file_id)).toHaveLength(done);
  });

  test('a failure share: every line in exactly one file, failed ones answer 500 in the error file', async () => {
    sim.configure({ batchApi: { failureShare: 0.3 } });
    const batch = await openAiBatch('csk-fail', 100);
    clock += 10 * MINUTE;
    const done = await getBatch('cerebras', 'csk-fail', batch.id);
    expect(done.status).toBe('completed');
    const { completed, failed } = done.request_counts;
    expect(completed + failed).toBe(100);
    expect(failed).toBeGreaterThan(10);
    expect(failed).toBeLessThan(50);
    const ok = await content('cerebras', 'csk-fail', done.output_file_id);
    const errors = await content('cerebras', 'csk-fail', done.error_file_id);
    expect(ok).toHaveLength(completed);
    expect(errors).toHaveLength(failed);
    for (const line of errors) expect(line.response.status_code).toBe(500);
    const all = new Set([...ok, ...errors].map((line) => line.custom_id));
    expect(all.size).toBe(100);
  });

  test('a line the provider cannot serve answers its 400 in the error file; the others succeed', async () => {
    const text = jsonl([chatLine('good', CEREBRAS_MODEL), chatLine('bad', 'no-such-model')]);
    const file = await json(await upload('cerebras', 'csk-mixed', text));
    const batch = await json(await createBatch('cerebras', 'csk-mixed', file.id));
    clock += 10 * MINUTE;
    const done = await getBatch('cerebras', 'csk-mixed', batch.id);
    const [error] = await content('cerebras', 'csk-mixed', done.error_file_id);
    expect(error).toMatchObject({ custom_id: 'bad', response: { status_code: 400 } });
    expect((await content('cerebras', 'csk-mixed', done.output_file_id)).map((l) => l.custom_id)).toEqual([
      'good',
    ]);
  });
});

describe('answers held back (answerDelayMs)', () => {
  test('a held create answer comes late, but the batch exists before it: a caller that dies meanwhile finds it by listing', async () => {
    sim.setToken('key-held', { label: 'held' });
    sim.configure({ batchApi: { answerDelayMs: { create: 300 } } });
    const file = await json(await upload('cerebras', 'key-held', jsonl([chatLine('a', CEREBRAS_MODEL)])));
    const started = performance.now();
    const creating = createBatch('cerebras', 'key-held', file.id);
    await expect
      .poll(
        async () =>
          (await json(await fetch(`${base('cerebras')}/v1/batches`, { headers: auth('key-held') }))).data
            .length,
      )
      .toBe(1);
    const created = await json(await creating);
    expect(performance.now() - started).toBeGreaterThanOrEqual(290);
    expect(created.input_file_id).toBe(file.id);
    expect(sim.batchStats().byToken.held?.batches).toBe(1);
  });
});

describe('Together shape (/v1/files/upload, { job })', () => {
  test('create answers { job }, statuses are upper-case with a progress percentage', async () => {
    const lines = Array.from({ length: 10 }, (_, i) => chatLine(`t-${i}`, TOGETHER_MODEL));
    const file = await json(await upload('together', 'tgp-one', jsonl(lines), '/v1/files/upload'));
    expect(file).toMatchObject({ object: 'file', purpose: 'batch-api', filename: 'in.jsonl' });
    const created = await json(await createBatch('together', 'tgp-one', file.id));
    expect(created.job).toMatchObject({ status: 'IN_PROGRESS', progress: 0, input_file_id: file.id });
    clock += 5 * MINUTE;
    const half = await getBatch('together', 'tgp-one', created.job.id);
    expect(half.progress).toBeGreaterThan(0);
    expect(half.progress).toBeLessThan(100);
    clock += 5 * MINUTE;
    const done = await getBatch('together', 'tgp-one', created.job.id);
    expect(done).toMatchObject({ status: 'COMPLETED', progress: 100, error_file_id: null });
    expect(await content('together', 'tgp-one', done.output_file_id)).toHaveLength(10);
    const list = await fetch(`${base('together')}/v1/batches`, { headers: auth('tgp-one') });
    expect(Array.isArray(await list.json())).toBe(true);
  });
});

describe('refusals', () => {
  test('input problems are 400s naming the line; a file over the size cap is a 413', async () => {
    const dup = await json(
      await upload(
        'cerebras',
        'csk-bad',
        jsonl([chatLine('a', CEREBRAS_MODEL), chatLine('a', CEREBRAS_MODEL)]),
      ),
    );
    const refused = await createBatch('cerebras', 'csk-bad', dup.id);
    expect(refused.status).toBe(400);
    expect((await json(refused)).error.message).toMatch(/line 2: custom_id "a" is not unique/);

    sim.configure({ batchApi: { maxRequestsPerFile: 2 } });
    const three = await json(
      await upload('cerebras', 'csk-bad', jsonl(['a', 'b', 'c'].map((id) => chatLine(id, CEREBRAS_MODEL)))),
    );
    const tooMany = await createBatch('cerebras', 'csk-bad', three.id);
    expect(tooMany.status).toBe(400);
    expect((await json(tooMany)).error.message).toMatch(/more than 2 requests/);

    const embeddings = await createBatch('cerebras', 'csk-bad', three.id, { endpoint: '/v1/embeddings' });
    expect(embeddings.status).toBe(400);

    sim.configure({ batchApi: { maxFileBytes: 100 } });
    const big = await upload('cerebras', 'csk-bad', 'x'.repeat(200));
    expect(big.status).toBe(413);
    expect(sim.batchStats().batches).toBe(0);
  });

  test("another key cannot see a key's batch or files", async () => {
    const batch = await openAiBatch('csk-owner', 2);
    expect(
      (await fetch(`${base('cerebras')}/v1/batches/${batch.id}`, { headers: auth('csk-other') })).status,
    ).toBe(404);
    const file = await fetch(`${base('cerebras')}/v1/files/${batch.input_file_id}/content`, {
      headers: auth('csk-other'),
    });
    expect(file.status).toBe(404);
  });

  test("a refused key gets the provider's 401; an hf_ token is not a provider key", async () => {
    sim.setToken('csk-revoked', { revoked: true });
    expect((await upload('cerebras', 'csk-revoked', jsonl([chatLine('a', CEREBRAS_MODEL)]))).status).toBe(
      401,
    );
    const hf = await fetch(`${base('together')}/v1/batches`, { headers: auth('hf_notakey') });
    expect(hf.status).toBe(401);
  });

  test('credits: lines cost priceShare of real time; when they run out, lines answer 402 and new work is refused', async () => {
    // 0.0001 per real-time request, half that per batch line: 0.00025 pays for five lines.
    sim.setToken('csk-poor', { label: 'poor', credits: { balanceUsd: 0.00025 } });
    const batch = await openAiBatch('csk-poor', 8);
    clock += 10 * MINUTE;
    const done = await getBatch('cerebras', 'csk-poor', batch.id);
    expect(done.request_counts).toEqual({ total: 8, completed: 5, failed: 3 });
    const errors = await content('cerebras', 'csk-poor', done.error_file_id);
    for (const line of errors) expect(line.response.status_code).toBe(402);
    const poor = sim.batchStats().byToken.poor;
    expect(poor).toMatchObject({ batches: 1, linesSucceeded: 5, linesFailed: 3 });
    expect(poor?.spentUsd).toBeCloseTo(0.00025, 12);
    expect(sim.stats().credits['token:poor']?.balanceUsd).toBeCloseTo(0, 12);
    expect((await upload('cerebras', 'csk-poor', jsonl([chatLine('a', CEREBRAS_MODEL)]))).status).toBe(402);
    expect((await createBatch('cerebras', 'csk-poor', done.input_file_id)).status).toBe(402);
  });

  test("batch lines and real-time requests spend one key's credits; the stats endpoint shows the batches", async () => {
    sim.setToken('csk-shared', { label: 'shared', credits: { balanceUsd: 0.0002 } }); // four batch lines
    await openAiBatch('csk-shared', 4);
    clock += 10 * MINUTE;
    // Nobody looked at the batch since: the real-time request still finds its spend counted.
    const chat = await fetch(`${base('cerebras')}/v1/chat/completions`, {
      method: 'POST',
      headers: { ...auth('csk-shared'), 'content-type': 'application/json' },
      body: JSON.stringify({ model: CEREBRAS_MODEL, messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(chat.status).toBe(402);
    const stats = await json(await fetch(`${sim.url}/_sim/stats`));
    expect(stats.batches.byToken.shared).toMatchObject({ batches: 1, linesSucceeded: 4, linesFailed: 0 });
    expect(stats.batches.byStatus.completed).toBeGreaterThan(0);
  });

  test('the config is validated like the rest', () => {
    expect(() => sim.configure({ batchApi: { turnaround: { kind: 'range', minMs: 5, maxMs: 1 } } })).toThrow(
      new SimConfigError('config.batchApi.turnaround.maxMs: expected a number >= minMs (5), got 1'),
    );
    expect(() => sim.configure({ batchApi: { failureShare: 2 } })).toThrow(/config\.batchApi\.failureShare/);
    expect(() => sim.configure({ batchApi: { timeScale: 0 } } as never)).toThrow(
      /config\.batchApi\.timeScale/,
    );
    expect(() => sim.configure({ batchApi: { speed: 1 } } as never)).toThrow(
      /config\.batchApi\.speed: unknown option/,
    );
  });
});
