import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createProducer } from '@hfq/producer';
import type { AccountConfigInput, Job } from '@hfq/shared';
import { type Sim, startSim } from '@hfq/sim';
import { createWorker, type HfqWorker, type WorkerEventMap } from '@hfq/worker';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatJob, silentLogger, startBoardProcess } from './ops-support.js';
import { type HfqProcess, ROOT } from './support/processes.js';
import { adminRedis, expectNoClientsLeft, redisUrl, testPrefix } from './support/redis.js';
import { expectNoSecrets, upstreamOf, workerEnv } from './support/stack.js';

/**
 * A person's view of the board: headless Chromium (Debian's, driven by playwright-core) logs in
 * with basic auth, opens a queue, finds a completed job, and opens the status view. Screenshots
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
const ACCOUNTS: AccountConfigInput[] = [
  { id: 'acme', tier: 'pro', hfToken: ACME, limit: { max: 20, durationMs: 1000 } },
  { id: 'beta', tier: 'free', hfToken: BETA, limit: { max: 5, durationMs: 1000 } },
];

describe.skipIf(!HAVE_CHROMIUM)(TITLE, () => {
  const prefix = testPrefix('browser');
  const admin = adminRedis();
  let sim: Sim;
  let worker: HfqWorker;
  let board: { proc: HfqProcess; url: string };
  let cleanup = () => {};
  let completedId = '';
  const profile = mkdtempSync(join(tmpdir(), 'hfq-chromium-'));

  beforeAll(async () => {
    sim = await startSim({ latency: { baseMs: 0, jitterMs: 0, minMs: 5, maxMs: 40 } });
    sim.setToken(ACME, { label: 'acme' });
    sim.setToken(BETA, { label: 'beta' });
    worker = await createWorker({
      connection: redisUrl(),
      prefix,
      accounts: ACCOUNTS,
      upstream: upstreamOf(sim),
      logger: silentLogger(),
    });
    const producer = createProducer({ connection: redisUrl(), prefix });
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
      const handles = await producer.enqueueMany(jobs);
      await Promise.all(handles.map((h) => h.result({ timeoutMs: 30_000 })));
      completedId = handles[0]?.id ?? '';
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
    const stack = workerEnv(sim, { redisUrl: redisUrl(), prefix, accounts: ACCOUNTS });
    cleanup = stack.cleanup;
    board = await startBoardProcess({ ...stack.env, HFQ_BOARD_USER: USER, HFQ_BOARD_PASSWORD: PASSWORD });
    mkdirSync(SHOTS, { recursive: true });
    // A screenshot left by an earlier run must not pass for this run's.
    for (const shot of ['board.png', 'status.png']) rmSync(join(SHOTS, shot), { force: true });
  });

  afterAll(async () => {
    await board?.proc.stop();
    cleanup();
    await worker?.close();
    await sim?.close();
    rmSync(profile, { recursive: true, force: true });
    await expectNoClientsLeft(admin, prefix);
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
    // Nothing leaves the machine: the board's CSP already refuses Google Fonts; refuse anything else too.
    await context.route('**/*', (route) => {
      const url = new URL(route.request().url());
      if (url.hostname === '127.0.0.1') return route.continue();
      outside.push(url.href);
      return route.abort();
    });
    try {
      const page = context.pages()[0] ?? (await context.newPage());
      const login = await page.goto(`${board.url}/`);
      expect(login?.status()).toBe(200);
      await expect(page.title()).resolves.toBe('hfq');

      // The sidebar's link: the overview lists every queue as a card with the same name once it loads.
      await page.locator('#bull-board-sidebar').getByRole('link', { name: 'account-acme' }).click();
      await page.getByRole('link', { name: /completed/i }).click();
      const card = page.locator(`text=#${completedId}`).first();
      await card.waitFor({ state: 'visible', timeout: 15_000 });
      // biome-ignore lint/performance/useDomNodeTextContent: the text as rendered, what a person reads
      const body = await page.locator('body').innerText();
      expect(body).toContain('chat-completion');
      expect(body).toContain('returnValue');
      expectNoSecrets(body, SECRETS, 'board page');
      await page.screenshot({ path: join(SHOTS, 'board.png') });

      const status = await page.goto(`${board.url}/status`);
      expect(status?.status()).toBe(200);
      // biome-ignore lint/performance/useDomNodeTextContent: the text as rendered, what a person reads
      const table = await page.locator('table').innerText();
      expect(table).toMatch(/acme\s+pro/);
      expect(table).toMatch(/beta\s+free/);
      expect(table).toContain('exhausted until');
      expect(table).toContain('holding');
      expectNoSecrets(await page.content(), SECRETS, 'status page');
      await page.screenshot({ path: join(SHOTS, 'status.png'), fullPage: true });
      expect(outside.every((u) => u.startsWith('https://fonts.googleapis.com/'))).toBe(true);
    } finally {
      await context.close();
    }
    expect(existsSync(join(SHOTS, 'board.png')) && existsSync(join(SHOTS, 'status.png'))).toBe(true);
  });
});
