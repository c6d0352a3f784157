import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectionFor } from '@hfq/shared/internal';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { SpawnedRedis } from '../packages/cli/src/local-redis.js';
import { startBoardProcess } from './ops-support.js';
import { ownRedis } from './support/faults.js';
import { HfqProcess } from './support/processes.js';
import { type Stack, startStack } from './support/stack.js';
import { waitFor } from './support/wait.js';

/**
 * A Redis outage during `hfq enqueue --wait` and under `hfq board`: one line per condition (not a
 * stack dump per reconnect attempt of each connection, over the progress line), then one line
 * when Redis is ready again (for the CLI, with how many attempts failed).
 */

/**
 * Stops the test's Redis and waits until a connection with the CLI's reconnect policy has failed
 * six attempts: the outage has lasted through several reconnects of every connection.
 */
async function killRedisForSixReconnects(redis: SpawnedRedis, stack: Stack): Promise<void> {
  const probe = connectionFor(redis.url, 'producer');
  stack.defer(() => probe.disconnect());
  let probeErrors = 0;
  probe.on('error', () => {
    probeErrors += 1;
  });
  await redis.kill();
  await waitFor(() => probeErrors >= 6, 'six failed reconnect attempts', 60_000);
}

describe('hfq enqueue during a Redis outage', () => {
  it('says each condition once and when Redis is ready again', { timeout: 90_000 }, async () => {
    const redis = await ownRedis();
    // Registered before the stack's own teardown, so it runs after it: Redis goes last.
    onTestFinished(() => redis.stop());
    const stack = await startStack({ label: 'clioutage', redisUrl: redis.url, sim: false });
    const dir = mkdtempSync(join(tmpdir(), 'hfq-cli-outage-'));
    stack.defer(() => rmSync(dir, { recursive: true, force: true }));
    const input = join(dir, 'jobs.jsonl');
    const line = (text: string) =>
      JSON.stringify({
        task: 'feature-extraction',
        model: 'sentence-transformers/all-MiniLM-L6-v2',
        inputs: text,
      });
    writeFileSync(input, `${line('a')}\n${line('b')}\n`);
    // No worker: the run waits for its results while Redis goes away and comes back.
    const cli = HfqProcess.start(['enqueue', input, '--account', 'acme', '--wait'], {
      REDIS_URL: redis.url,
      HFQ_PREFIX: stack.prefix,
      LOG_LEVEL: 'warn',
    });
    stack.defer(() => cli.stop('SIGKILL'));
    await cli.waitForLine((l) => l.includes('enqueued 2/2'));
    await killRedisForSixReconnects(redis, stack);
    await redis.launch();
    const ready = await cli.waitForLine((l) => l.includes('ready again'), 30_000);
    expect(ready).toMatch(/^hfq: Redis connection ready again \(after \d+ failed attempts?\)$/);
    const exit = await cli.stop('SIGINT');
    expect(exit.code, cli.lines.join('\n')).toBe(130);

    const text = cli.lines.join('\n');
    const refused = cli.lines.filter((l) => l.includes('ECONNREFUSED'));
    expect(refused, text).toEqual([
      `hfq: Redis connection error: connect ECONNREFUSED ${new URL(redis.url).host}`,
    ]);
    expect(text).not.toMatch(/^\s+at /m);
    expect(text).not.toMatch(/errno|syscall/);
  });
});

describe('hfq board during a Redis outage', () => {
  it('logs each condition once and when Redis is ready again, no stack dumps', {
    timeout: 90_000,
  }, async () => {
    const redis = await ownRedis();
    onTestFinished(() => redis.stop());
    const stack = await startStack({ label: 'boardoutage', redisUrl: redis.url, sim: false });
    const { proc, url } = await startBoardProcess({
      REDIS_URL: redis.url,
      HFQ_PREFIX: stack.prefix,
      HFQ_BOARD_AUTH: 'off',
      LOG_LEVEL: 'info',
    });
    stack.defer(() => proc.stop('SIGTERM'));
    // The status page reads Redis: the admin's queues are in use when Redis goes.
    expect((await fetch(`${url}/status.json`)).status).toBe(200);
    await killRedisForSixReconnects(redis, stack);
    await fetch(`${url}/status.json`).catch(() => undefined);
    await redis.launch();
    await proc.waitForLine((l) => l.includes('Redis connection ready again'), 30_000);
    const text = proc.lines.join('\n');
    const refused = proc.events().filter((e) => /ECONNREFUSED/.test(String(e.err)));
    expect(refused.length, text).toBeGreaterThan(0);
    const pairs = refused.map((e) => `${e.msg} | ${e.source} | ${e.err}`);
    expect(new Set(pairs).size, text).toBe(pairs.length);
    expect(text).not.toMatch(/^\s+at /m);
    expect(text).not.toMatch(/errno|syscall/);
  });
});
