import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expectedChatContent, expectedEmbedding } from '@hfq/sim';
import { beforeEach, describe, expect, it } from 'vitest';
import { HfqProcess } from './support/processes.js';
import { keysUnder, redisUrl } from './support/redis.js';
import { type Stack, startStack } from './support/stack.js';

/**
 * `hfq enqueue` with the user's own file: the OpenAI Batch format, their ids and metadata in the
 * result rows (one row shape for every line, invalid ones included), HFQ_ACCOUNT as the default
 * account, a missing account said once, `--dry-run`, and rows that reach `--out` as they finish
 * while another line waits on an account that no live worker serves (said on the progress line).
 */

const TOKEN = 'hf_test_cli_formats_0123456789abcdef';
const CHAT = 'meta-llama/Llama-3.1-8B-Instruct';
const EMBED = 'sentence-transformers/all-MiniLM-L6-v2';

const openAiChat = (id: string, text: string) =>
  JSON.stringify({
    custom_id: id,
    method: 'POST',
    url: '/v1/chat/completions',
    body: { model: CHAT, messages: [{ role: 'user', content: text }], max_tokens: 16 },
  });
const openAiEmbed = (id: string, text: string) =>
  JSON.stringify({
    custom_id: id,
    method: 'POST',
    url: '/v1/embeddings',
    body: { model: EMBED, input: text },
  });

const rowsOf = (path: string) =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('hfq enqueue: the user file in, the user ids out', () => {
  let stack: Stack;
  let dir: string;

  beforeEach(async () => {
    stack = await startStack({
      label: 'cliformats',
      sim: { latency: { baseMs: 5 } },
      tokens: { [TOKEN]: { label: 'acme' } },
      accounts: [{ id: 'acme', tier: 'pro', hfToken: TOKEN, limit: { max: 1000, durationMs: 1000 } }],
    });
    const tmp = mkdtempSync(join(tmpdir(), 'hfq-cli-formats-'));
    dir = tmp;
    stack.defer(() => rmSync(tmp, { recursive: true, force: true }));
  });

  const env = (extra: Record<string, string> = {}) => ({
    REDIS_URL: redisUrl(),
    HFQ_PREFIX: stack.prefix,
    ...extra,
  });

  it('runs an OpenAI Batch file under HFQ_ACCOUNT and echoes custom_id and metadata; an invalid line gets its row', async () => {
    await stack.startWorkerProcesses(1);
    const input = join(dir, 'openai.jsonl');
    const output = join(dir, 'openai-out.jsonl');
    writeFileSync(
      input,
      `${[
        openAiChat('req-1', 'hello'),
        openAiEmbed('req-2', 'some text'),
        JSON.stringify({
          custom_id: 'req-3',
          method: 'POST',
          url: '/v1/images/generations',
          body: { model: CHAT },
        }),
        JSON.stringify({
          id: 42,
          task: 'feature-extraction',
          model: EMBED,
          inputs: 'own format',
          metadata: { source: 'crm', row: 7 },
        }),
      ].join('\n')}\n`,
    );
    const proc = HfqProcess.start(
      ['enqueue', input, '--out', output, '--skip-invalid'],
      env({ HFQ_ACCOUNT: 'acme' }),
    );
    const exit = await proc.exited;
    expect(exit.code, proc.lines.join('\n')).toBe(0);
    expect(proc.lines.join('\n')).toMatch(/line 3: url: "\/v1\/images\/generations" is not supported/);
    const rows = rowsOf(output);
    expect(rows.map((r) => [r.line, r.custom_id ?? r.id, r.ok])).toEqual([
      [1, 'req-1', true],
      [2, 'req-2', true],
      [3, 'req-3', false],
      [4, 42, true],
    ]);
    const chat = rows[0]?.output as { choices: { message: { content: string } }[] };
    expect(chat.choices[0]?.message.content).toBe(expectedChatContent([{ role: 'user', content: 'hello' }]));
    expect(rows[1]?.output).toEqual(expectedEmbedding('some text'));
    expect(rows[2]?.error).toMatch(/^invalid: url:/);
    expect(rows[3]?.metadata).toEqual({ source: 'crm', row: 7 });
    expect(rows[3]?.output).toEqual(expectedEmbedding('own format'));
    // One row shape: every finished row has the same keys, whatever the format of its line.
    const keys = (r: Record<string, unknown>) =>
      Object.keys(r)
        .filter((k) => !['custom_id', 'id', 'metadata'].includes(k))
        .sort();
    expect(keys(rows[0] as Record<string, unknown>)).toEqual(keys(rows[3] as Record<string, unknown>));
    expect(keys(rows[0] as Record<string, unknown>)).toEqual(
      ['costUsd', 'input_hash', 'line', 'ok', 'output', 'provider', 'route'].sort(),
    );
    expect(rows.every((r) => typeof r.input_hash === 'string')).toBe(true);
  });

  it('a file with no account says so once and names --account; nothing reaches Redis', async () => {
    const input = join(dir, 'noaccount.jsonl');
    writeFileSync(input, Array.from({ length: 300 }, (_, i) => openAiEmbed(`r${i}`, `text ${i}`)).join('\n'));
    const proc = HfqProcess.start(['enqueue', input], env());
    const exit = await proc.exited;
    expect(exit.code).toBe(2);
    expect(proc.lines.filter((l) => /account/.test(l))).toHaveLength(2);
    expect(proc.lines[0]).toBe(
      '300 line(s) name no account: name it on each line, give --account A, or set HFQ_ACCOUNT',
    );
    expect(proc.lines.join('\n')).not.toMatch(/skip-invalid/);
    const admin = stack.redis();
    expect(await keysUnder(admin, stack.prefix)).toEqual([]);
  });

  it('--dry-run validates, counts and prices without enqueueing', async () => {
    const input = join(dir, 'dry.jsonl');
    writeFileSync(
      input,
      [openAiChat('a', 'hi'), openAiChat('b', 'hi'), openAiEmbed('c', 'x'), '{"custom_id":"d"'].join('\n'),
    );
    const proc = HfqProcess.start(['enqueue', input, '--account', 'acme', '--dry-run'], env());
    const exit = await proc.exited;
    const text = proc.lines.join('\n');
    expect(exit.code, text).toBe(2);
    expect(text).toMatch(/line 4: not JSON/);
    expect(text).toMatch(/dry run: 4 line\(s\): 3 valid, 1 invalid/);
    // Two identical requests share one job.
    expect(text).toMatch(/would enqueue 3 line\(s\) as 2 job\(s\) \(per account: acme 3\)/);
    const cost = Number(/estimated cost \$([0-9.]+)/.exec(text)?.[1]);
    expect(cost).toBeGreaterThan(0);
    const admin = stack.redis();
    expect(await keysUnder(admin, stack.prefix)).toEqual([]);
  });

  it('writes each row as it finishes while another line waits for an account no live worker serves', async () => {
    await stack.startWorkerProcesses(1);
    const input = join(dir, 'waiting.jsonl');
    const output = join(dir, 'waiting-out.jsonl');
    writeFileSync(
      input,
      [
        JSON.stringify({ account: 'ghost', task: 'feature-extraction', model: EMBED, inputs: 'never' }),
        JSON.stringify({ account: 'acme', task: 'feature-extraction', model: EMBED, inputs: 'soon' }),
      ].join('\n'),
    );
    const proc = HfqProcess.start(['enqueue', input, '--out', output], env());
    try {
      const line = await proc.waitForLine((l) => l.includes('no live worker serves ghost'), 30_000);
      expect(line).toMatch(
        /enqueued 2\/2 .* no live worker serves ghost \(a mistyped account\? see hfq status\)$/,
      );
      // Line 2's row is in the file while line 1 still waits: rows do not wait for input order.
      await proc.waitForLine(() => {
        try {
          return rowsOf(output).some((r) => r.line === 2 && r.ok === true);
        } catch {
          return false;
        }
      });
      expect(rowsOf(output).map((r) => r.line)).toEqual([2]);
    } finally {
      await proc.stop('SIGINT');
    }
  });
});
