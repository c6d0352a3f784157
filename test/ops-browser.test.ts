import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AccountConfigInput, Job } from '@hfq/shared';
import type { HfqWorker, WorkerEventMap } from '@hfq/worker';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoEndpointAccount, demoEndpointJobs } from '../packages/cli/src/commands/demo-endpoint.js';
import { basicHeader, chatJob, silentLogger, startBoardProcess } from './ops-support.js';
import { type HfqProcess, ROOT } from './support/processes.js';
import { adminRedis } from './support/redis.js';
import { expectNoSecrets, type Stack, startStack, upstreamOf } from './support/stack.js';
import { waitFor } from './support/wait.js';

/**
 * A person's view of the board: headless Chromium (Debian's, driven by playwright-core) logs in
 * with basic auth, opens a queue, finds a completed job, and opens the status view, with the
 * demo's "dedicated" account and its Inference Endpoint (paused by its operator). Screenshots
 * go to test-results/ops-browser/, or to docs/ (board.png, status.png) with HFQ_UPDATE_SCREENSHOTS=1.
 */

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const HAVE_CHROMIUM = existsSync(CHROMIUM);
const TITLE = HAVE_CHROMIUM
  ? 'the board in a real browser'
  : `the board in a real browser (SKIPPED: no Chromium at ${CHROMIUM}; install it with "apt-get install -y chromium" or set CHROMIUM_PATH)`;
const SHOTS =
  process.env.HFQ_UPDATE_SCREENSHOTS === '1' ? join(ROOT, 'docs') : join(ROOT, 'test-results', 'ops-browser');

const ACME = 'hf_browser_acme_0123456789abcdef';
const BETA = 'hf_browser_beta_0123456789abcdef';
const PASTED = 'hf_user_pasted_token_browser_123';
const USER = 'ops';
const PASSWORD = 'browser-pass-5e4d3c2b';
const SECRETS = [ACME, BETA, PASTED, PASSWORD];
const BASE_ACCOUNTS: AccountConfigInput[] = [
  { id: 'acme', tier: 'pro', hfToken: ACME, limit: { max: 20, durationMs: 1000 } },
  { id: 'beta', tier: 'free', hfToken: BETA, limit: { max: 5, durationMs: 1000 } },
];

describe.skipIf(!HAVE_CHROMIUM)(TITLE, () => {
  const admin = adminRedis();
  let stack: Stack;
  let prefix: string;
  let worker: HfqWorker;
  let board: { proc: HfqProcess; url: string };
  let completedId = '';
  let accounts: AccountConfigInput[] = [];
  let dedicatedToken = '';
  const profile = mkdtempSync(join(tmpdir(), 'hfq-chromium-'));

  beforeAll(async () => {
    // Shared by the suite: the browser reads what this run left in Redis.
    stack = await startStack({
      label: 'browser',
      sim: { latency: { baseMs: 0, jitterMs: 0, minMs: 5, maxMs: 40 } },
      tokens: { [ACME]: { label: 'acme' }, [BETA]: { label: 'beta' } },
      teardown: 'caller',
    });
    const { sim } = stack;
    prefix = stack.prefix;
    // The demo's third account: an endpoint scaled to zero, used first, with management access.
    const dedicated = demoEndpointAccount(sim);
    dedicatedToken = dedicated.hfToken;
    accounts = [...BASE_ACCOUNTS, dedicated];
    worker = await stack.startWorker({
      accounts,
      upstream: { ...upstreamOf(sim), endpointsApiUrl: sim.endpointsApiUrl },
      logger: silentLogger(),
      cockpitFlushMs: 500,
      endpoints: { checkMs: 250 },
    });
    const producer = stack.newProducer();
    try {
      // acme: one 429 (a pause, a lowered learned rate), then a dozen mixed jobs, one failing.
      sim.script(ACME, [{ status: 429, retryAfter: 1 }]);
      const jobs: Job[] = [
        chatJob('acme', `my token is ${PASTED}, please summarise`),
        ...Array.from({ length: 8 }, (_, i) => chatJob('acme', `question ${i}`)),
        { account: 'acme', task: 'feature-extraction', model: 'BAAI/bge-small-en-v1.5', inputs: ['a', 'b'] },
        {
          account: 'acme',
          task: 'text-classification',
          model: 'distilbert/distilbert-base-uncased-finetuned-sst-2-english',
          inputs: 'great',
        },
      ];
      const [first, ...rest] = jobs;
      const handles = await producer.enqueueMany(rest);
      await Promise.all(handles.map((h) => h.result({ timeoutMs: 30_000 })));
      // The job with the pasted token finishes last: its card is first on the completed page.
      const newest = await producer.enqueue(first);
      await newest.result({ timeoutMs: 30_000 });
      completedId = newest.id;
      // dedicated: a cold start, then its embeddings on the endpoint (and the router for the rest).
      const embeddings = await producer.enqueueMany(demoEndpointJobs(24, 1));
      await Promise.all(embeddings.map((h) => h.result({ timeoutMs: 30_000 })));
      const failing = await producer.enqueue(chatJob('acme', 'a bad request'));
      sim.script(ACME, [
        { status: 422, body: { error: 'Input validation error: max_tokens must be at least 1' } },
      ]);
      await expect(failing.result({ timeoutMs: 20_000 })).rejects.toThrow();
      // beta: two jobs done, then its credits run out with no provider key: the account is held.
      const done = await producer.enqueueMany([chatJob('beta', 'first'), chatJob('beta', 'second')]);
      await Promise.all(done.map((h) => h.result({ timeoutMs: 20_000 })));
      sim.script(BETA, [{ status: 402 }]);
      const held = once(worker.events, 'hold') as Promise<WorkerEventMap['hold']>;
      await producer.enqueueMany([chatJob('beta', 'third'), chatJob('beta', 'fourth')]);
      expect((await held)[0].held).toBe(true);
    } finally {
      await producer.close();
    }
    // The board needs only REDIS_URL and HFQ_PREFIX: accounts come from what the worker published.
    board = await startBoardProcess({
      REDIS_URL: stack.redisUrl,
      HFQ_PREFIX: prefix,
      HFQ_BOARD_USER: USER,
      HFQ_BOARD_PASSWORD: PASSWORD,
    });
    mkdirSync(SHOTS, { recursive: true });
    // A screenshot left by an earlier run must not pass for this run's.
    for (const shot of ['board.png', 'status.png']) rmSync(join(SHOTS, shot), { force: true });
  });

  afterAll(async () => {
    await board?.proc.stop();
    await stack?.stop();
    rmSync(profile, { recursive: true, force: true });
    await admin.quit();
  });

  it('logs in, opens a queue, sees a completed job, then the status view; screenshots both', async () => {
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      httpCredentials: { username: USER, password: PASSWORD },
      viewport: { width: 1400, height: 900 },
    });
    const outside: string[] = [];
    const boardErrors: string[] = [];
    // Nothing leaves the machine: the board's CSP already refuses Google Fonts; refuse anything else too.
    await context.route('**/*', (route) => {
      const url = new URL(route.request().url());
      if (url.hostname === '127.0.0.1') return route.continue();
      outside.push(url.href);
      return route.abort();
    });
    try {
      const page = context.pages()[0] ?? (await context.newPage());
      page.on('console', (m) => {
        if (m.type() === 'error') boardErrors.push(m.text());
      });
      const login = await page.goto(`${board.url}/`);
      expect(login?.status()).toBe(200);
      await expect(page.title()).resolves.toBe('hfq');

      // The sidebar's link: the overview lists every queue as a card with the same name once it loads.
      await page.locator('#bull-board-sidebar').getByRole('link', { name: 'account-{acme}' }).click();
      await page.getByRole('link', { name: /completed/i }).click();
      const card = page.locator(`text=${completedId}`).first();
      await card.waitFor({ state: 'visible', timeout: 15_000 });
      // biome-ignore lint/performance/useDomNodeTextContent: the text as rendered, what a person reads
      const body = await page.locator('body').innerText();
      expect(body).toContain('chat-completion');
      expect(body).toContain('returnValue');
      expectNoSecrets(body, [...SECRETS, dedicatedToken], 'board page');
      await page.screenshot({ path: join(SHOTS, 'board.png') });
      // Bull Board's own fonts now come from the board: no CSP error on its page either.
      expect(boardErrors).toEqual([]);

      // During a run: a backlog for acme (20/s), and a job for a mistyped account no worker serves.
      const producer = stack.newProducer();
      try {
        await producer.enqueueMany(Array.from({ length: 300 }, (_, i) => chatJob('acme', `run ${i}`)));
        await producer.enqueue(chatJob('acmee', 'a typo in the account'));
      } finally {
        await producer.close();
      }
      // Completions reach the history within a flush: wait until the forecast has a throughput.
      await waitFor(async () => {
        const res = await fetch(`${board.url}/status.json`, {
          headers: { authorization: basicHeader(USER, PASSWORD) },
        });
        const report = (await res.json()) as {
          accounts: { account: string; counts: { completed?: number }; forecast: { etaMs?: number } }[];
        };
        const acme = report.accounts.find((a) => a.account === 'acme');
        // A few seconds into the run (at 20/s), so that the charts show it.
        return acme?.forecast.etaMs !== undefined && (acme.counts.completed ?? 0) >= 80;
      }, 'a throughput and an ETA for acme, a few seconds into the run');

      // dedicated's operator pauses its endpoint: hfq learns it from the management API.
      const paused = await fetch(`${stack.sim.endpointsApiUrl}/v2/endpoint/sim/demo-embedder/pause`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${dedicatedToken}` },
      });
      expect(paused.status).toBe(200);
      await waitFor(async () => {
        const res = await fetch(`${board.url}/status.json`, {
          headers: { authorization: basicHeader(USER, PASSWORD) },
        });
        const report = (await res.json()) as {
          accounts: { account: string; endpoints: { availability: string; costUsd?: number }[] }[];
        };
        const endpoint = report.accounts.find((a) => a.account === 'dedicated')?.endpoints[0];
        return endpoint?.availability === 'paused' && (endpoint.costUsd ?? 0) > 0;
      }, "dedicated's endpoint paused, with a cost so far, on status.json");

      const errors: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(m.text());
      });
      page.on('pageerror', (e) => errors.push(e.message));
      await page.setViewportSize({ width: 1024, height: 800 });
      const status = await page.goto(`${board.url}/status`);
      expect(status?.status()).toBe(200);
      await page.locator('body[data-charts]').waitFor({ state: 'attached', timeout: 15_000 });
      expect({ charts: await page.locator('body').getAttribute('data-charts'), errors }).toEqual({
        charts: 'ready',
        errors: [],
      });
      // Charts with data points: five canvases for acme, drawn from buckets the worker wrote.
      const charts = page.locator('.charts[data-account="acme"]');
      expect(Number(await charts.getAttribute('data-points'))).toBeGreaterThan(0);
      expect(Number(await charts.getAttribute('data-drawn'))).toBeGreaterThan(0);
      expect(await charts.locator('canvas').count()).toBe(5);
      // ETA and cost to complete.
      // biome-ignore lint/performance/useDomNodeTextContent: the text as rendered, what a person reads
      const forecastLine = await page.locator('p.forecast[data-account="acme"]').innerText();
      expect(forecastLine).toMatch(/ETA \d+ (s|m)/);
      expect(forecastLine).toMatch(/cost to complete ≈ \$/);
      // No budget set: spend against the tier's included credits, then pay-as-you-go.
      expect(forecastLine).toMatch(/HF spend \$[\d.]+ of the tier's included \$2\.00/);
      // Live workers.
      // biome-ignore lint/performance/useDomNodeTextContent: the text as rendered, what a person reads
      const workers = await page.locator('table.workers').innerText();
      expect(workers).toContain(worker.workerId);
      expect(workers).toContain('live');
      // Links back to Bull Board, and the page fits a 1024 px screen.
      expect(await page.getByRole('link', { name: 'queues (Bull Board)' }).getAttribute('href')).toBe('/');
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(1024);
      // biome-ignore lint/performance/useDomNodeTextContent: the text as rendered, what a person reads
      const table = await page.locator('table.accounts').innerText();
      // The mistyped account's queue is listed, flagged.
      expect(table).toMatch(/acmee\s+not configured/);
      expect(table).toMatch(/acme\s+pro/);
      expect(table).toMatch(/beta\s+free/);
      expect(table).toContain('exhausted until');
      expect(table).toContain('holding');
      // dedicated's endpoint, as a worker published it (the board has no account config): name,
      // state, why jobs go around it, in flight against its limits, jobs for it, cost so far.
      const endpoint = page.locator(
        'table.endpoints[data-account="dedicated"] tr[data-endpoint="demo-embedder"]',
      );
      // biome-ignore lint/performance/useDomNodeTextContent: the text as rendered, what a person reads
      const cell = async (name: string) => endpoint.locator(`td.${name}`).innerText();
      expect(await endpoint.locator('th').textContent()).toBe('demo-embedder');
      expect(await cell('state')).toBe('paused');
      // endpoint-first: its jobs go to the router while it is paused.
      expect(await cell('availability')).toMatch(
        /^paused: its jobs go to the router\s+paused \(management API\)$/,
      );
      expect(table).toMatch(
        /endpoint demo-embedder paused: its jobs go to the router \(paused \(management API\)\)/,
      );
      expect(await cell('in-flight')).toMatch(/^0 \/ 4\s+limit 4$/);
      expect(await cell('backlog')).toBe('0');
      expect(await cell('cost')).toMatch(/^\$0\.\d+$/);
      expect(await cell('last-action')).toBe('—');
      expectNoSecrets(await page.content(), [...SECRETS, dedicatedToken], 'status page');
      await page.screenshot({ path: join(SHOTS, 'status.png'), fullPage: true });
      // Fonts and charts are the board's own: nothing outside was asked for, no console error.
      expect(outside).toEqual([]);
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
    expect(existsSync(join(SHOTS, 'board.png')) && existsSync(join(SHOTS, 'status.png'))).toBe(true);
  });
});
