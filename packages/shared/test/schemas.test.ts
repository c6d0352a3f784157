import { ACCOUNTS, ConfigError, JOB, loadConfig, ValidationError } from '@hfq/shared';
import { parseLimits, parseOrThrow } from '@hfq/shared/internal';
import { describe, expect, it } from 'vitest';

const chat = {
  account: 'acme',
  task: 'chat-completion',
  model: 'meta-llama/Llama-3.1-8B-Instruct',
  messages: [{ role: 'user', content: 'hi' }],
};

function issuePaths(value: unknown): string[] {
  try {
    parseOrThrow(JOB, value, 'job');
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return (err as ValidationError).issues.map((i) => i.path);
  }
  throw new Error('expected a validation error');
}

describe('job schema', () => {
  it('accepts each task shape', () => {
    expect(parseOrThrow(JOB, chat, 'job').task).toBe('chat-completion');
    expect(
      parseOrThrow(JOB, { account: 'a', task: 'feature-extraction', model: 'm/x', inputs: ['a', 'b'] }, 'job')
        .task,
    ).toBe('feature-extraction');
    expect(
      parseOrThrow(JOB, { account: 'a', task: 'text-to-image', model: 'm/x', inputs: 'a cat' }, 'job').task,
    ).toBe('text-to-image');
  });

  it('names the bad field', () => {
    expect(issuePaths({ ...chat, messages: [{ role: 'robot', content: 'x' }] })).toEqual(['messages.0.role']);
    expect(issuePaths({ ...chat, account: 'has space' })).toEqual(['account']);
    expect(issuePaths({ ...chat, task: 'mind-reading' })).toEqual(['task']);
  });

  it('rejects unknown keys, such as a token smuggled into a job', () => {
    expect(issuePaths({ ...chat, token: 'hf_abc' })).toEqual(['']);
  });

  it('rejects oversize strings and __proto__ keys without touching Object.prototype', () => {
    expect(
      issuePaths({ ...chat, messages: [{ role: 'user', content: 'x'.repeat(10 * 1024 * 1024) }] }),
    ).toContain('messages.0.content');
    const hostile = JSON.parse(
      `{"account":"a","task":"text-classification","model":"m/x","inputs":"x","__proto__":{"polluted":1}}`,
    );
    expect(() => parseOrThrow(JOB, hostile, 'job')).toThrow(ValidationError);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('configuration from the environment', () => {
  const readFile = () => {
    throw new Error('no file');
  };
  it('builds one account from HFQ_ACCOUNT and friends', () => {
    const config = loadConfig(
      {
        HFQ_ACCOUNT: 'acme',
        HF_TOKEN: 'hf_test_token',
        HFQ_TIER: 'pro',
        HFQ_PROVIDER_KEYS: 'together=tg-key,cerebras=cb-key',
        HFQ_FALLBACK_PROVIDERS: 'together,cerebras',
        HFQ_LIMITS: '10/1s,500/1m',
      },
      readFile,
    );
    expect(config.accounts[0]).toMatchObject({
      id: 'acme',
      tier: 'pro',
      providerKeys: { together: 'tg-key', cerebras: 'cb-key' },
      fallbackProviders: ['together', 'cerebras'],
      limits: [
        { max: 10, durationMs: 1000 },
        { max: 500, durationMs: 60000 },
      ],
    });
  });

  it('normalises provider URLs like the router URL, and reads the worker-only settings', () => {
    const config = loadConfig(
      {
        HFQ_ACCOUNT: 'a',
        HF_TOKEN: 'hf_x',
        HF_ROUTER_URL: 'http://sim:1/',
        HFQ_PROVIDER_URLS: 'together=http://sim:2/,cerebras=http://sim:3',
        HFQ_MAX_STALLED_COUNT: '0',
        HFQ_LIMITER_AUDIT: 'true',
      },
      readFile,
    );
    expect(config.upstream).toMatchObject({
      routerUrl: 'http://sim:1',
      providerUrls: { together: 'http://sim:2', cerebras: 'http://sim:3' },
    });
    expect(config).toMatchObject({ maxStalledCount: 0, limiterAudit: true, lockDurationMs: 30_000 });
  });

  it.each([
    [{ HFQ_ACCOUNT: 'a', HF_TOKEN: 'hf_x', HFQ_LIMITER_AUDIT: 'maybe' }, 'HFQ_LIMITER_AUDIT'],
    [{ HFQ_ACCOUNT: 'a', HF_TOKEN: 'hf_x', HFQ_PROVIDER_URLS: 'together=ftp://x' }, 'HFQ_PROVIDER_URLS'],
    [{ HFQ_ACCOUNT: 'a' }, 'HF_TOKEN'],
    [{ HF_TOKEN: 'hf_x' }, 'HFQ_ACCOUNT'],
    [{ HFQ_ACCOUNT: 'a', HF_TOKEN: 'hf_x', HFQ_TIER: 'gold' }, 'HFQ_TIER'],
    [{ HFQ_ACCOUNT: 'a', HF_TOKEN: 'hf_x', HFQ_CONCURRENCY: 'lots' }, 'HFQ_CONCURRENCY'],
    [{ HFQ_ACCOUNT: 'a', HF_TOKEN: 'hf_x', REDIS_URL: 'localhost' }, 'REDIS_URL'],
    [{ HFQ_ACCOUNT: 'a', HF_TOKEN: 'hf_x', HF_ROUTER_URL: 'ftp://x' }, 'HF_ROUTER_URL'],
    [{ HFQ_ACCOUNT: 'a', HF_TOKEN: 'hf_x', HFQ_LIMITS: 'fast' }, 'HFQ_LIMITS'],
    [{ HFQ_ACCOUNT: 'a', HF_TOKEN: 'hf_x', HFQ_BOARD_USER: 'ops' }, 'HFQ_BOARD_PASSWORD'],
    [{ HFQ_ACCOUNTS_FILE: '/nope.json' }, 'HFQ_ACCOUNTS_FILE'],
  ])('stops on %j naming %s', (env, variable) => {
    try {
      loadConfig(env, readFile);
      throw new Error('expected a ConfigError');
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).variable).toBe(variable);
      expect((err as Error).message.startsWith(`${variable}:`)).toBe(true);
    }
  });

  it('never shows a secret value in a config error', () => {
    try {
      loadConfig({ HFQ_ACCOUNT: 'a', HF_TOKEN: 'not-an-hf-token-secret' }, readFile);
    } catch (err) {
      expect((err as Error).message).not.toContain('not-an-hf-token-secret');
      return;
    }
    throw new Error('expected a ConfigError');
  });

  it('parses limit strings', () => {
    expect(parseLimits('X', '20/1s,200000tok/1m')).toEqual([
      { max: 20, durationMs: 1000 },
      { tokens: 200000, durationMs: 60000 },
    ]);
  });

  it('rejects duplicate account ids in a file', () => {
    const account = { id: 'a', tier: 'free', hfToken: 'hf_x' };
    expect(ACCOUNTS.safeParse([account, account]).success).toBe(false);
  });
});
