import { once } from 'node:events';
import type { Producer } from '@hfq/producer';
import type { AccountConfigInput } from '@hfq/shared';
import { accountQueueName, batchQueueName } from '@hfq/shared/internal';
import type { Sim } from '@hfq/sim';
import type { HfqWorker, WorkerEventMap } from '@hfq/worker';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basicHeader, chatJob, http, silentLogger, startBoardProcess } from './ops-support.js';
import type { HfqProcess } from './support/processes.js';
import { adminRedis, redisUrl } from './support/redis.js';
import { expectNoSecrets, type Stack, startStack, workerEnv } from './support/stack.js';
import { waitFor } from './support/wait.js';

const TOKEN = 'hf_board_secret_0123456789abcdef';
const PROVIDER_KEY = 'tgk-board-provider-key-0123456789';
const PASTED = 'hf_user_pasted_token_abcdefgh123';
const USER = 'ops';
const PASSWORD = 'board-pass-9f8e7d6c';
const SECRETS = [TOKEN, PROVIDER_KEY, PASTED, PASSWORD];
const QUEUE = accountQueueName('acme');
const ACCOUNTS: AccountConfigInput[] = [
  {
    id: 'acme',
    tier: 'pro',
    hfToken: TOKEN,
    limit: { max: 50, durationMs: 1000 },
    providerKeys: { together: PROVIDER_KEY },
  },
];

describe('hfq board: Bull Board behind basic auth, secrets scrubbed, writes guarded', () => {
  const admin = adminRedis();
  let stack: Stack;
  let sim: Sim;
  let prefix: string;
  let worker: HfqWorker;
  // The boards run as real `hfq board` processes, configured from the environment like in production.
  let board: { proc: HfqProcess; url: string };
  let readOnlyBoard: { proc: HfqProcess; url: string };
  let producer: Producer;
  let failedJobId = '';
  let completedJobId = '';
  const auth: [string, string] = [USER, PASSWORD];

  beforeAll(async () => {
    // Shared by the suite: its tests read the jobs run here through the boards.
    stack = await startStack({
      label: 'board',
      sim: { latency: { baseMs: 0, jitterMs: 0 } },
      tokens: { [TOKEN]: { label: 'acme' } },
      accounts: ACCOUNTS,
      worker: { logger: silentLogger() },
      teardown: 'caller',
    });
    ({ sim, prefix } = stack);
    // One job at a time, so the order of upstream requests is the order of the runs.
    worker = await stack.startWorker({ concurrency: 1 });
    producer = stack.producer;
    const boardEnv = workerEnv(sim, { redisUrl: redisUrl(), prefix, accounts: ACCOUNTS });
    stack.defer(boardEnv.cleanup);
    const env = { ...boardEnv.env, HFQ_BOARD_USER: USER, HFQ_BOARD_PASSWORD: PASSWORD };
    [board, readOnlyBoard] = await Promise.all([
      startBoardProcess(env),
      startBoardProcess({ ...env, HFQ_BOARD_READ_ONLY: 'true' }),
    ]);

    // An upstream error that echoes the credential: the worker must not store it anywhere.
    sim.script(TOKEN, [
      { status: 400, body: { error: `invalid request for Authorization: Bearer ${TOKEN} (${TOKEN})` } },
    ]);
    const failing = await producer.enqueue(chatJob('acme', 'this one fails'));
    await expect(failing.result({ timeoutMs: 20_000 })).rejects.toThrow();
    failedJobId = failing.id;
    // A user pasted something token-like into a prompt: the board shows it scrubbed.
    const done = await producer.enqueue(chatJob('acme', `my token is ${PASTED}, please summarise`));
    await done.result({ timeoutMs: 20_000 });
    completedJobId = done.id;
  });

  afterAll(async () => {
    const exits = await Promise.all([board?.proc.stop(), readOnlyBoard?.proc.stop()]);
    await stack?.stop();
    await admin.quit();
    expect(exits.map((e) => e?.code)).toEqual([0, 0]);
    const logs = [board, readOnlyBoard].flatMap((b) => b?.proc.lines ?? []).join('\n');
    expectNoSecrets(logs, SECRETS, 'board logs');
  });

  it('answers 401 with a challenge without credentials or with a wrong password, 200 with them', async () => {
    const none = await http(`${board.url}/`);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Basic realm=/);
    expect((await http(`${board.url}/api/queues`)).status).toBe(401);
    expect((await http(`${board.url}/status.json`)).status).toBe(401);
    expect((await http(`${board.url}/api/queues`, { auth: [USER, 'wrong-password'] })).status).toBe(401);
    expect((await http(`${board.url}/api/queues`, { auth: ['someone', PASSWORD] })).status).toBe(401);

    const page = await http(`${board.url}/`, { auth });
    expect(page.status).toBe(200);
    expect(page.text).toContain('<title>hfq</title>');
    const queues = await http(`${board.url}/api/queues`, { auth });
    expect(queues.status).toBe(200);
    expect((JSON.parse(queues.text) as { queues: { name: string }[] }).queues.map((q) => q.name)).toEqual([
      QUEUE,
      batchQueueName('acme'),
    ]);
    // Liveness needs no credentials and says nothing.
    expect((await http(`${board.url}/healthz`)).status).toBe(200);
  });

  it('never stores a secret in failedReason or the stack trace (the worker scrubs what it throws)', async () => {
    const raw = await admin.hgetall(`${prefix}:${QUEUE}:${failedJobId}`);
    expect(raw.failedReason).toContain('[redacted]');
    expectNoSecrets(
      `${raw.failedReason}\n${raw.stacktrace}\n${raw.opts}\n${raw.data}`,
      SECRETS,
      'failed job in Redis',
    );
  });

  it('shows jobs without secrets: data and results formatted, failedReason clean, logs filtered', async () => {
    // Logs are shown raw by Bull Board; hfq writes none, but a user's code might: the response filter scrubs them.
    const queue = new Queue(QUEUE, { connection: admin, prefix });
    try {
      const job = await queue.getJob(completedJobId);
      await job?.log(`calling upstream with Bearer ${TOKEN} and key ${PROVIDER_KEY}`);
    } finally {
      await queue.close();
    }
    const answers = await Promise.all([
      http(`${board.url}/api/queues?activeQueue=${QUEUE}&status=completed&page=1&jobsPerPage=10`, { auth }),
      http(`${board.url}/api/queues?activeQueue=${QUEUE}&status=failed&page=1&jobsPerPage=10`, { auth }),
      http(`${board.url}/api/queues/${QUEUE}/${completedJobId}`, { auth }),
      http(`${board.url}/api/queues/${QUEUE}/${failedJobId}`, { auth }),
      http(`${board.url}/api/queues/${QUEUE}/${completedJobId}/logs`, { auth }),
    ]);
    for (const answer of answers) expect(answer.status).toBe(200);
    const [completedList, failedList, completed, failed, logs] = answers.map((a) => a.text) as string[];
    expect(completedList).toContain(completedJobId);
    expect(completed).toContain('[redacted], please summarise');
    expect(failedList).toContain(failedJobId);
    expect(failed).toContain('400');
    expect(logs).toContain('calling upstream with Bearer [redacted] and key [redacted]');
    for (const [i, answer] of answers.entries()) expectNoSecrets(answer.text, SECRETS, `board answer ${i}`);
  });

  it('refuses rate-limit writes (set and release) with 405, and still shows the limit', async () => {
    // The coarse limit a worker puts on a lane's queue at the lane's first wait (lane-queue-limit.ts).
    await producer.queue('acme').setGlobalRateLimit(50, 1000);
    const set = await http(`${board.url}/api/queues/${QUEUE}/rate-limit`, {
      method: 'PUT',
      auth,
      body: { max: 1, duration: 1000 },
    });
    expect(set.status).toBe(405);
    const release = await http(`${board.url}/api/queues/${QUEUE}/rate-limit/release`, {
      method: 'PUT',
      auth,
    });
    expect(release.status).toBe(405);
    const read = await http(`${board.url}/api/queues/${QUEUE}/rate-limit`, { auth });
    expect(read.status).toBe(200);
    expect(JSON.parse(read.text)).toEqual({ supported: true, rateLimit: { max: 50, duration: 1000 } });
  });

  it('read-only mode answers 405 on every write and changes nothing', async () => {
    const writes: [string, string][] = [
      ['PUT', `/api/queues/${QUEUE}/pause`],
      ['PUT', '/api/queues/pause'],
      ['PUT', '/api/queues/resume'],
      ['POST', `/api/queues/${QUEUE}/add`],
      ['PUT', `/api/queues/${QUEUE}/${failedJobId}/retry`],
      ['PUT', `/api/queues/${QUEUE}/retry/failed`],
      ['PUT', `/api/queues/${QUEUE}/clean/completed`],
      ['PUT', `/api/queues/${QUEUE}/empty`],
      ['PUT', `/api/queues/${QUEUE}/obliterate`],
      ['PATCH', `/api/queues/${QUEUE}/${completedJobId}/update-data`],
      ['DELETE', `/api/queues/${QUEUE}`],
    ];
    for (const [method, path] of writes) {
      const answer = await http(`${readOnlyBoard.url}${path}`, {
        method,
        auth,
        body: { name: 'x', data: {} },
      });
      expect(answer.status, `${method} ${path}`).toBe(405);
    }
    // Without credentials it is still 401 first: the guard never reveals anything to a stranger.
    expect((await http(`${readOnlyBoard.url}/api/queues/pause`, { method: 'PUT' })).status).toBe(401);
    const queue = new Queue(QUEUE, { connection: admin, prefix });
    try {
      expect(await queue.isPaused()).toBe(false);
      expect(await queue.getJobCounts('completed', 'failed')).toEqual({ completed: 1, failed: 1 });
    } finally {
      await queue.close();
    }
    const listing = await http(`${readOnlyBoard.url}/api/queues`, { auth });
    expect(listing.status).toBe(200);
    expect(JSON.parse(listing.text).queues[0].readOnlyMode).toBe(true);
  });

  it('serves the status view: per-account tier, rates, 429s, credits, route and spend', async () => {
    const json = await http(`${board.url}/status.json`, { auth });
    expect(json.status).toBe(200);
    const report = JSON.parse(json.text) as { accounts: Record<string, unknown>[] };
    expect(report.accounts).toHaveLength(1);
    expect(report.accounts[0]).toMatchObject({
      account: 'acme',
      tier: 'pro',
      configuredRate: { max: 50, durationMs: 1000 },
      credits: { state: 'ok' },
      route: 'hf-router',
      counts: { completed: 1, failed: 1 },
    });
    // Spend is written in batches (every 500 ms): wait for the ledger to show it.
    await waitFor(async () => {
      const again = JSON.parse((await http(`${board.url}/status.json`, { auth })).text) as typeof report;
      return ((again.accounts[0]?.spend as { hfRouterUsd: number } | undefined)?.hfRouterUsd ?? 0) > 0;
    }, 'the spend ledger');
    const page = await http(`${board.url}/status`, { auth });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(page.text).toMatch(/<th [^>]*scope="row"[^>]*><a href="#account-acme">acme<\/a>/);
    // Everything the page loads comes from the board itself (no CDN, no font service).
    const loads = [...page.text.matchAll(/<(?:script|link|img)\b[^>]*(?:src|href)="([^"]+)"/g)].map(
      (m) => m[1],
    );
    expect(loads.length).toBeGreaterThan(0);
    for (const url of loads) expect(url).toMatch(/^(\/hfq-assets\/|data:)/);
    for (const url of loads.filter((u) => u?.startsWith('/')))
      expect((await http(`${board.url}${url}`, { auth })).status).toBe(200);
    for (const answer of [json, page]) expectNoSecrets(answer.text, SECRETS, 'status view');
  });

  it('serves its fonts and charts itself, says read-only on both pages, and links the two views both ways', async () => {
    for (const b of [board, readOnlyBoard]) {
      const home = await http(`${b.url}/`, { auth });
      expect(home.status).toBe(200);
      // Bull Board's Google Fonts link is replaced by the board's own stylesheet.
      expect(home.text).not.toContain('fonts.googleapis.com');
      expect(home.text).toContain('href="/hfq-assets/fonts.css"');
      const css = await http(`${b.url}/hfq-assets/fonts.css`, { auth });
      expect(css.status).toBe(200);
      expect(css.text).toContain("font-family: 'IBM Plex Sans'");
      const fontUrl = /url\((\/hfq-assets\/fonts\/[^)]+\.woff2)\)/.exec(css.text)?.[1];
      expect(fontUrl).toBeDefined();
      const font = await fetch(`${b.url}${fontUrl}`, { headers: { authorization: basicHeader(...auth) } });
      expect(font.status).toBe(200);
      expect((await font.arrayBuffer()).byteLength).toBeGreaterThan(1000);
      const status = await http(`${b.url}/status`, { auth });
      expect(status.text).toContain('<a href="/">queues (Bull Board)</a>');
      const readOnlyBanner = 'Read-only board';
      expect(home.text.includes(readOnlyBanner)).toBe(b === readOnlyBoard);
      expect(status.text.includes(readOnlyBanner)).toBe(b === readOnlyBoard);
    }
    // Bull Board links back to the status view (its "misc links", in the UI config of the page).
    const page = (await http(`${board.url}/`, { auth })).text;
    const uiConfig = /<script id="__UI_CONFIG__" type="application\/json">(.*?)<\/script>/s.exec(page)?.[1];
    expect(JSON.parse(uiConfig ?? '{}')).toMatchObject({
      miscLinks: [{ text: 'hfq status', url: '/status' }],
    });
  });

  it("cannot undo hfq's 429 pause: after a release, jobs run but nothing goes upstream before the pause ends", async () => {
    const runtime = worker.runtimes.get('acme');
    if (!runtime) throw new Error('no runtime');
    sim.resetStats();
    sim.script(TOKEN, [{ status: 429, retryAfter: 3 }]);
    const throttled = once(worker.events, 'throttle') as Promise<WorkerEventMap['throttle']>;
    const requeued = once(worker.events, 'job') as Promise<WorkerEventMap['job']>;
    const handles = await producer.enqueueMany([
      chatJob('acme', 'r1'),
      chatJob('acme', 'r2'),
      chatJob('acme', 'r3'),
    ]);
    const [{ pauseMs }] = await throttled;
    const pauseEnds = Date.now() + pauseMs - 100;
    expect(pauseMs).toBeGreaterThanOrEqual(2_900);
    // The job that drew the 429 went back to wait behind BullMQ's rate-limit key.
    expect((await requeued)[0].outcome).toBe('requeued');
    expect(await runtime.queue.getRateLimitTtl()).toBeGreaterThan(0);
    // What Bull Board's "release" button calls. A worker that is not waiting out the BullMQ limit
    // locally (a new one here) can now fetch a job during the pause...
    await runtime.queue.removeRateLimitKey();
    const second = await stack.startWorker({ concurrency: 1 });
    try {
      await waitFor(
        async () => ((await runtime.queue.getJobCounts('active')).active ?? 0) > 0,
        'a released job to run',
      );
      expect(Date.now()).toBeLessThan(pauseEnds);
      // ...but its permit waits for the domain's pause, kept by hfq's limiter in Redis.
      await Promise.all(handles.map((h) => h.result({ timeoutMs: 20_000 })));
    } finally {
      await second.close();
    }
    const router = sim.requests({ route: 'router' });
    const limited = router.find((r) => r.status === 429);
    if (!limited) throw new Error('no 429 recorded');
    const after = router.filter((r) => r.seq > limited.seq);
    expect(after).toHaveLength(3);
    for (const r of after) expect(r.t - limited.t).toBeGreaterThanOrEqual(pauseMs - 50);
  });
});
