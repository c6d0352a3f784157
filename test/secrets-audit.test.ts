import { randomBytes } from 'node:crypto';
import type { Producer } from '@hfq/producer';
import type { AccountConfigInput, Job } from '@hfq/shared';
import { accountQueueName } from '@hfq/shared/internal';
import type { Sim } from '@hfq/sim';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatJob, http, metricsPortOf, startBoardProcess } from './ops-support.js';
import { HfqProcess, startWorkerProcess } from './support/processes.js';
import { adminRedis, keysUnder, redisUrl } from './support/redis.js';
import { type Stack, startStack, workerEnv } from './support/stack.js';
import { waitFor } from './support/wait.js';

/**
 * After a full run (router traffic, a 402 failover to a provider key, upstream
 * errors that echo credentials, a revoked provider key, a held account, a batch, a delayed job),
 * no HF token, provider key or board password appears anywhere an operator or an attacker with
 * Redis access could read: Redis (every key and value under the prefix, every type), every log
 * line of every process, every /metrics line, every board answer, the status view and `hfq status`.
 */

// Each secret carries a random core, so a partial echo (a cut or re-encoded credential) is caught too.
const core = () => randomBytes(12).toString('hex');
const HF_ACME = `hf_audit_acme_${core()}`;
const HF_BETA = `hf_audit_beta_${core()}`;
const HF_GAMMA = `hf_audit_gamma_${core()}`;
const KEY_ACME = `tgk-audit-acme-${core()}`;
const KEY_BETA = `tgk-audit-beta-${core()}`;
const USER = 'auditor';
const PASSWORD = `board-pw-${core()}`;
const SECRETS = [HF_ACME, HF_BETA, HF_GAMMA, KEY_ACME, KEY_BETA, PASSWORD];

/** Every form in which a secret could leak: itself, its random core, base64, and the basic-auth header value. */
const NEEDLES: { needle: string; what: string }[] = [
  ...SECRETS.flatMap((secret, i) => [
    { needle: secret, what: `secret #${i}` },
    { needle: secret.slice(-24), what: `core of secret #${i}` },
    { needle: Buffer.from(secret).toString('base64').slice(0, 24), what: `base64 of secret #${i}` },
  ]),
  { needle: Buffer.from(`${USER}:${PASSWORD}`).toString('base64'), what: 'basic-auth header value' },
];

function findLeaks(text: string): string[] {
  return NEEDLES.filter(({ needle }) => text.includes(needle)).map(({ what }) => what);
}

/** Asserts that nothing in `text` is a secret; names the surface and the secret (never prints it). */
function expectClean(text: string, where: string): void {
  expect(findLeaks(text), `${where} leaks`).toEqual([]);
}

const EMBEDDER = 'sentence-transformers/all-MiniLM-L6-v2';
const embed = (account: string, i: number): Job => ({
  account,
  task: 'feature-extraction',
  model: EMBEDDER,
  inputs: `audit text ${i}`,
});
const echo = (...secrets: string[]) =>
  `upstream says: Authorization: Bearer ${secrets[0]}; key=${secrets.join(',')}; raw ${secrets.join(' ')}`;

const ACCOUNTS: AccountConfigInput[] = [
  {
    // Router traffic until its credits run out, then a 402 and failover to its Together key.
    id: 'acme',
    tier: 'pro',
    hfToken: HF_ACME,
    limit: { max: 200, durationMs: 1000 },
    providerKeys: { together: { key: KEY_ACME, limits: [{ max: 200, durationMs: 1000 }] } },
    fallbackProviders: ['together'],
  },
  {
    // No credits, and its provider key is refused with a 401: its jobs fail (onNoKey: fail).
    id: 'beta',
    tier: 'pro',
    hfToken: HF_BETA,
    providerKeys: { together: KEY_BETA },
    fallbackProviders: ['together'],
    onNoKey: 'fail',
  },
  // The router refuses its token (401): the account is held, its jobs wait in a paused queue.
  { id: 'gamma', tier: 'free', hfToken: HF_GAMMA },
];

type Answer = { where: string; status: number; text: string };

describe('secrets audit: no token, key or board password anywhere after a full run', () => {
  let stack: Stack;
  let sim: Sim;
  let prefix: string;
  let admin: Redis;
  let producer: Producer;
  let workers: HfqProcess[] = [];
  let board: { proc: HfqProcess; url: string } | undefined;
  let env: Record<string, string> = {};
  const auth: [string, string] = [USER, PASSWORD];
  const failedIds: { acme: string[]; beta: string[] } = { acme: [], beta: [] };

  beforeAll(async () => {
    admin = adminRedis();
    // Shared by the suite: its tests audit what this one full run left behind.
    stack = await startStack({
      label: 'audit',
      sim: { latency: { baseMs: 0, jitterMs: 0, minMs: 2, maxMs: 10, perItemMs: 0 } },
      tokens: {
        [HF_ACME]: { label: 'acme', credits: { balanceUsd: 0.004, costPerRequestUsd: 0.0001 } },
        [KEY_ACME]: { label: 'acme-key' },
        [HF_BETA]: { label: 'beta', credits: { balanceUsd: 0, costPerRequestUsd: 0.0001 } },
        [KEY_BETA]: { label: 'beta-key' },
        [HF_GAMMA]: { label: 'gamma' },
      },
      teardown: 'caller',
    });
    ({ sim, prefix } = stack);
    // Upstream errors whose bodies echo the credentials: a 400 on the router and one on the key
    // (each fails a job), a 402 on beta's router, 401s for beta's key and gamma's token (enough for
    // every request in flight at once: 2 processes × 4).
    sim.script(HF_ACME, [{ status: 400, body: { error: echo(HF_ACME, KEY_ACME) } }]);
    sim.script(KEY_ACME, [{ status: 400, body: { error: { message: echo(KEY_ACME, HF_ACME) } } }]);
    sim.script(HF_BETA, [
      { status: 402, body: { error: `You have exceeded your monthly included credits. ${echo(HF_BETA)}` } },
    ]);
    sim.script(
      KEY_BETA,
      Array.from({ length: 10 }, () => ({
        status: 401,
        body: { error: { message: echo(KEY_BETA, HF_BETA) } },
      })),
    );
    sim.script(
      HF_GAMMA,
      Array.from({ length: 10 }, () => ({ status: 401, body: { error: `Invalid token ${echo(HF_GAMMA)}` } })),
    );

    // The board and the CLI run on the workers' environment, so it is made here, not by the stack.
    const processEnv = workerEnv(sim, {
      redisUrl: redisUrl(),
      prefix,
      accounts: ACCOUNTS,
      concurrency: 4,
      // Debug: the most log lines there are, the client library's included.
      extra: { LOG_LEVEL: 'debug', HFQ_SHUTDOWN_GRACE_MS: '5000' },
    });
    stack.defer(processEnv.cleanup);
    env = processEnv.env;
    [board, ...workers] = await Promise.all([
      startBoardProcess({ ...env, HFQ_BOARD_USER: USER, HFQ_BOARD_PASSWORD: PASSWORD }),
      startWorkerProcess(env),
      startWorkerProcess(env),
    ]);
    stack.defer(() => Promise.all([...workers.map((w) => w.stop()), board?.proc.stop()]));
    producer = stack.producer;

    // acme: 60 jobs over the router, a 400, the 402, failover to the key, a 400 from the key.
    const acme = await producer.enqueueMany(
      Array.from({ length: 60 }, (_, i) =>
        i % 3 === 0 ? chatJob('acme', `question ${i}`) : embed('acme', i),
      ),
    );
    const settled = await Promise.allSettled(acme.map((h) => h.result({ timeoutMs: 90_000 })));
    failedIds.acme = acme.filter((_, i) => settled[i]?.status === 'rejected').map((h) => h.id);
    // A small batch (a flow: parent in the batch queue, children in the account queue).
    const batch = await producer.enqueueBatch({
      account: 'acme',
      task: 'feature-extraction',
      model: EMBEDDER,
      items: ['b1', 'b2', 'b3', 'b4', 'b5'],
      coalesce: 2,
    });
    await batch.results({ timeoutMs: 60_000 });
    // A job that waits an hour: the delayed state has something to show.
    await producer.enqueue(embed('acme', 999), { delayMs: 3_600_000 });

    // beta: 402 on the router, 401 from the key, nothing left: every job fails.
    const beta = await producer.enqueueMany(Array.from({ length: 6 }, (_, i) => embed('beta', i)));
    const betaSettled = await Promise.allSettled(beta.map((h) => h.result({ timeoutMs: 60_000 })));
    failedIds.beta = beta.filter((_, i) => betaSettled[i]?.status === 'rejected').map((h) => h.id);

    // gamma: 401 on the router holds the account; its jobs stay queued.
    await producer.enqueueMany(Array.from({ length: 12 }, (_, i) => embed('gamma', i)));
    await waitFor(() => producer.queue('gamma').isPaused(), 'gamma to be held', 30_000);
    await producer.enqueue(embed('gamma', 100), { priority: 5 });
  }, 240_000);

  afterAll(async () => {
    await stack?.stop();
    await admin?.quit();
  });

  it('ran the whole path: router, 402 failover to the key, failed jobs with echoed bodies, a held account', async () => {
    const acmeCounts = await producer.queue('acme').getJobCounts('completed', 'failed', 'delayed');
    expect(acmeCounts.failed).toBe(2);
    expect(acmeCounts.delayed).toBe(1);
    expect(failedIds.acme).toHaveLength(2);
    expect(sim.received({ route: 'router', tokenLabel: 'acme', status: 200 })).toBeGreaterThan(0);
    expect(sim.received({ route: 'router', tokenLabel: 'acme', status: 402 })).toBeGreaterThan(0);
    expect(sim.received({ route: 'provider', tokenLabel: 'acme-key', status: 200 })).toBeGreaterThan(0);
    expect(failedIds.beta).toHaveLength(6);
    expect(sim.received({ route: 'provider', tokenLabel: 'beta-key', status: 401 })).toBeGreaterThan(0);
    expect(await producer.queue('gamma').isPaused()).toBe(true);
  });

  it('the board answers 401 without credentials or with a wrong password', async () => {
    if (!board) throw new Error('no board');
    const paths = ['/', '/api/queues', '/api/redis/stats', '/status', '/status.json', '/queue/x'];
    for (const path of paths) {
      const none = await http(`${board.url}${path}`);
      expect(none.status, path).toBe(401);
      expectClean(none.text, `401 answer for ${path}`);
      expect((await http(`${board.url}${path}`, { auth: [USER, `${PASSWORD}x`] })).status, path).toBe(401);
      expect((await http(`${board.url}${path}`, { auth: ['someone', PASSWORD] })).status, path).toBe(401);
    }
  });

  it('no board answer holds a secret: queues, jobs in every state, failed reasons, logs, status', async () => {
    if (!board) throw new Error('no board');
    const url = board.url;
    const answers: Answer[] = [];
    const get = async (path: string) => {
      const res = await http(`${url}${path}`, { auth });
      answers.push({ where: `board ${path}`, status: res.status, text: res.text });
      return res;
    };
    const listing = await get('/api/queues');
    expect(listing.status).toBe(200);
    const names = (JSON.parse(listing.text) as { queues: { name: string }[] }).queues.map((q) => q.name);
    expect(names).toEqual(expect.arrayContaining(['acme', 'beta', 'gamma'].map(accountQueueName)));

    const statuses = [
      'latest',
      'active',
      'waiting',
      'waiting-children',
      'prioritized',
      'completed',
      'failed',
      'delayed',
      'paused',
    ];
    const jobIds = new Map<string, Set<string>>();
    for (const name of names) {
      const q = encodeURIComponent(name);
      for (const path of ['metrics', 'workers', 'rate-limit', 'default-job-options', 'job-data-schema']) {
        await get(`/api/queues/${q}/${path}`);
      }
      for (const status of statuses) {
        const res = await get(`/api/queues?activeQueue=${q}&status=${status}&page=1&jobsPerPage=100`);
        expect(res.status).toBe(200);
        const queue = (
          JSON.parse(res.text) as { queues: { name: string; jobs: { id: string }[] }[] }
        ).queues.find((x) => x.name === name);
        for (const job of queue?.jobs ?? []) {
          const set = jobIds.get(name) ?? new Set<string>();
          set.add(String(job.id));
          jobIds.set(name, set);
        }
      }
    }
    // Every failed job is listed, with its upstream reason (status and message, the echo scrubbed).
    for (const [account, ids] of Object.entries(failedIds)) {
      for (const id of ids) {
        expect(jobIds.get(accountQueueName(account))?.has(id), `failed job ${id} listed`).toBe(true);
        const job = await get(`/api/queues/${accountQueueName(account)}/${id}`);
        expect(job.status).toBe(200);
        expect(job.text).toMatch(/failedReason/);
      }
    }
    for (const [name, ids] of jobIds) {
      for (const id of ids) {
        await get(`/api/queues/${encodeURIComponent(name)}/${id}`);
        await get(`/api/queues/${encodeURIComponent(name)}/${id}/logs`);
        await get(`/api/queues/${encodeURIComponent(name)}/${id}/flow`);
      }
    }
    await get('/api/redis/stats');
    await get('/api/job-schedulers');
    const page = await get('/');
    expect(page.status).toBe(200);
    // The status view: gamma's hold reason comes from the 401 body that echoed its token.
    const json = await get('/status.json');
    expect(json.status).toBe(200);
    const report = JSON.parse(json.text) as { accounts: { account: string; holdReason?: string }[] };
    expect(report.accounts.find((a) => a.account === 'gamma')?.holdReason).toMatch(/401/);
    expect((await get('/status')).status).toBe(200);

    expect(answers.length).toBeGreaterThan(100);
    for (const answer of answers) expectClean(answer.text, answer.where);
  });

  it('`hfq status` (table and JSON) shows no secret', async () => {
    for (const args of [['status'], ['status', '--json']]) {
      const proc = HfqProcess.start(args, env);
      const exit = await proc.exited;
      expect(exit.code, proc.lines.join('\n').slice(-2000)).toBe(0);
      expect(proc.lines.join('\n')).toContain('gamma');
      expectClean(proc.lines.join('\n'), `hfq ${args.join(' ')}`);
    }
  });

  it('no /metrics, /healthz or /readyz line of any worker holds a secret', async () => {
    for (const [i, worker] of workers.entries()) {
      const base = `http://127.0.0.1:${metricsPortOf(worker)}`;
      // Spend reaches the ledger in batches: wait until the gauges show it, so every family is filled.
      let metrics = '';
      await waitFor(async () => {
        metrics = (await http(`${base}/metrics`)).text;
        return metrics
          .split('\n')
          .some(
            (l) =>
              l.startsWith('hfq_estimated_spend_usd{') &&
              l.includes('account="acme"') &&
              Number(l.split(' ').at(-1)) > 0,
          );
      }, `spend in worker ${i}'s /metrics`);
      expect(metrics).toContain('hfq_upstream_requests_total');
      const lines = metrics.split('\n');
      expect(lines.length).toBeGreaterThan(50);
      for (const line of lines) expectClean(line, `worker ${i} /metrics line`);
      for (const path of ['/healthz', '/readyz']) expectClean((await http(`${base}${path}`)).text, path);
    }
  });

  it('after every process stops: no log line of any worker or the board, and nothing in Redis, holds a secret', async () => {
    const exits = await Promise.all([...workers.map((w) => w.stop('SIGTERM')), board?.proc.stop('SIGTERM')]);
    expect(exits.map((e) => e?.code)).toEqual([0, 0, 0]);
    const processes = [
      ...workers.map((w, i) => [`worker ${i}`, w] as const),
      ['board', board?.proc] as const,
    ];
    for (const [name, proc] of processes) {
      const lines = proc?.lines ?? [];
      expect(lines.length, `${name} logged`).toBeGreaterThan(0);
      for (const line of lines) expectClean(line, `${name} log line`);
    }
    // The workers logged the upstream failures they scrubbed (so the scan above read real content).
    const workerLog = workers.flatMap((w) => w.lines).join('\n');
    expect(workerLog).toContain('[redacted]');

    const keys = await keysUnder(admin, prefix);
    expect(keys.length).toBeGreaterThan(20);
    const types = new Set<string>();
    for (const key of keys) {
      expectClean(key, 'Redis key name');
      const type = await admin.type(key);
      types.add(type);
      let dump: unknown;
      switch (type) {
        case 'string':
          dump = await admin.get(key);
          break;
        case 'hash':
          dump = await admin.hgetall(key);
          break;
        case 'list':
          dump = await admin.lrange(key, 0, -1);
          break;
        case 'set':
          dump = await admin.smembers(key);
          break;
        case 'zset':
          dump = await admin.zrange(key, 0, -1, 'WITHSCORES');
          break;
        case 'stream':
          dump = await admin.xrange(key, '-', '+');
          break;
        case 'none':
          continue; // expired between SCAN and TYPE
        default:
          throw new Error(`unexpected Redis type ${type} for ${key}`);
      }
      expectClean(JSON.stringify(dump), `Redis ${type} ${key}`);
    }
    for (const type of ['string', 'hash', 'list', 'set', 'zset', 'stream']) expect(types).toContain(type);
    // The failed jobs' reasons were written (scrubbed), not dropped.
    const failed = await admin.hget(
      `${prefix}:${accountQueueName('acme')}:${failedIds.acme[0]}`,
      'failedReason',
    );
    expect(failed).toMatch(/400/);
  });
});
