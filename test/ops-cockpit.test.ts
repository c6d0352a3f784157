import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import type { AccountConfigInput } from '@hfq/shared';
import { startSim } from '@hfq/sim';
import type { HfqWorker } from '@hfq/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatJob, silentLogger } from './ops-support.js';
import { CLI_ARGS, ROOT, startWorkerProcess } from './support/processes.js';
import { adminRedis, redisUrl } from './support/redis.js';
import { type Stack, startStack, workerEnv } from './support/stack.js';
import { waitFor } from './support/wait.js';

/**
 * The cockpit's data: history buckets written by workers, live workers and orphaned active jobs,
 * every account queue under the prefix (a mistyped one too), and `hfq status` reading them with
 * only REDIS_URL and HFQ_PREFIX, once or with --watch.
 */

const TOKEN = 'hf_cockpit_acme_0123456789abcdef';
const ACCOUNTS: AccountConfigInput[] = [
  { id: 'acme', tier: 'pro', hfToken: TOKEN, limit: { max: 20, durationMs: 1000 } },
];
const run = promisify(execFile);

/** `hfq …` as a process, with only the variables given (plus PATH). */
function hfq(args: string[], env: Record<string, string>) {
  return run(process.execPath, [...CLI_ARGS, ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
    timeout: 60_000,
  });
}

describe('the cockpit: history, live workers, every queue', () => {
  const admin = adminRedis();
  let stack: Stack;
  let readOnlyEnv: Record<string, string>;
  let worker: HfqWorker;

  beforeAll(async () => {
    // Shared by the suite: one worker publishes the account and the history the tests read.
    stack = await startStack({
      label: 'cockpit',
      sim: { latency: { baseMs: 0, jitterMs: 0 } },
      tokens: { [TOKEN]: { label: 'acme' } },
      accounts: ACCOUNTS,
      teardown: 'caller',
    });
    readOnlyEnv = { REDIS_URL: redisUrl(), HFQ_PREFIX: stack.prefix, LOG_LEVEL: 'silent' };
    worker = await stack.startWorker({ logger: silentLogger(), cockpitFlushMs: 200 });
  });

  afterAll(async () => {
    await stack?.stop();
    await admin.quit();
  });

  it('history: completions and upstream answers by outcome land in 10-second buckets, with the gauges, under a TTL', async () => {
    stack.sim.script(TOKEN, [{ status: 429, retryAfter: 1 }]);
    const producer = stack.newProducer();
    try {
      const handles = await producer.enqueueMany(
        Array.from({ length: 12 }, (_, i) => chatJob('acme', `h ${i}`)),
      );
      await Promise.all(handles.map((h) => h.result({ timeoutMs: 30_000 })));
    } finally {
      await producer.close();
    }
    const reader = stack.newAdmin([]);
    try {
      await waitFor(async () => {
        const points = await reader.history('acme');
        return points.reduce((n, p) => n + p.completed, 0) === 12;
      }, '12 completions in the history');
      const points = await reader.history('acme');
      const sum = (k: 'ok' | 'throttled' | 'credits' | 'error' | 'failed') =>
        points.reduce((n, p) => n + p[k], 0);
      expect({ ok: sum('ok'), throttled: sum('throttled'), failed: sum('failed') }).toEqual({
        ok: 12,
        throttled: 1,
        failed: 0,
      });
      for (const p of points) expect(p.t % 10_000).toBe(0);
      const gauged = points.filter((p) => p.configuredRate !== null);
      expect(gauged.length).toBeGreaterThan(0);
      expect(gauged.every((p) => p.configuredRate === 20)).toBe(true);
      // One hash per account and hour, each with a TTL of about a day.
      const keys = await admin.keys(`${stack.prefix}:hfq:history:{acme}:*`);
      expect(keys.length).toBeGreaterThanOrEqual(1);
      expect(keys.length).toBeLessThanOrEqual(2);
      for (const key of keys) {
        const ttl = await admin.ttl(key);
        expect(ttl).toBeGreaterThan(24 * 3600);
        expect(ttl).toBeLessThanOrEqual(25 * 3600);
      }
      const [status] = await reader.status();
      expect(status?.forecast.throughputPerSecond).toBeGreaterThan(0);
      expect(status?.forecast.backlog).toBe(0);
      expect(status?.forecast.creditsLeftUsd).toBeLessThan(2);
    } finally {
      await reader.close();
    }
  });

  it('hfq status with only REDIS_URL and HFQ_PREFIX lists the published account, a mistyped queue and the live worker', async () => {
    const producer = stack.newProducer();
    try {
      await producer.enqueue(chatJob('acmee', 'nobody serves this account'));
    } finally {
      await producer.close();
    }
    const { stdout } = await hfq(['status', '--json'], readOnlyEnv);
    const report = JSON.parse(stdout) as {
      accounts: { account: string; source: string; tier: string; counts: Record<string, number> }[];
      workers: { id: string; live: boolean; accounts: string[]; version: string }[];
    };
    expect(report.accounts.find((a) => a.account === 'acme')).toMatchObject({
      source: 'published',
      tier: 'pro',
    });
    expect(report.accounts.find((a) => a.account === 'acmee')).toMatchObject({
      source: 'unconfigured',
      counts: { waiting: 1 },
    });
    expect(report.workers.find((w) => w.id === worker.workerId)).toMatchObject({
      live: true,
      accounts: ['acme'],
    });
    const text = await hfq(['status'], readOnlyEnv);
    expect(text.stdout).toContain('acmee (?)');
    expect(text.stdout).toContain('no worker serves');
    expect(text.stdout).toContain(worker.workerId);
    const credits = await hfq(['credits', 'status'], readOnlyEnv);
    expect(credits.stdout).toMatch(/acme\s+account:acme\s+ok/);
  });

  it('hfq status --watch redraws (clearing the screen) and exits 0 on Ctrl-C', async () => {
    const child = spawn(process.execPath, [...CLI_ARGS, 'status', '--watch'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', ...readOnlyEnv, HFQ_WATCH_SECONDS: '0.3' },
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await waitFor(() => out.split('\x1b[2J\x1b[H').length > 3, 'three frames');
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(out).toContain('Ctrl-C to stop');
    expect(out).toContain('acme');
    expect(err).not.toMatch(/\n\s+at /);
  });

  it('a worker killed mid-job: status shows it gone and flags its active jobs as orphaned', async () => {
    const slow = await startSim({ latency: { baseMs: 60_000, jitterMs: 0 } });
    const token = 'hf_cockpit_kill_0123456789abcdef';
    slow.setToken(token, { label: 'kill' });
    const accounts: AccountConfigInput[] = [{ id: 'kill', tier: 'pro', hfToken: token }];
    const killEnv = workerEnv(slow, {
      redisUrl: redisUrl(),
      prefix: stack.prefix,
      accounts,
      concurrency: 3,
      // Locks outlive the test, so the jobs stay active after the kill.
      extra: { HFQ_LOCK_DURATION_MS: '120000', HFQ_STALLED_INTERVAL_MS: '120000' },
    });
    stack.defer(killEnv.cleanup);
    stack.defer(() => slow.close());
    const proc = await startWorkerProcess(killEnv.env);
    stack.defer(() => proc.stop('SIGKILL'));
    const producer = stack.newProducer();
    const reader = stack.newAdmin([]);
    try {
      await producer.enqueueMany(Array.from({ length: 3 }, (_, i) => chatJob('kill', `slow ${i}`)));
      const kill = async () => (await reader.status()).find((s) => s.account === 'kill');
      await waitFor(async () => (await kill())?.counts.active === 3, 'three active jobs');
      expect(await kill()).toMatchObject({ liveWorkers: 1, orphanedActive: 0 });
      await proc.stop('SIGKILL');
      // Gone once its heartbeat is older than three intervals (5 s each); locks still held.
      await waitFor(
        async () => {
          const s = await kill();
          return s?.liveWorkers === 0 && s.orphanedActive === 3;
        },
        'the worker gone and its three jobs orphaned',
        40_000,
      );
      expect((await reader.workers()).some((w) => w.accounts.includes('kill') && !w.live)).toBe(true);
    } finally {
      await producer.close();
      await reader.close();
    }
  });
});
