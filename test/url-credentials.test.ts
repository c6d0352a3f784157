import { Writable } from 'node:stream';
import { type ConfigError, createLogger } from '@hfq/shared';
import { redisOptions, scrubSecrets } from '@hfq/shared/internal';
import { describe, expect, it } from 'vitest';
import { loadConfigError } from './support/config.js';
import { HfqProcess } from './support/processes.js';

const PASSWORD = 'pw-url-secret-7f3a9c';
const BASE = { HFQ_ACCOUNT: 'acme', HF_TOKEN: 'hf_url_secret_0123456789abcdef' };

function configErrorOf(env: Record<string, string>): ConfigError {
  return loadConfigError({ ...BASE, ...env });
}

describe('URL credentials are masked', () => {
  it('configuration errors name the URL without its user-info (REDIS_URL, HF_ROUTER_URL, HFQ_PROVIDER_URLS)', () => {
    const redis = configErrorOf({ REDIS_URL: `http://admin:${PASSWORD}@redis.internal:6379` });
    expect(redis.variable).toBe('REDIS_URL');
    expect(redis.message).toContain('redis.internal:6379');
    expect(redis.message).not.toContain(PASSWORD);
    const router = configErrorOf({ HF_ROUTER_URL: `ftp://u:${PASSWORD}@router.example` });
    expect(router.variable).toBe('HF_ROUTER_URL');
    expect(router.message).not.toContain(PASSWORD);
    const provider = configErrorOf({ HFQ_PROVIDER_URLS: `together=ws://:${PASSWORD}@t.example` });
    expect(provider.message).not.toContain(PASSWORD);
  });

  it('a malformed Redis URL is refused without its password', () => {
    expect(() => redisOptions(`redis://:${PASSWORD}@host:port-not-a-number`)).toThrow(/not a Redis URL/);
    try {
      redisOptions(`redis://:${PASSWORD}@host:port-not-a-number`);
    } catch (err) {
      expect((err as Error).message).not.toContain(PASSWORD);
    }
  });

  it('log lines and scrubbed texts carry no URL password, in the message or a field', async () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString('utf8'));
        done();
      },
    });
    const logger = createLogger({ level: 'info', destination });
    logger.info({ url: `redis://:${PASSWORD}@h:6379/0` }, `connecting to rediss://user:${PASSWORD}@h`);
    logger.warn(`redis error at redis://${PASSWORD}@h`);
    await new Promise((r) => setImmediate(r));
    expect(lines).toHaveLength(2);
    expect(lines.join('\n')).not.toContain(PASSWORD);
    expect(lines.join('\n')).toContain('redis://***@h:6379/0');
    expect(scrubSecrets(`failed: redis://u:${PASSWORD}@x:1`)).toBe('failed: redis://***@x:1');
  });

  it('hfq prints a configuration error for a bad REDIS_URL without the password (exit 2)', async () => {
    const cli = HfqProcess.start(['status'], {
      ...BASE,
      REDIS_URL: `tcp://admin:${PASSWORD}@redis.internal:6379`,
    });
    const { code } = await cli.exited;
    expect(code).toBe(2);
    const output = cli.lines.join('\n');
    expect(output).toContain('REDIS_URL');
    expect(output).not.toContain(PASSWORD);
  });
});
