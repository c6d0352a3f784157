import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { BatchRecordStore } from '../packages/worker/src/batch-route/batch-record-store.js';
import { basicHeader, chatJob, silentLogger, startBoardProcess } from './ops-support.js';
import { ROOT } from './support/processes.js';
import { startStack } from './support/stack.js';
import { waitFor } from './support/wait.js';

/**
 * The cockpit on a phone, in real headless Chromium: at 390 px no element is wider than the
 * screen, the charts draw (fetched against the page's origin, with the credentials in the page's
 * URL) and their newest data is inside what is drawn; an override shows as one; and Bull Board's
 * header carries a visible link to the status view. Screenshot: test-results/ops-browser/status-390.png.
 */

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const HAVE_CHROMIUM = existsSync(CHROMIUM);
const SHOTS = join(ROOT, 'test-results', 'ops-browser');
const TOKEN = 'hf_browser_narrow_0123456789abcdef';
const USER = 'ops';
const PASSWORD = 'narrow-pass-5e4d3c2b';

describe.skipIf(!HAVE_CHROMIUM)('the cockpit at 390 px in a real browser', () => {
  it('fits the screen, draws its charts with credentials in the URL, links from Bull Board', {
    timeout: 180_000,
  }, async () => {
    const stack = await startStack({
      label: 'narrow',
      accounts: [
        { id: 'acme-with-a-long-name', tier: 'pro', hfToken: TOKEN, limit: { max: 20, durationMs: 1000 } },
      ],
      tokens: { [TOKEN]: { label: 'acme' } },
    });
    await stack.startWorker({ logger: silentLogger(), cockpitFlushMs: 300 });
    const producer = stack.newProducer();
    const handles = await producer.enqueueMany(
      Array.from({ length: 30 }, (_, i) => chatJob('acme-with-a-long-name', `question ${i}`)),
    );
    await Promise.all(handles.map((h) => h.result({ timeoutMs: 30_000 })));
    await stack.admin.setLimit('acme-with-a-long-name', 10, { forMs: 3_600_000 });
    // A provider batch of the account, as the batch route records it: its row must fit too.
    const now = Date.now();
    await new BatchRecordStore(stack.redis(), stack.prefix).open('acme-with-a-long-name', {
      provider: 'together',
      keyDomain: 'key-domain',
      endpoint: '/v1/chat/completions',
      jobIds: Array.from({ length: 1200 }, (_, i) => `job-${i}`),
      deadlineMs: now + 3_600_000,
      hedgeAtMs: now + 2_400_000,
    });
    const board = await startBoardProcess({
      REDIS_URL: stack.redisUrl,
      HFQ_PREFIX: stack.prefix,
      HFQ_BOARD_USER: USER,
      HFQ_BOARD_PASSWORD: PASSWORD,
    });
    stack.defer(() => board.proc.stop());
    // History reaches Redis within a flush: wait until the board reads completions.
    await waitFor(async () => {
      const res = await fetch(`${board.url}/history.json?hours=1`, {
        headers: { authorization: basicHeader(USER, PASSWORD) },
      });
      const history = (await res.json()) as { accounts: Record<string, { completed: number }[]> };
      return (history.accounts['acme-with-a-long-name'] ?? []).some((p) => p.completed > 0);
    }, 'completions in the history');

    const profile = mkdtempSync(join(tmpdir(), 'hfq-chromium-narrow-'));
    const browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
      viewport: { width: 390, height: 844 },
      deviceScaleFactor: 1,
    });
    try {
      const page = browser.pages()[0] ?? (await browser.newPage());
      const errors: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(m.text());
      });
      page.on('pageerror', (e) => errors.push(e.message));
      // The credentials in the URL, as a user may open it: the page's fetches must still work.
      const url = new URL(`${board.url}/status`);
      url.username = USER;
      url.password = PASSWORD;
      const res = await page.goto(url.toString());
      expect(res?.status()).toBe(200);
      await page.locator('body[data-charts]').waitFor({ state: 'attached', timeout: 20_000 });
      expect({ charts: await page.locator('body').getAttribute('data-charts'), errors }).toEqual({
        charts: 'ready',
        errors: [],
      });

      // No element wider than the screen, and no horizontal scrolling.
      const layout = await page.evaluate(() => {
        const width = document.documentElement.clientWidth;
        const wide = Array.from(document.querySelectorAll('body *'))
          .map((el) => ({ el, box: el.getBoundingClientRect() }))
          .filter(({ box }) => box.width > 0 && (box.right > width + 0.5 || box.left < -0.5))
          .map(
            ({ el, box }) =>
              `${el.tagName.toLowerCase()}.${el.className} ${Math.round(box.left)}..${Math.round(box.right)}`,
          );
        return { width, scrollWidth: document.documentElement.scrollWidth, wide };
      });
      expect(layout.width).toBe(390);
      expect(layout.wide).toEqual([]);
      expect(layout.scrollWidth).toBeLessThanOrEqual(390);

      // Every chart's canvas lies inside its cell (nothing clipped), and the newest data is drawn.
      const charts = page.locator('.charts[data-account="acme-with-a-long-name"]');
      expect(await charts.locator('canvas').count()).toBeGreaterThanOrEqual(5);
      const clipped = await charts.evaluate((container) =>
        Array.from(container.querySelectorAll('.chart')).flatMap((cell) => {
          const outer = cell.getBoundingClientRect();
          return Array.from(cell.querySelectorAll('canvas'))
            .map((c) => c.getBoundingClientRect())
            .filter((box) => box.right > outer.right + 0.5 || box.left < outer.left - 0.5)
            .map(
              (box) =>
                `${Math.round(box.left)}..${Math.round(box.right)} outside ${Math.round(outer.left)}..${Math.round(outer.right)}`,
            );
        }),
      );
      expect(clipped).toEqual([]);
      const newest = Number(await charts.getAttribute('data-newest'));
      expect(newest).toBeGreaterThan(0);
      expect(newest).toBeLessThanOrEqual(Number(await charts.getAttribute('data-xmax')));

      // The override, as an override.
      // biome-ignore lint/performance/useDomNodeTextContent: the text as rendered, what a person reads
      const table = await page.locator('table.accounts').innerText();
      expect(table).toMatch(/override of 20 until \d\d:\d\dZ/);
      // The batch's row: provider, state, jobs, hedge time and deadline.
      // biome-ignore lint/performance/useDomNodeTextContent: the text as rendered, what a person reads
      const batches = await page.locator('table.batches[data-account="acme-with-a-long-name"]').innerText();
      expect(batches).toMatch(
        /together[\s\S]*planned[\s\S]*1200[\s\S]*in (40|39) m[\s\S]*in (1 h 00 m|59 m)/,
      );
      mkdirSync(SHOTS, { recursive: true });
      await page.screenshot({ path: join(SHOTS, 'status-390.png'), fullPage: true });

      // Bull Board's header: a link to the status view, visible and not covered.
      await page.goto(`${url.origin.replace('//', `//${USER}:${PASSWORD}@`)}/`);
      const link = page.locator('#hfq-status-link');
      await link.waitFor({ state: 'visible', timeout: 15_000 });
      expect(await link.getAttribute('href')).toBe('/status');
      await page.locator('header').first().waitFor({ state: 'visible', timeout: 15_000 });
      await page.screenshot({ path: join(SHOTS, 'board-390.png') });
      const box = await link.boundingBox();
      // Inside the header's first row, over none of Bull Board's own header elements, readable.
      const placement = await page.evaluate(() => {
        const a = document.getElementById('hfq-status-link') as HTMLElement;
        const own = a.getBoundingClientRect();
        const header = document.querySelector('header') as HTMLElement;
        const overlaps = Array.from(header.querySelectorAll('a, button, img, svg, h1, h2, span, div'))
          .filter((el) => el.children.length === 0 || el.tagName === 'svg' || el.tagName === 'BUTTON')
          .map((el) => ({ el, r: el.getBoundingClientRect() }))
          .filter(
            ({ r }) =>
              r.width > 0 &&
              r.left < own.right &&
              r.right > own.left &&
              r.top < own.bottom &&
              r.bottom > own.top,
          )
          .map(({ el }) => `${el.tagName.toLowerCase()} ${(el.textContent ?? '').trim().slice(0, 20)}`);
        const h = header.getBoundingClientRect();
        return {
          overlaps,
          inHeader: own.top >= h.top - 0.5 && own.bottom <= h.bottom + 0.5 && own.right <= window.innerWidth,
          color: getComputedStyle(a).color,
          headerBackground: getComputedStyle(header).backgroundColor,
        };
      });
      expect(box).toBeTruthy();
      expect(placement.overlaps).toEqual([]);
      expect(placement.inHeader).toBe(true);
      expect(placement.color).toBe('rgb(36, 86, 200)');
      expect(placement.headerBackground).not.toBe(placement.color);
      await link.click();
      await page.waitForURL(/\/status$/);
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
      rmSync(profile, { recursive: true, force: true });
      await producer.close();
      await stack.stop();
    }
  });
});
