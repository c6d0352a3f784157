import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expectedEmbedding } from '@hfq/sim';
import { beforeEach, describe, expect, it } from 'vitest';
import { HfqProcess } from './support/processes.js';
import { adminRedis, keysUnder, redisUrl, testPrefix } from './support/redis.js';
import { type Stack, startStack } from './support/stack.js';

const TOKEN = 'hf_test_cli_0123456789abcdef';
const line = (i: number) =>
  JSON.stringify({
    task: 'feature-extraction',
    model: 'sentence-transformers/all-MiniLM-L6-v2',
    inputs: `line ${i}`,
  });

describe('hfq enqueue', () => {
  let stack: Stack;
  let dir: string;

  beforeEach(async () => {
    stack = await startStack({
      label: 'cli',
      tokens: { [TOKEN]: { label: 'acme' } },
      accounts: [{ id: 'acme', tier: 'enterprise', hfToken: TOKEN, limit: { max: 5000, durationMs: 1000 } }],
      workers: 1,
      worker: { concurrency: 32 },
    });
    const tmp = mkdtempSync(join(tmpdir(), 'hfq-cli-'));
    dir = tmp;
    stack.defer(() => rmSync(tmp, { recursive: true, force: true }));
  });

  const env = () => ({ REDIS_URL: redisUrl(), HFQ_PREFIX: stack.prefix });

  it('round-trips a 10,000-line JSONL file with results in input order', { timeout: 240_000 }, async () => {
    const input = join(dir, 'jobs.jsonl');
    const output = join(dir, 'results.jsonl');
    writeFileSync(input, `${Array.from({ length: 10_000 }, (_, i) => line(i + 1)).join('\n')}\n`);
    const proc = HfqProcess.start(['enqueue', input, '--account', 'acme', '--wait', '--out', output], env());
    const exit = await proc.exited;
    expect(exit.code, proc.lines.slice(-5).join('\n')).toBe(0);
    const results = readFileSync(output, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(results).toHaveLength(10_000);
    results.forEach((r, i) => {
      expect(r.line).toBe(i + 1);
      expect(r.ok).toBe(true);
      expect(r.output).toEqual(expectedEmbedding(`line ${i + 1}`));
    });
    // Progress was reported as plain lines (not a terminal).
    expect(proc.lines.some((l) => /done \d+/.test(l))).toBe(true);

    // Running the same file again adds nothing, and says so: job ids come from each line's content.
    const again = HfqProcess.start(['enqueue', input, '--account', 'acme'], env());
    expect((await again.exited).code).toBe(0);
    expect(again.lines).toContain('nothing new: all 10000 job(s) of this file are already queued or done');
    const admin = adminRedis();
    const counts = await admin.zcard(`${stack.prefix}:account-{acme}:completed`);
    await admin.quit();
    expect(counts).toBe(10_000);
  });

  it('rejects a file with a bad line, naming the line and the field, and enqueues nothing', async () => {
    const input = join(dir, 'bad.jsonl');
    writeFileSync(
      input,
      [
        line(1),
        line(2),
        JSON.stringify({ task: 'feature-extraction', model: 'm/x', inputs: 42 }),
        line(4),
      ].join('\n'),
    );
    const badPrefix = testPrefix('clibad');
    const proc = HfqProcess.start(['enqueue', input, '--account', 'acme'], {
      ...env(),
      HFQ_PREFIX: badPrefix,
    });
    const exit = await proc.exited;
    expect(exit.code).not.toBe(0);
    expect(proc.lines.join('\n')).toMatch(/line 3: inputs/);
    const admin = adminRedis();
    expect(await keysUnder(admin, badPrefix)).toEqual([]);
    await admin.quit();

    const output = join(dir, 'skipped.jsonl');
    const skipping = HfqProcess.start(
      ['enqueue', input, '--account', 'acme', '--skip-invalid', '--wait', '--out', output],
      env(),
    );
    expect((await skipping.exited).code).toBe(0);
    expect(skipping.lines.join('\n')).toMatch(/line 3: inputs/);
    const results = readFileSync(output, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    // Every line has a row: the invalid one with its error.
    expect(results.map((r) => [r.line, r.ok])).toEqual([
      [1, true],
      [2, true],
      [3, false],
      [4, true],
    ]);
    expect(results[2].error).toMatch(/^invalid: inputs/);
  });
});
