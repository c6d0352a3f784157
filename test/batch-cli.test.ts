import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '@hfq/shared';
import { expectedEmbedding } from '@hfq/sim';
import { describe, expect, it } from 'vitest';
import { HfqProcess } from './support/processes.js';
import { redisUrl } from './support/redis.js';
import { startStack } from './support/stack.js';

/** `hfq enqueue --batch` (see docs/architecture.md, "Batches are flows"): a JSONL file as one batch, results written in input order with line numbers. */

const TOKEN = 'hf_test_batchcli_0123456789abcdef';
const MODEL = 'sentence-transformers/all-MiniLM-L6-v2';

describe('hfq enqueue --batch', () => {
  it('enqueues a file as one coalesced batch and writes every line’s result in order', async () => {
    const stack = await startStack({
      label: 'bcli',
      sim: { latency: { baseMs: 5, perItemMs: 1 } },
      tokens: { [TOKEN]: { label: 'cli' } },
      accounts: [{ id: 'acme', tier: 'pro', hfToken: TOKEN, limit: { max: 100, durationMs: 1000 } }],
    });
    const { sim, prefix } = stack;
    const dir = mkdtempSync(join(tmpdir(), 'hfq-batch-cli-'));
    stack.defer(() => rmSync(dir, { recursive: true, force: true }));
    await stack.startWorker({
      concurrency: 4,
      logger: createLogger({ name: 'batch-cli-test', level: 'silent' }),
    });
    const texts = Array.from({ length: 30 }, (_, i) => `line text ${i}`);
    const lines = texts.map((inputs) => JSON.stringify({ task: 'feature-extraction', model: MODEL, inputs }));
    lines.splice(10, 0, ''); // a blank line: skipped, line numbers still count it
    const input = join(dir, 'jobs.jsonl');
    const output = join(dir, 'results.jsonl');
    writeFileSync(input, `${lines.join('\n')}\n`);

    const cli = HfqProcess.start(
      ['enqueue', input, '--account', 'acme', '--batch', '--coalesce', '4', '--out', output],
      { REDIS_URL: redisUrl(), HFQ_PREFIX: prefix },
    );
    const exit = await cli.exited;
    expect(exit.code, cli.lines.join('\n')).toBe(0);

    const written = readFileSync(output, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    const lineNumbers = texts.map((_, i) => (i < 10 ? i + 1 : i + 2));
    // The row shape of single jobs; a batch does not say what served each item.
    expect(written).toEqual(
      texts.map((text, i) => ({
        line: lineNumbers[i],
        ok: true,
        output: expectedEmbedding(text),
        provider: null,
        route: null,
        costUsd: null,
        batch: expect.stringMatching(/^f[0-9a-f]{12}$/),
        input_hash: expect.any(String),
      })),
    );
    // Coalesced: 30 items in ceil(30 / 4) requests.
    expect(sim.received({ route: 'router' })).toBe(8);
  });
});
