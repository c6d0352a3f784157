import { once } from 'node:events';
import { createServer } from 'node:net';
import { type ConfigError, type Env, loadConfig } from '@hfq/shared';
import { describe, expect, it } from 'vitest';
import { http, startBoardProcess } from './ops-support.js';
import { loadConfigError, noFile } from './support/config.js';
import { HfqProcess } from './support/processes.js';
import { adminRedis, expectNoClientsLeft, redisUrl, testPrefix } from './support/redis.js';

const BASE: Env = { HFQ_ACCOUNT: 'acme', HF_TOKEN: 'hf_config_secret_0123456789abcdef' };

function configError(env: Env): ConfigError {
  return loadConfigError({ ...BASE, ...env });
}

describe('operations config: errors name the variable', () => {
  it('defaults: auth on, writable board on every interface, metrics on 9464, 30 s grace', () => {
    const config = loadConfig(BASE, noFile);
    expect(config).toMatchObject({
      boardHost: '0.0.0.0',
      boardPort: 3000,
      boardAuth: true,
      boardReadOnly: false,
      metricsPort: 9464,
      shutdownGraceMs: 30_000,
    });
  });

  it('HFQ_BOARD_AUTH: "basic", "on" or "off"; "off" only on a loopback HFQ_BOARD_HOST', () => {
    expect(configError({ HFQ_BOARD_AUTH: 'none' }).variable).toBe('HFQ_BOARD_AUTH');
    const open = configError({ HFQ_BOARD_AUTH: 'off' });
    expect(open.variable).toBe('HFQ_BOARD_AUTH');
    expect(open.message).toContain('HFQ_BOARD_HOST=127.0.0.1');
    expect(configError({ HFQ_BOARD_AUTH: 'off', HFQ_BOARD_HOST: '10.0.0.5' }).variable).toBe(
      'HFQ_BOARD_AUTH',
    );
    for (const host of ['127.0.0.1', '::1', 'localhost']) {
      expect(loadConfig({ ...BASE, HFQ_BOARD_AUTH: 'off', HFQ_BOARD_HOST: host }, noFile).boardAuth).toBe(
        false,
      );
    }
    expect(loadConfig({ ...BASE, HFQ_BOARD_AUTH: 'on' }, noFile).boardAuth).toBe(true);
  });

  it('HFQ_BOARD_READ_ONLY, HFQ_BOARD_HOST, HFQ_BOARD_PORT, HFQ_METRICS_PORT, HFQ_SHUTDOWN_GRACE_MS', () => {
    expect(configError({ HFQ_BOARD_READ_ONLY: 'perhaps' }).variable).toBe('HFQ_BOARD_READ_ONLY');
    expect(loadConfig({ ...BASE, HFQ_BOARD_READ_ONLY: 'true' }, noFile).boardReadOnly).toBe(true);
    expect(loadConfig({ ...BASE, HFQ_BOARD_READ_ONLY: '0' }, noFile).boardReadOnly).toBe(false);
    expect(configError({ HFQ_BOARD_HOST: 'not a host!' }).variable).toBe('HFQ_BOARD_HOST');
    expect(configError({ HFQ_BOARD_PORT: '70000' }).variable).toBe('HFQ_BOARD_PORT');
    expect(configError({ HFQ_METRICS_PORT: 'ninety' }).variable).toBe('HFQ_METRICS_PORT');
    expect(configError({ HFQ_SHUTDOWN_GRACE_MS: '-5' }).variable).toBe('HFQ_SHUTDOWN_GRACE_MS');
    expect(loadConfig({ ...BASE, HFQ_METRICS_PORT: '0' }, noFile).metricsPort).toBe(0);
  });

  it('HFQ_BOARD_USER and HFQ_BOARD_PASSWORD come together; the password never shows in an error', () => {
    const error = configError({ HFQ_BOARD_USER: 'ops' });
    expect(error.variable).toBe('HFQ_BOARD_PASSWORD');
    expect(configError({ HFQ_BOARD_PASSWORD: 'secret-pass-123' }).variable).toBe('HFQ_BOARD_USER');
    expect(configError({ HFQ_BOARD_PASSWORD: 'secret-pass-123' }).message).not.toContain('secret-pass-123');
  });
});

describe('operations config: the commands refuse to start', () => {
  const env = { REDIS_URL: redisUrl(), HFQ_PREFIX: testPrefix('cfg'), ...BASE } as Record<string, string>;

  it('hfq board without credentials names HFQ_BOARD_USER and exits 2', async () => {
    const proc = HfqProcess.start(['board'], env);
    const exit = await proc.exited;
    expect(exit.code).toBe(2);
    expect(proc.lines.join('\n')).toContain('configuration error: HFQ_BOARD_USER: missing');
  });

  it('hfq board with HFQ_BOARD_AUTH=off on every interface names HFQ_BOARD_AUTH and exits 2', async () => {
    const proc = HfqProcess.start(['board'], { ...env, HFQ_BOARD_AUTH: 'off', HFQ_BOARD_HOST: '0.0.0.0' });
    expect((await proc.exited).code).toBe(2);
    expect(proc.lines.join('\n')).toContain('configuration error: HFQ_BOARD_AUTH:');
  });

  it('hfq board with HFQ_BOARD_AUTH=off on loopback serves without credentials', async () => {
    const admin = adminRedis();
    const { proc, url } = await startBoardProcess({ ...env, HFQ_BOARD_AUTH: 'off' });
    try {
      expect((await http(`${url}/api/queues`)).status).toBe(200);
      expect((await http(`${url}/status.json`)).status).toBe(200);
    } finally {
      expect((await proc.stop()).code).toBe(0);
      await expectNoClientsLeft(admin, env.HFQ_PREFIX as string);
      await admin.quit();
    }
  });

  it('hfq worker whose HFQ_METRICS_PORT is taken names it, closes its connections and exits 2', async () => {
    const admin = adminRedis();
    const taken = createServer();
    taken.listen(0, '127.0.0.1');
    await once(taken, 'listening');
    const address = taken.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    try {
      const proc = HfqProcess.start(['worker'], { ...env, HFQ_METRICS_PORT: String(port) });
      expect((await proc.exited).code).toBe(2);
      expect(proc.lines.join('\n')).toContain(
        `configuration error: HFQ_METRICS_PORT: cannot listen on port ${port}`,
      );
      await expectNoClientsLeft(admin, env.HFQ_PREFIX as string);
    } finally {
      taken.close();
      await admin.quit();
    }
  });
});
