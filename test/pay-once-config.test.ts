import { type ConfigError, type Env, loadConfig } from '@hfq/shared';
import { describe, expect, it } from 'vitest';
import { loadConfigError, noFile } from './support/config.js';

const BASE: Env = { HFQ_ACCOUNT: 'acme', HF_TOKEN: 'hf_config_secret_0123456789abcdef' };

function configError(env: Env): ConfigError {
  return loadConfigError({ ...BASE, ...env });
}

describe('pay-once configuration: errors name the variable', () => {
  it('defaults: no budget, pay-as-you-go past the included credits, no result reuse', () => {
    const [account] = loadConfig(BASE, noFile).accounts;
    expect(account?.monthlyBudgetUsd).toBeUndefined();
    expect(account?.afterIncludedCredits).toBeUndefined();
    expect(account?.resultReuse).toBeUndefined();
  });

  it('HFQ_AFTER_INCLUDED_CREDITS: pay-as-you-go or provider-keys', () => {
    expect(
      loadConfig({ ...BASE, HFQ_AFTER_INCLUDED_CREDITS: 'provider-keys' }, noFile).accounts[0],
    ).toMatchObject({
      afterIncludedCredits: 'provider-keys',
    });
    expect(configError({ HFQ_AFTER_INCLUDED_CREDITS: 'stop' }).variable).toBe('HFQ_AFTER_INCLUDED_CREDITS');
  });

  it('HFQ_RESULT_REUSE_TTL_MS and HFQ_RESULT_REUSE_MAX_BYTES: both or neither, in range', () => {
    expect(
      loadConfig(
        { ...BASE, HFQ_RESULT_REUSE_TTL_MS: '3600000', HFQ_RESULT_REUSE_MAX_BYTES: '1048576' },
        noFile,
      ).accounts[0]?.resultReuse,
    ).toEqual({ ttlMs: 3_600_000, maxBytes: 1_048_576 });
    expect(configError({ HFQ_RESULT_REUSE_TTL_MS: '3600000' }).variable).toBe('HFQ_RESULT_REUSE_MAX_BYTES');
    expect(configError({ HFQ_RESULT_REUSE_MAX_BYTES: '1048576' }).variable).toBe('HFQ_RESULT_REUSE_TTL_MS');
    const tooShort = configError({ HFQ_RESULT_REUSE_TTL_MS: '10', HFQ_RESULT_REUSE_MAX_BYTES: '1048576' });
    expect(tooShort.variable).toBe('HFQ_RESULT_REUSE_TTL_MS');
    expect(tooShort.message).toMatch(/1000/);
  });
});
