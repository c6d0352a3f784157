import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { connectionFor } from '@hfq/shared/internal';
import { describe, expect, it, onTestFinished } from 'vitest';
import { SpawnedRedis } from '../packages/cli/src/local-redis.js';
import { chatFor, perJobModels } from './support/faults.js';
import { captureLogs } from './support/log-capture.js';
import { CLI_ARGS, ROOT } from './support/processes.js';
import { redisUrl, testPrefix } from './support/redis.js';
import { startStack } from './support/stack.js';
import { waitFor } from './support/wait.js';

/**
 * Redis trouble in the log: a worker whose Redis dies logs each condition once (not once per
 * reconnect attempt of each of its connections) and says when Redis is back; the CLI routes
 * ioredis's own console warnings through its logger, on stderr, so `status --json` stays JSON.
 */

describe('Redis errors in the log', () => {
  it('a worker logs each condition of an outage once, and the recovery', { timeout: 90_000 }, async () => {
    const redis = await SpawnedRedis.start({ appendOnly: true });
    // Registered before the stack's own teardown, so it runs after it: Redis goes last.
    onTestFinished(() => redis.stop());
    const logs = captureLogs('info');
    const stack = await startStack({
      label: 'logredis',
      redisUrl: redis.url,
      accounts: [{ id: 'acme', tier: 'pro', hfToken: 'hf_logs_redis_0123456789abcdef' }],
    });
    const { sim } = stack;
    await stack.startWorker({ logger: logs.logger, cockpitFlushMs: 60_000 });
    // A connection with the worker's reconnect policy, to know how many attempts the outage made.
    const probe = connectionFor(redis.url, 'worker');
    stack.defer(() => probe.disconnect());
    const producer = stack.producer;
    const [model] = perJobModels(sim, 'logredis', 1) as [string];
    let probeErrors = 0;
    probe.on('error', () => {
      probeErrors += 1;
    });
    await redis.kill();
    await waitFor(() => probeErrors >= 8, 'eight failed reconnect attempts', 60_000);
    const errorLines = logs.lines.filter((l) => typeof l.err === 'string' && /ECONNREFUSED/.test(l.err));
    expect(errorLines.length).toBeGreaterThan(0);
    // Each (message, error) pair once: several connections, many attempts, one line each.
    const pairs = errorLines.map((l) => `${l.msg} | ${String(l.err)}`);
    expect(new Set(pairs).size, pairs.join('\n')).toBe(pairs.length);
    expect(pairs.length).toBeLessThan(probeErrors);

    await redis.launch();
    await waitFor(
      () => logs.matching(/^Redis connection ready again$/).length > 0,
      'the "ready again" line',
      30_000,
    );
    // Every connection of the worker is back once it runs a job again (closing a BullMQ worker
    // whose connection is still in its reconnect backoff waits for it).
    await producer.enqueue(chatFor('acme', model)).then((h) => h.result({ timeoutMs: 30_000 }));
  });

  it('hfq status --json: ioredis warnings go through the logger on stderr; stdout stays JSON', async () => {
    // A password the server does not need: ioredis warns with console.warn.
    const url = new URL(redisUrl());
    url.username = '';
    url.password = 'not-needed-pw';
    const child = spawn(process.execPath, [...CLI_ARGS, 'status', '--json'], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        REDIS_URL: url.toString(),
        HFQ_PREFIX: testPrefix('logstatus'),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      err += c.toString();
    });
    const [code] = await once(child, 'exit');
    expect(code, err).toBe(0);
    expect(() => JSON.parse(out)).not.toThrow();
    const warnings = err
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(warnings.length).toBeGreaterThan(0);
    for (const w of warnings) {
      expect(w).toMatchObject({ level: 40, msg: 'ioredis warning', source: 'ioredis' });
      expect(String(w.err)).toMatch(/does not require a password/);
    }
    // The several connections of the command warn alike: one line.
    expect(warnings).toHaveLength(1);
    expect(err).not.toContain('not-needed-pw');
  });
});
