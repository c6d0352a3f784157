/** The request log and its statistics, the `/_sim` control endpoints, and the process entry point. */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from 'vitest';
import { simForFile } from '../../../test/support/sim-clock.js';
import { parseConfigPatch, parseSimEnv, SimConfigError, SimEnvError, startSim } from '../src/index.js';

const BGE = 'BAAI/bge-small-en-v1.5';

let clock = 0;
const sim = simForFile(() => clock);

function embed(token: string): Promise<Response> {
  return fetch(`${sim.routerUrl}/together/v1/embeddings`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: BGE, input: 'a' }),
  });
}

describe('stats', () => {
  test('maxInWindow counts admitted and all arrivals exactly on a known sequence', async () => {
    sim.resetStats();
    sim.setToken('hf_window', {
      label: 'window',
      limits: [{ algorithm: 'sliding-window', limit: 2, windowMs: 1000 }],
    });
    const statuses: number[] = [];
    for (const at of [0, 0, 0, 500, 1000, 1000, 1999]) {
      clock = 10_000 + at;
      const response = await embed('hf_window');
      await response.arrayBuffer();
      statuses.push(response.status);
    }
    expect(statuses).toEqual([200, 200, 429, 429, 200, 200, 429]);
    expect(sim.maxInWindow(1000, { tokenLabel: 'window' })).toEqual({ admitted: 2, arrivals: 4 });
    expect(sim.maxInWindow(1001)).toEqual({ admitted: 4, arrivals: 6 });
    const stats = sim.stats();
    expect(stats.byStatus).toEqual({ '200': 4, '429': 3 });
    expect(stats.byRoute).toEqual({ router: 7 });
    expect(stats.byProvider).toEqual({ together: 7 });
    expect(stats.byToken.window).toEqual({ total: 7, byStatus: { '200': 4, '429': 3 } });
    expect(stats.firstAt).toBe(10_000);
    expect(stats.lastAt).toBe(11_999);
    expect(stats.maxConcurrent).toBe(1);
    expect(stats.log[0]).toMatchObject({
      route: 'router',
      provider: 'together',
      path: '/router/together/v1/embeddings',
      model: BGE,
      status: 200,
      tokenLabel: 'window',
      authorizationKind: 'hf',
      billTo: null,
      items: 1,
      fault: null,
      scripted: false,
    });
  });

  test('maxConcurrent sees overlapping requests', async () => {
    sim.resetStats();
    sim.setToken('hf_parallel', { latency: { baseMs: 50 } });
    await Promise.all(Array.from({ length: 5 }, async () => (await embed('hf_parallel')).arrayBuffer()));
    expect(sim.stats().maxConcurrent).toBe(5);
    expect(sim.stats().inFlight).toBe(0);
  });

  test('the log is bounded', async () => {
    sim.resetStats();
    sim.configure({ logLimit: 3 });
    try {
      for (let i = 0; i < 5; i++) await (await embed('hf_bounded')).arrayBuffer();
      const stats = sim.stats();
      expect(stats.total).toBe(5);
      expect(stats.log.map((record) => record.seq)).toEqual(
        [3, 4, 5].map((n) => n + (stats.log[0]?.seq ?? 0) - 3),
      );
      expect(stats.log).toHaveLength(3);
      expect(stats.logDropped).toBe(2);
    } finally {
      sim.configure({ logLimit: 200_000 });
    }
  });
});

describe('/_sim control endpoints', () => {
  const control = (path: string, body?: unknown): Promise<Response> =>
    fetch(
      `${sim.url}/_sim/${path}`,
      body === undefined ? {} : { method: 'POST', body: JSON.stringify(body) },
    );

  test('health, stats with windows, reset', async () => {
    expect(await (await control('health')).json()).toEqual({ ok: true, url: sim.url });
    sim.resetStats();
    await (await embed('hf_ctl')).arrayBuffer();
    const stats = await (await control('stats?windowMs=1000&windowMs=60000')).json();
    expect(stats.total).toBe(1);
    expect(stats.log).toEqual([]);
    expect(stats.maxInWindow).toEqual({
      '1000': { admitted: 1, arrivals: 1 },
      '60000': { admitted: 1, arrivals: 1 },
    });
    expect((await (await control('stats?log=1')).json()).log).toHaveLength(1);
    expect(await (await control('reset-stats', {})).json()).toEqual({ ok: true });
    expect(sim.stats().total).toBe(0);
  });

  test('config is validated and applied', async () => {
    const bad = await control('config', { faults: { error5xxRate: 2 } });
    expect(bad.status).toBe(400);
    expect((await bad.json()).error).toBe('config.faults.error5xxRate: expected a number in 0..1, got 2');
    const unknown = await control('config', { fautls: {} });
    expect((await unknown.json()).error).toMatch(/^config\.fautls: unknown option/);
    const ok = await control('config', { tokens: { hf_remote: { revoked: true } } });
    expect(ok.status).toBe(200);
    expect((await embed('hf_remote')).status).toBe(401);
  });

  test('scripts can be queued over HTTP', async () => {
    expect((await control('script', { token: 'hf_remote_script', steps: [{ status: 503 }] })).status).toBe(
      200,
    );
    expect((await embed('hf_remote_script')).status).toBe(503);
    const bad = await control('script', { token: 'x', steps: [{ fault: 'explode' }] });
    expect(bad.status).toBe(400);
  });

  test('unknown paths are 404 and not recorded', async () => {
    sim.resetStats();
    expect((await fetch(`${sim.url}/elsewhere`)).status).toBe(404);
    expect((await control('nothing')).status).toBe(404);
    expect(sim.stats().total).toBe(0);
  });
});

describe('configuration input', () => {
  test('parseConfigPatch names the bad option', () => {
    expect(() =>
      parseConfigPatch({ tokens: { t: { limits: [{ algorithm: 'leaky', limit: 1, windowMs: 1 }] } } }),
    ).toThrow(
      new SimConfigError(
        'config.tokens.t.limits[0].algorithm: expected one of "sliding-window", "token-bucket", "fixed-window", got "leaky"',
      ),
    );
    expect(() => parseConfigPatch({ models: { m: { providers: { openai: { task: 'x' } } } } })).toThrow(
      /config\.models\.m\.providers key/,
    );
    expect(parseConfigPatch({ maxItemsPerRequest: null, models: { gone: null } })).toEqual({
      maxItemsPerRequest: null,
      models: { gone: null },
    });
  });

  test('startSim rejects invalid options', async () => {
    await expect(startSim({ latency: { baseMs: -1 } })).rejects.toThrow(SimConfigError);
  });

  test('parseSimEnv reads SIM_PORT, SIM_HOST and SIM_CONFIG', () => {
    expect(parseSimEnv({})).toEqual({ port: 8080, host: '127.0.0.1', configPath: null });
    expect(parseSimEnv({ SIM_PORT: '0', SIM_HOST: '0.0.0.0', SIM_CONFIG: '/x.json' })).toEqual({
      port: 0,
      host: '0.0.0.0',
      configPath: '/x.json',
    });
    expect(() => parseSimEnv({ SIM_PORT: 'eighty' })).toThrow(
      new SimEnvError('SIM_PORT: expected an integer in 0..65535, got "eighty"'),
    );
  });
});

describe('main.ts', () => {
  let child: ChildProcess | undefined;
  let dir = '';
  afterAll(async () => {
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('prints its base URLs as one JSON line and serves the config file', async () => {
    dir = await mkdtemp(join(tmpdir(), 'hfq-sim-'));
    const configPath = join(dir, 'sim.json');
    await writeFile(configPath, JSON.stringify({ tokens: { hf_file: { revoked: true } } }));
    const root = fileURLToPath(new URL('../../..', import.meta.url));
    const main = fileURLToPath(new URL('../src/main.ts', import.meta.url));
    child = spawn(process.execPath, ['--import', 'tsx', main], {
      cwd: root,
      env: { ...process.env, SIM_PORT: '0', SIM_CONFIG: configPath },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const stdout = child.stdout;
    if (!stdout) throw new Error('no stdout');
    const [line] = (await once(createInterface({ input: stdout }), 'line')) as [string];
    const urls = JSON.parse(line);
    expect(urls.hubUrl).toBe(`${urls.url}/hub`);
    expect(urls.routerUrl).toBe(`${urls.url}/router`);
    expect(urls.providerUrls).toEqual({
      together: `${urls.url}/providers/together`,
      cerebras: `${urls.url}/providers/cerebras`,
    });
    expect((await fetch(`${urls.url}/_sim/health`)).status).toBe(200);
    const revoked = await fetch(`${urls.routerUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: 'Bearer hf_file' },
      body: '{}',
    });
    expect(revoked.status).toBe(401);
    child.kill('SIGTERM');
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
  });
});
