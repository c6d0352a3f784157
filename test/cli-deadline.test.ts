/**
 * The operator's side of deadlines, with the real `hfq` as a process, a real worker on the
 * simulator and real Redis: `hfq enqueue --deadline` projects the finish before it enqueues,
 * `--deadline-strict` refuses a deadline the account cannot meet (exit 3, nothing enqueued), a
 * feasible one runs with every job (and every item of a `--batch`) carrying `dueAt`, and
 * `hfq status` shows the account's provider batches from their records (and nothing new for an
 * account without any).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { laneQueueName, ROUTER_LANE } from '../packages/shared/src/internal.js';
import { BatchRecordStore } from '../packages/worker/src/batch-route/batch-record-store.js';
import { HfqProcess } from './support/processes.js';
import { adminRedis, keysUnder, redisUrl } from './support/redis.js';
import { type Stack, startStack } from './support/stack.js';

const TOKEN = 'hf_test_deadline_0123456789abcdef';
const SLOW_TOKEN = 'hf_test_deadline_slow_0123456789ab';
const TOGETHER_KEY = 'tgp_test_deadline_key_0123456789abcdef';
const MINUTE = 60_000;
const line = (account: string, i: number) =>
  JSON.stringify({
    account,
    task: 'feature-extraction',
    model: 'sentence-transformers/all-MiniLM-L6-v2',
    inputs: `deadline ${i}`,
  });

describe('hfq enqueue --deadline and hfq status batch rows', () => {
  let stack: Stack;
  let dir: string;

  beforeAll(async () => {
    stack = await startStack({
      label: 'cdl',
      teardown: 'caller',
      tokens: { [TOKEN]: { label: 'acme' }, [SLOW_TOKEN]: { label: 'slow' } },
      accounts: [
        {
          id: 'acme',
          tier: 'enterprise',
          hfToken: TOKEN,
          limit: { max: 5000, durationMs: 1000 },
          providerKeys: { together: TOGETHER_KEY },
        },
        // One request a second: 400 jobs take 400 s, more than a 5-minute deadline leaves.
        { id: 'slow', tier: 'pro', hfToken: SLOW_TOKEN, limit: { max: 1, durationMs: 1000 } },
      ],
      workers: 1,
      worker: { concurrency: 16 },
    });
    dir = mkdtempSync(join(tmpdir(), 'hfq-deadline-'));
  }, 120_000);

  afterAll(async () => {
    await stack?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  // Read-only, as an operator runs it: no account config, only Redis and the prefix.
  const env = () => ({ REDIS_URL: redisUrl(), HFQ_PREFIX: stack.prefix });

  async function jobsOf(account: string) {
    const queue = new Queue(laneQueueName(account, ROUTER_LANE), {
      connection: { url: redisUrl() },
      prefix: stack.prefix,
    });
    try {
      return await queue.getJobs(['waiting', 'prioritized', 'delayed', 'active', 'completed', 'failed']);
    } finally {
      await queue.close();
    }
  }

  it('--deadline-strict with a deadline the account cannot meet exits 3 and enqueues nothing', {
    timeout: 120_000,
  }, async () => {
    const input = join(dir, 'slow.jsonl');
    writeFileSync(input, `${Array.from({ length: 400 }, (_, i) => line('slow', i)).join('\n')}\n`);
    const strict = HfqProcess.start(['enqueue', input, '--deadline', '5m', '--deadline-strict'], env());
    const exit = await strict.exited;
    const text = strict.lines.join('\n');
    expect(exit.code, text).toBe(3);
    expect(text).toMatch(
      /slow: deadline cannot be met: 400 job\(s\) \(0 waiting \+ 400 of this run\) at 1\.0\/s \((configured|learned)\) in real time, projected finish \S+, \d+ m \d+ s after the deadline; no batch route/,
    );
    expect(strict.lines).toContain('--deadline-strict: nothing enqueued');
    expect(await jobsOf('slow')).toEqual([]);
    // The same projection without enqueueing, and the same refusal.
    const dry = HfqProcess.start(
      ['enqueue', input, '--deadline', '5m', '--deadline-strict', '--dry-run'],
      env(),
    );
    expect((await dry.exited).code).toBe(3);
    expect(dry.lines.join('\n')).toMatch(/would enqueue 400 line\(s\)[\s\S]*slow: deadline cannot be met/);
    expect(await jobsOf('slow')).toEqual([]);
  });

  it('a feasible deadline enqueues every job carrying dueAt and the preference, and --wait shows the finish against it', {
    timeout: 120_000,
  }, async () => {
    const input = join(dir, 'acme.jsonl');
    writeFileSync(input, `${Array.from({ length: 50 }, (_, i) => line('acme', i)).join('\n')}\n`);
    const before = Date.now();
    const proc = HfqProcess.start(
      ['enqueue', input, '--deadline', '2h', '--deadline-strict', '--prefer', 'speed', '--wait'],
      env(),
    );
    const exit = await proc.exited;
    const after = Date.now();
    const text = proc.lines.join('\n');
    expect(exit.code, text).toBe(0);
    // A clock time, with its date when it falls on another day (UTC): `16:20Z` or `12-07 00:00Z`.
    expect(text).toMatch(/deadline (\d\d-\d\d )?\d\d:\d\dZ \(in (1 h 59 m|2 h 00 m)\), preference speed/);
    expect(text).toMatch(
      /acme: 50 job\(s\) \(0 waiting \+ 50 of this run\) at 5000\.0\/s \((configured|learned)\): projected finish (\d\d-\d\d )?\d\d:\d\dZ, (1 h 59 m|2 h 00 m) before the deadline; all real time \(preference speed\)/,
    );
    // The progress line ends with the deadline.
    expect(
      proc.lines.some((l) => /done 50 .* deadline (\d\d-\d\d )?\d\d:\d\dZ/.test(l)),
      text,
    ).toBe(true);
    const jobs = await jobsOf('acme');
    expect(jobs).toHaveLength(50);
    for (const job of jobs) {
      expect(job.data.dueAt).toBeGreaterThanOrEqual(before + 120 * MINUTE);
      expect(job.data.dueAt).toBeLessThanOrEqual(after + 120 * MINUTE);
      expect(job.data.preference).toBe('speed');
      expect(job.returnvalue).toBeDefined();
    }
    // One deadline for the whole run: a duration is read once.
    expect(new Set(jobs.map((j) => j.data.dueAt)).size).toBe(1);
  });

  it('--dry-run: chat completions on a key whose provider has a batch API are projected to a batch; embeddings are not', {
    timeout: 60_000,
  }, async () => {
    const chat = join(dir, 'acme-chat.jsonl');
    const chatLine = (i: number) =>
      JSON.stringify({
        account: 'acme',
        task: 'chat-completion',
        model: 'meta-llama/Llama-3.1-8B-Instruct',
        messages: [{ role: 'user', content: `summarise item ${i}` }],
      });
    writeFileSync(chat, `${Array.from({ length: 2000 }, (_, i) => chatLine(i)).join('\n')}\n`);
    const dry = HfqProcess.start(['enqueue', chat, '--deadline', '6h', '--dry-run'], env());
    expect((await dry.exited).code).toBe(0);
    expect(dry.lines.join('\n')).toMatch(
      /acme: 2000 job\(s\) \(0 waiting \+ 2000 of this run\) at [\d.]+\/s \(\w+\): projected finish \S+, \d+ h \d\d m before the deadline; 2000 to a batch \(together\), 0 real time, about \$\S+ saved of \$\S+/,
    );
    const embeddings = join(dir, 'acme-many.jsonl');
    writeFileSync(
      embeddings,
      `${Array.from({ length: 2000 }, (_, i) => line('acme', 1000 + i)).join('\n')}\n`,
    );
    const dryEmbeddings = HfqProcess.start(['enqueue', embeddings, '--deadline', '6h', '--dry-run'], env());
    expect((await dryEmbeddings.exited).code).toBe(0);
    expect(dryEmbeddings.lines.join('\n')).toMatch(
      /acme: 2000 job\(s\) .*; all real time \(no batch route: /,
    );
    expect(await jobsOf('acme')).toHaveLength(50);
  });

  it('--batch with an ISO deadline: every item of the batch carries it', { timeout: 120_000 }, async () => {
    const input = join(dir, 'acme-batch.jsonl');
    writeFileSync(input, `${Array.from({ length: 20 }, (_, i) => line('acme', 5000 + i)).join('\n')}\n`);
    const due = new Date(Date.now() + 3 * 60 * MINUTE);
    due.setUTCSeconds(0, 0);
    const iso = due.toISOString().replace(':00.000Z', 'Z');
    const before = new Set((await jobsOf('acme')).map((j) => j.id));
    // Without --wait: a batch's items leave Redis once their results are read and written out.
    const proc = HfqProcess.start(['enqueue', input, '--batch', '--deadline', iso], env());
    const exit = await proc.exited;
    expect(exit.code, proc.lines.join('\n')).toBe(0);
    const items = (await jobsOf('acme')).filter((j) => !before.has(j.id));
    expect(items).toHaveLength(20);
    for (const item of items) {
      expect(item.data.dueAt).toBe(due.getTime());
      expect(item.data.preference).toBe('cost');
    }
  });

  it('hfq status shows a batch record per account (provider, state, jobs, hedge, deadline), nothing for others', {
    timeout: 60_000,
  }, async () => {
    const redis = adminRedis();
    const now = Date.now();
    const store = new BatchRecordStore(redis, stack.prefix);
    const record = await store.open('acme', {
      provider: 'together',
      keyDomain: 'key-domain-id-not-shown',
      endpoint: '/v1/chat/completions',
      jobIds: ['j1', 'j2', 'j3'],
      deadlineMs: now + 60 * MINUTE,
      hedgeAtMs: now + 40 * MINUTE,
    });
    await store.update('acme', record.id, { state: 'submitted', inputFileId: 'file-1', batchId: 'batch-77' });
    try {
      const json = HfqProcess.start(['status', '--json'], env());
      expect((await json.exited).code).toBe(0);
      const doc = JSON.parse(json.lines.join('\n')) as {
        accounts: { account: string; batches?: Record<string, unknown>[] }[];
      };
      const acme = doc.accounts.find((a) => a.account === 'acme');
      expect(acme?.batches).toEqual([
        {
          id: record.id,
          provider: 'together',
          state: 'submitted',
          batchId: 'batch-77',
          jobs: 3,
          hedgeAtMs: now + 40 * MINUTE,
          deadlineMs: now + 60 * MINUTE,
          createdAtMs: record.createdAtMs,
        },
      ]);
      const slow = doc.accounts.find((a) => a.account === 'slow');
      expect(slow).toBeDefined();
      expect(slow && 'batches' in slow).toBe(false);
      expect(json.lines.join('\n')).not.toContain('key-domain-id-not-shown');

      const text = HfqProcess.start(['status'], env());
      expect((await text.exited).code).toBe(0);
      const hhmm = (ms: number) => `${new Date(ms).toISOString().slice(11, 16)}Z`;
      const row = text.lines.find((l) => l.startsWith(`acme batch ${record.id}`));
      expect(row, text.lines.join('\n')).toMatch(
        new RegExp(
          `^acme batch ${record.id} \\(together batch-77\\): submitted · 3 jobs · hedge (\\d\\d-\\d\\d )?${hhmm(now + 40 * MINUTE)} · deadline (\\d\\d-\\d\\d )?${hhmm(now + 60 * MINUTE)}$`,
        ),
      );
      expect(text.lines.some((l) => l.startsWith('slow batch'))).toBe(false);
    } finally {
      await store.update('acme', record.id, { state: 'collected' });
      await redis.del(...(await keysUnder(redis, stack.prefix)).filter((k) => k.includes('provider-batch')));
      await redis.quit();
    }
  });
});
