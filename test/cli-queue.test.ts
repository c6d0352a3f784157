import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { accountQueueName } from '@hfq/shared/internal';
import { Queue } from 'bullmq';
import { describe, expect, it } from 'vitest';
import {
  holdAccount,
  releaseHold,
  resumeIfPausedWithoutReason,
} from '../packages/worker/src/account-hold.js';
import { HfqProcess } from './support/processes.js';
import { startStack } from './support/stack.js';
import { waitFor } from './support/wait.js';

/**
 * The operator's commands on an account's queue: `hfq retry` (an account's failed jobs, a file's
 * failed lines) and `hfq queue pause|resume|clean|drain`, the destructive ones only with --yes.
 */

const TOKEN = 'hf_test_cli_queue_0123456789abcdef';
const CHAT = 'meta-llama/Llama-3.1-8B-Instruct';
const chat = (text: string) =>
  JSON.stringify({ task: 'chat-completion', model: CHAT, messages: [{ role: 'user', content: text }] });

const setup = async (label: string) => {
  const stack = await startStack({
    label,
    sim: { latency: { baseMs: 5 } },
    tokens: { [TOKEN]: { label: 'acme' } },
    accounts: [{ id: 'acme', tier: 'pro', hfToken: TOKEN, limit: { max: 1000, durationMs: 1000 } }],
  });
  const dir = mkdtempSync(join(tmpdir(), 'hfq-cli-queue-'));
  stack.defer(() => rmSync(dir, { recursive: true, force: true }));
  const env = { REDIS_URL: stack.redisUrl, HFQ_PREFIX: stack.prefix };
  const hfq = async (args: string[]) => {
    const proc = HfqProcess.start(args, env);
    const exit = await proc.exited;
    return { code: exit.code, lines: proc.lines, text: proc.lines.join('\n') };
  };
  const queue = new Queue(accountQueueName('acme'), { connection: stack.redis(), prefix: stack.prefix });
  stack.defer(() => queue.close());
  return { stack, dir, hfq, queue };
};

const rowsOf = (path: string) =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as { line: number; ok: boolean; error?: string });

describe('hfq retry', () => {
  it('runs an account’s failed jobs again, and a file’s failed lines, replacing their rows', async () => {
    const { stack, dir, hfq, queue } = await setup('cliretry');
    await stack.startWorkerProcesses(1);
    const input = join(dir, 'jobs.jsonl');
    const output = join(dir, 'out.jsonl');
    const requests = () => stack.sim.received({ route: 'router' });
    writeFileSync(input, `${[chat('one'), chat('two'), chat('three')].join('\n')}\n`);
    // The first upstream request is refused for good (400): one line fails.
    stack.sim.script(TOKEN, [{ status: 400, body: { error: 'refused once' } }]);
    const first = await hfq(['enqueue', input, '--account', 'acme', '--out', output]);
    expect(first.code, first.text).toBe(1);
    expect(rowsOf(output).filter((r) => !r.ok)).toHaveLength(1);
    expect(requests()).toBe(3);

    // The account's failed jobs go back to waiting and run.
    const byAccount = await hfq(['retry', 'acme']);
    expect(byAccount.code, byAccount.text).toBe(0);
    expect(byAccount.lines).toEqual(['acme: 1 failed job(s) back to waiting']);
    await waitFor(async () => (await queue.getCompletedCount()) === 3, 'the retried job done', 30_000);
    expect(requests()).toBe(4);
    expect((await hfq(['retry', 'acme'])).lines).toEqual(['acme: no failed jobs']);

    // The file: its failed row is replaced by the job's new outcome, read back without a request.
    const byFile = await hfq(['retry', input, '--account', 'acme', '--out', output]);
    expect(byFile.code, byFile.text).toBe(0);
    expect(rowsOf(output).map((r) => [r.line, r.ok])).toEqual([
      [1, true],
      [2, true],
      [3, true],
    ]);
    expect(requests()).toBe(4);

    // A line added and failing: `hfq retry <file>` runs its failed job again.
    writeFileSync(input, `${[chat('one'), chat('two'), chat('three'), chat('four')].join('\n')}\n`);
    stack.sim.script(TOKEN, [{ status: 400, body: { error: 'refused once' } }]);
    expect((await hfq(['enqueue', input, '--account', 'acme', '--out', output])).code).toBe(1);
    expect(requests()).toBe(5);
    const again = await hfq(['retry', input, '--account', 'acme', '--out', output]);
    expect(again.code, again.text).toBe(0);
    expect(rowsOf(output).every((r) => r.ok)).toBe(true);
    expect(rowsOf(output)).toHaveLength(4);
    expect(requests()).toBe(6);

    const unknown = await hfq(['retry', 'acmee']);
    expect(unknown.code).toBe(2);
    expect(unknown.lines[0]).toMatch(
      /unknown account "acmee": no queue under prefix .* \(accounts with a queue: acme\)/,
    );
  });
});

describe('hfq queue', () => {
  it('pause holds the queue until resume, whatever the workers do; clean and drain need --yes', async () => {
    const { stack, dir, hfq, queue } = await setup('cliqueue');
    const input = join(dir, 'jobs.jsonl');
    writeFileSync(input, `${chat('a')}\n`);
    expect((await hfq(['enqueue', input, '--account', 'acme'])).code).toBe(0);

    expect((await hfq(['queue', 'pause', 'acme'])).lines).toEqual([
      'acme: paused (until "hfq queue resume acme")',
    ]);
    expect(await queue.isPaused()).toBe(true);
    // What a worker's supervisor does each round: neither resumes an operator's pause.
    const target = { redis: stack.redis(), prefix: stack.prefix, queue, accountId: 'acme' };
    expect(await resumeIfPausedWithoutReason(target)).toBe(false);
    await holdAccount(target, 'credits out (test)');
    expect(await releaseHold(target)).toBe(true);
    expect(await queue.isPaused()).toBe(true);
    // A worker starts: the job stays waiting.
    await stack.startWorker({ holdCheckMs: 50 });
    expect(await queue.getWaitingCount()).toBe(1);

    // Drain: what it would remove, then with --yes.
    writeFileSync(input, `${chat('b')}\n${chat('c')}\n`);
    expect((await hfq(['enqueue', input, '--account', 'acme'])).code).toBe(0);
    const drainAsk = await hfq(['queue', 'drain', 'acme']);
    expect(drainAsk.code).toBe(2);
    expect(drainAsk.lines[0]).toMatch(
      /queue drain would remove 3 waiting and 0 delayed job\(s\) of acme, for good: add --yes/,
    );
    expect(await queue.getWaitingCount()).toBe(3);
    expect((await hfq(['queue', 'drain', 'acme', '--yes'])).code).toBe(0);
    expect(await queue.getWaitingCount()).toBe(0);

    // Resume: new work runs.
    expect((await hfq(['queue', 'resume', 'acme'])).lines).toEqual(['acme: resumed']);
    writeFileSync(input, `${chat('d')}\n`);
    expect((await hfq(['enqueue', input, '--account', 'acme', '--wait'])).code).toBe(0);
    expect(await queue.getCompletedCount()).toBe(1);

    // Clean: finished jobs go, with --yes only.
    const cleanAsk = await hfq(['queue', 'clean', 'acme']);
    expect(cleanAsk.code).toBe(2);
    expect(cleanAsk.lines[0]).toMatch(/would remove 1 completed and 0 failed job\(s\) of acme/);
    expect(await queue.getCompletedCount()).toBe(1);
    const cleaned = await hfq(['queue', 'clean', 'acme', '--yes']);
    expect(cleaned.lines).toEqual(['acme: removed 1 finished job(s)']);
    expect(await queue.getCompletedCount()).toBe(0);

    const bad = await hfq(['queue', 'empty', 'acme']);
    expect(bad.code).toBe(2);
    expect(bad.lines[0]).toMatch(/unknown action "empty"/);
  });
});
