/** Inference Endpoint configuration: the account schema and its environment form. */
import { ACCOUNTS, ConfigError, loadConfig, ValidationError } from '@hfq/shared';
import { parseOrThrow } from '@hfq/shared/internal';
import { describe, expect, it } from 'vitest';

const readFile = (): string => {
  throw new Error('no file in this test');
};

const endpoint = {
  name: 'emb',
  url: 'https://emb.example.endpoints.huggingface.cloud/',
  models: ['m/x'],
  concurrency: 8,
};
const base = { HFQ_ACCOUNT: 'acme', HF_TOKEN: 'hf_endpointconfig' };

describe('endpoint configuration', () => {
  it('reads HFQ_ENDPOINTS and HFQ_ROUTING into the account, URL normalised', () => {
    const config = loadConfig(
      {
        ...base,
        HFQ_ENDPOINTS: JSON.stringify([endpoint]),
        HFQ_ROUTING: 'endpoint-only',
        HFQ_ENDPOINT_LEASE_MS: '2000',
      },
      readFile,
    );
    expect(config.accounts[0]?.routing).toBe('endpoint-only');
    expect(config.accounts[0]?.endpoints?.[0]).toMatchObject({
      name: 'emb',
      url: 'https://emb.example.endpoints.huggingface.cloud',
      concurrency: 8,
    });
    expect(config.endpointLeaseMs).toBe(2000);
  });

  it.each([
    [{ HFQ_ENDPOINTS: 'not json' }, 'HFQ_ENDPOINTS', /JSON/],
    [
      { HFQ_ENDPOINTS: JSON.stringify([{ ...endpoint, concurrency: 0 }]) },
      'HFQ_ENDPOINTS',
      /\[0\]\.concurrency/,
    ],
    [{ HFQ_ENDPOINTS: JSON.stringify([endpoint, endpoint]) }, 'HFQ_ENDPOINTS', /unique/],
    [{ HFQ_ROUTING: 'cheapest' }, 'HFQ_ROUTING', /endpoint-first/],
    [{ HF_ENDPOINTS_API_URL: 'ftp://x' }, 'HF_ENDPOINTS_API_URL', /http/],
  ])('stops on %j naming %s and the field', (env, variable, message) => {
    try {
      loadConfig({ ...base, ...env }, readFile);
      throw new Error('expected a ConfigError');
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).variable).toBe(variable);
      expect((err as Error).message).toMatch(message);
    }
  });

  it('refuses a URL with credentials, and lifecycle options without management access', () => {
    const account = { id: 'acme', tier: 'pro', hfToken: 'hf_x' };
    const parse = (e: object) =>
      parseOrThrow(ACCOUNTS, [{ ...account, endpoints: [{ ...endpoint, ...e }] }], 'accounts');
    expect(() => parse({ url: 'https://user:secret@emb.example' })).toThrow(ValidationError);
    expect(() => parse({ url: 'https://user:secret@emb.example' })).not.toThrow(/secret/);
    expect(() => parse({ autoResume: true })).toThrow(/management/);
    expect(() =>
      parse({ idleScaleToZeroMs: 1000, management: { namespace: 'acme', name: 'emb' } }),
    ).not.toThrow();
  });
});
