/**
 * The simulator in a process of its own, driven over its `/_sim` control API.
 *
 * A benchmark that measures pacing must not share an event loop with the upstream it measures:
 * the simulator stamps each request when its handler runs, so a stall in the benchmark's own
 * process (enqueuing thousands of jobs, awaiting their results) would bunch the stamps and make
 * well-spaced requests look like a burst. Run apart, the stamps are the simulator's own clock.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  maxInWindow,
  type RecordQuery,
  type RequestRecord,
  type SimConfigPatch,
  type SimStats,
  type TokenConfig,
  type WindowCounts,
} from '@hfq/sim';
import { ChildNode } from './child.js';

export interface SimProcess {
  readonly url: string;
  readonly routerUrl: string;
  readonly hubUrl: string;
  readonly providerUrls: { together: string; cerebras: string };
  configure(patch: SimConfigPatch): Promise<void>;
  setToken(token: string, config: TokenConfig): Promise<void>;
  /** Logged requests matching every field of `query`, oldest first. */
  requests(query?: RecordQuery): Promise<RequestRecord[]>;
  /** Most admitted (non-429) requests and most arrivals in any window of `windowMs`, as `Sim.maxInWindow`. */
  maxInWindow(windowMs: number, query?: RecordQuery): Promise<WindowCounts>;
  resetStats(): Promise<void>;
  close(): Promise<void>;
}

function matches(record: RequestRecord, query: RecordQuery | undefined): boolean {
  if (!query) return true;
  return Object.entries(query).every(
    ([key, expected]) => expected === undefined || record[key as keyof RequestRecord] === expected,
  );
}

export async function startSimProcess(patch: SimConfigPatch): Promise<SimProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'hfq-bench-sim-'));
  const configPath = join(dir, 'sim.json');
  writeFileSync(configPath, JSON.stringify(patch));
  const child = ChildNode.start({
    label: 'simulator',
    script: 'packages/sim/src/main.ts',
    env: { SIM_PORT: '0', SIM_HOST: '127.0.0.1', SIM_CONFIG: configPath },
  });
  const close = async () => {
    await child.stop({ killAfterMs: 5_000 });
    rmSync(dir, { recursive: true, force: true });
  };
  let urls: { url: string; routerUrl: string; hubUrl: string; providerUrls: SimProcess['providerUrls'] };
  try {
    await child.waitForLine('"routerUrl"', 60_000);
    const line = child.tail.find((l) => l.includes('"routerUrl"')) as string;
    urls = JSON.parse(line);
  } catch (err) {
    await close();
    throw err;
  }

  const control = async (method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> => {
    const response = await fetch(`${urls.url}/_sim/${path}`, {
      method,
      ...(body === undefined
        ? {}
        : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`simulator ${method} /_sim/${path}: ${response.status} ${text}`);
    return JSON.parse(text) as unknown;
  };
  const requests = async (query?: RecordQuery) => {
    const stats = (await control('GET', 'stats?log=1')) as SimStats;
    if (stats.logDropped > 0)
      throw new Error(`simulator log dropped ${stats.logDropped} records: raise logLimit`);
    return stats.log.filter((record) => matches(record, query));
  };

  return {
    ...urls,
    configure: async (next) => {
      await control('POST', 'config', next);
    },
    setToken: async (token, config) => {
      await control('POST', 'config', { tokens: { [token]: config } });
    },
    requests,
    maxInWindow: async (windowMs, query) => {
      const selected = await requests(query);
      return {
        admitted: maxInWindow(
          selected.filter((r) => r.status !== 429).map((r) => r.t),
          windowMs,
        ),
        arrivals: maxInWindow(
          selected.map((r) => r.t),
          windowMs,
        ),
      };
    },
    resetStats: async () => {
      await control('POST', 'reset-stats');
    },
    close,
  };
}
