import { startSim } from '@hfq/sim';
import { describe, expect, it } from 'vitest';
import { HfqProcess, startWorkerProcess } from './support/processes.js';
import { adminRedis, expectNoClientsLeft, redisUrl, testPrefix } from './support/redis.js';

/**
 * At start a worker asks the Hub once who each HF token belongs to (`whoami-v2`) and says which
 * upstream it talks to: a refused token stops start-up naming the account, never the token.
 */

const GOOD = 'hf_startcheck_good_0123456789';
const REVOKED = 'hf_startcheck_revoked_0123456789';

describe('worker start-up check', () => {
  it('logs the simulator as its upstream with the token owner, then ready', { timeout: 60_000 }, async () => {
    const sim = await startSim({ tokens: { [GOOD]: { label: 'acme-user' } } });
    const prefix = testPrefix('wsc');
    const admin = adminRedis();
    const worker = await startWorkerProcess({
      REDIS_URL: redisUrl(),
      HFQ_PREFIX: prefix,
      HFQ_ACCOUNT: 'acme',
      HF_TOKEN: GOOD,
      HF_ROUTER_URL: sim.routerUrl,
      HF_HUB_URL: sim.hubUrl,
      HFQ_METRICS_PORT: '0',
      HFQ_LOG_FORMAT: 'json',
    });
    try {
      const event = worker.events().find((e) => String(e.msg).startsWith('upstream:'));
      expect(event, worker.lines.join('\n')).toMatchObject({
        msg: `upstream: the simulator at ${sim.routerUrl} (not Hugging Face)`,
        upstream: 'simulator',
        hubUrl: sim.hubUrl,
        tokens: { acme: 'acme-user' },
      });
      // Checked before the worker said it was ready.
      const order = worker.events().map((e) => String(e.msg));
      expect(order.indexOf(String(event?.msg))).toBeLessThan(order.indexOf('worker ready'));
      expect(worker.lines.join('\n')).not.toContain(GOOD);
    } finally {
      const stopped = await worker.stop();
      expect(stopped, worker.lines.slice(-5).join('\n')).toEqual({ code: 0, signal: null });
      await expectNoClientsLeft(admin, prefix);
      await admin.quit();
      await sim.close();
    }
  });

  it('a token the Hub refuses stops start-up with exit 2, naming the account', {
    timeout: 60_000,
  }, async () => {
    const sim = await startSim({ tokens: { [REVOKED]: { label: 'gone', revoked: true } } });
    try {
      const proc = HfqProcess.start(['worker'], {
        REDIS_URL: redisUrl(),
        HFQ_PREFIX: testPrefix('wsc'),
        HFQ_ACCOUNT: 'acme',
        HF_TOKEN: REVOKED,
        HF_ROUTER_URL: sim.routerUrl,
        HF_HUB_URL: sim.hubUrl,
        HFQ_METRICS_PORT: '0',
        HFQ_LOG_FORMAT: 'json',
      });
      const exit = await proc.exited;
      const text = proc.lines.join('\n');
      expect(exit.code, text).toBe(2);
      expect(proc.lines.at(-1)).toBe(
        'hfq worker: configuration error: HF_TOKEN: the Hub refused the HF token of account acme (401: Invalid credentials in Authorization header); check the token at https://huggingface.co/settings/tokens',
      );
      expect(text).not.toContain('worker ready');
      expect(text).not.toContain(REVOKED);
    } finally {
      await sim.close();
    }
  });
});
