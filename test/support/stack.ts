import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AccountConfigInput } from '@hfq/shared';
import type { Sim } from '@hfq/sim';
import { expect } from 'vitest';

/** Environment for an `hfq worker` process pointed at the simulator and the test's Redis and prefix. */
export function workerEnv(
  sim: Sim,
  options: {
    redisUrl: string;
    prefix: string;
    accounts: AccountConfigInput[];
    concurrency?: number;
    extra?: Record<string, string>;
  },
): { env: Record<string, string>; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'hfq-accounts-'));
  const file = join(dir, 'accounts.json');
  writeFileSync(file, JSON.stringify(options.accounts));
  return {
    env: {
      REDIS_URL: options.redisUrl,
      HFQ_PREFIX: options.prefix,
      HFQ_ACCOUNTS_FILE: file,
      HFQ_CONCURRENCY: String(options.concurrency ?? 8),
      HF_ROUTER_URL: sim.routerUrl,
      HF_HUB_URL: sim.hubUrl,
      HFQ_PROVIDER_URLS: `together=${sim.providerUrls.together},cerebras=${sim.providerUrls.cerebras}`,
      // Each worker process serves /metrics: any free port, so several can run on one machine.
      HFQ_METRICS_PORT: '0',
      ...options.extra,
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Upstream URLs for an in-process worker. */
export function upstreamOf(sim: Sim) {
  return { routerUrl: sim.routerUrl, hubUrl: sim.hubUrl, providerUrls: { ...sim.providerUrls } };
}

/** Asserts that none of `secrets` occurs in `text` (logs, Redis dumps, results). */
export function expectNoSecrets(text: string, secrets: string[], where: string): void {
  for (const secret of secrets) {
    expect(text.includes(secret), `${where} contains a secret`).toBe(false);
  }
}
