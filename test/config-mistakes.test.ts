import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type ConfigError, type Env, KNOWN_VARIABLES, loadConfig } from '@hfq/shared';
import { describe, expect, it } from 'vitest';
import { KNOWN_PROVIDERS } from '../packages/shared/src/provider-names.js';
import { loadConfigError } from './support/config.js';
import { HfqProcess, ROOT } from './support/processes.js';
import { redisUrl } from './support/redis.js';

/**
 * Configuration that catches mistakes (README, "Configuration"): a misspelt variable, key or
 * provider stops start-up naming what it most likely means; an accounts file's errors say where;
 * a REDIS_URL's errors name the host and the cause, never the password.
 */

const BASE: Env = { HFQ_ACCOUNT: 'acme', HF_TOKEN: 'hf_config_secret_0123456789abcdef' };

function configError(env: Env, files: Record<string, string> = {}): ConfigError {
  return loadConfigError({ ...BASE, ...env }, (path) => {
    const text = files[path];
    if (text === undefined) throw new Error(`ENOENT: no such file, open '${path}'`);
    return text;
  });
}

describe('unknown HFQ_* variables', () => {
  it('stop start-up with "did you mean", every one of them named', () => {
    const err = configError({ HFQ_TEIR: 'pro', HFQ_CONCURENCY: '2' });
    expect(err.variable).toBe('HFQ_CONCURENCY');
    expect(err.message).toContain('HFQ_CONCURENCY: unknown variable, did you mean HFQ_CONCURRENCY?');
    expect(err.message).toContain('HFQ_TEIR: unknown variable, did you mean HFQ_TIER?');
    expect(configError({ HFQ_WHATEVER_ELSE: '1' }).message).toMatch(
      /HFQ_WHATEVER_ELSE: unknown variable, hfq reads no such variable/,
    );
    // Variables hfq reads outside the config, and other tools' HF_* variables, are not mistakes.
    expect(() =>
      loadConfig({ ...BASE, HFQ_LOG_FORMAT: 'json', HFQ_DEBUG: '1', HF_HOME: '/tmp/hf' }, () => ''),
    ).not.toThrow();
  });

  it('`hfq worker` with HFQ_TEIR exits 2 with one line, before touching Redis', async () => {
    const proc = HfqProcess.start(['worker'], {
      ...BASE,
      REDIS_URL: 'redis://127.0.0.1:1',
      HFQ_TEIR: 'pro',
    });
    const exit = await proc.exited;
    expect(exit.code).toBe(2);
    expect(proc.lines).toEqual([
      'hfq worker: configuration error: HFQ_TEIR: unknown variable, did you mean HFQ_TIER?',
    ]);
  });

  it('every HFQ_* variable the sources read is known (so the check never refuses hfq itself)', () => {
    const read = new Set<string>();
    const walk = (dir: string): void => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        if (entry.name === 'node_modules' || entry.name === 'dist') continue;
        const path = join(dir, entry.name);
        if (entry.isDirectory()) walk(path);
        else if (entry.name.endsWith('.ts')) {
          const text = readFileSync(path, 'utf8');
          for (const m of text.matchAll(/env(?:\.|\[['"])(HFQ_[A-Z0-9_]+)/g)) read.add(m[1] as string);
        }
      }
    };
    for (const dir of ['packages', 'test', 'bench']) walk(join(ROOT, dir));
    expect(read.size).toBeGreaterThan(10);
    for (const variable of read) {
      expect(
        () =>
          loadConfig(
            {
              ...BASE,
              [variable]: (KNOWN_VARIABLES as readonly string[]).includes(variable) ? undefined : '1',
            },
            () => '',
          ),
        `${variable} is read by hfq but refused as unknown`,
      ).not.toThrow(/unknown variable/);
    }
  });
});

describe('the accounts file', () => {
  const FILE = '/etc/hfq/accounts.json';

  it('a misspelt key: line, column and the key it stands for', () => {
    const text = [
      '[',
      '  {',
      '    "id": "acme",',
      '    "tier": "pro",',
      '    "hfTokn": "hf_abcdefghijklmnop"',
      '  }',
      ']',
    ].join('\n');
    const err = configError({ HFQ_ACCOUNT: undefined, HFQ_ACCOUNTS_FILE: FILE }, { [FILE]: text });
    expect(err.variable).toBe('HFQ_ACCOUNTS_FILE');
    expect(err.message).toContain(
      `${FILE} line 5, column 5: [0].hfTokn: unknown key (did you mean "hfToken"?)`,
    );
    // The token the schema then misses is named too, at the account.
    expect(err.message).toContain(`${FILE} line 2, column 3: [0].hfToken:`);
    expect(err.message).not.toContain('hf_abcdefghijklmnop');
  });

  it('a bad value and a nested misspelt key, each at its place', () => {
    const text = `[{"id": "acme", "tier": "gold", "hfToken": "hf_abcdefghij",
  "limits": [{"max": 5, "durationMS": 1000}]}]`;
    const err = configError({ HFQ_ACCOUNT: undefined, HFQ_ACCOUNTS_FILE: FILE }, { [FILE]: text });
    expect(err.message).toMatch(new RegExp(`${FILE} line 1, column 25: \\[0\\]\\.tier: `));
    expect(err.message).toContain('did you mean "durationMs"?');
    expect(err.message).toMatch(/line 2, column 25: \[0\]\.limits\[0\]\.durationMS: unknown key/);
  });

  it('a misspelt provider, in providerKeys and in fallbackProviders', () => {
    const text = JSON.stringify(
      [
        {
          id: 'acme',
          tier: 'pro',
          hfToken: 'hf_abcdefghij',
          providerKeys: { togther: 'tg-secret-key' },
          fallbackProviders: ['togther'],
        },
      ],
      null,
      2,
    );
    const err = configError({ HFQ_ACCOUNT: undefined, HFQ_ACCOUNTS_FILE: FILE }, { [FILE]: text });
    expect(err.message).toContain(
      `${FILE} line 7, column 7: [0].providerKeys: unknown provider "togther" (did you mean "together"?)`,
    );
    expect(err.message).toContain(
      `line 10, column 7: [0].fallbackProviders[0]: unknown provider "togther" (did you mean "together"?)`,
    );
    expect(err.message).not.toContain('tg-secret-key');
    // A provider far from every known one is taken as a newer provider, not a typo.
    const newer = text.replaceAll('togther', 'brand-new-provider');
    expect(() => loadConfig({ HFQ_ACCOUNTS_FILE: FILE }, () => newer)).not.toThrow();
  });

  it("knows the official client's providers, no more and no fewer", async () => {
    // Resolved as the worker resolves it: the client is the worker's dependency.
    const entry = createRequire(join(ROOT, 'packages/worker/package.json')).resolve('@huggingface/inference');
    const client = (await import(pathToFileURL(entry).href)) as { INFERENCE_PROVIDERS: string[] };
    expect([...KNOWN_PROVIDERS].sort()).toEqual([...client.INFERENCE_PROVIDERS].sort());
  });

  it('the same for the one-account variables', () => {
    const err = configError({ HFQ_PROVIDER_KEYS: 'cerebars=csk-secret', HFQ_FALLBACK_PROVIDERS: 'cerebars' });
    expect(err.variable).toBe('HFQ_PROVIDER_KEYS');
    expect(err.message).toBe('HFQ_PROVIDER_KEYS: unknown provider "cerebars" (did you mean "cerebras"?)');
  });

  it('invalid JSON: line and column', () => {
    const text = '[\n  {"id": "acme",\n   "tier": "pro",}\n]';
    const err = configError({ HFQ_ACCOUNT: undefined, HFQ_ACCOUNTS_FILE: FILE }, { [FILE]: text });
    expect(err.message).toMatch(new RegExp(`^HFQ_ACCOUNTS_FILE: ${FILE} line 3, column 18: not valid JSON`));
  });
});

describe('REDIS_URL', () => {
  it('a malformed URL: the expected form is shown as written, the value never', () => {
    const err = configError({ REDIS_URL: 'redis:///0' });
    expect(err.message).toBe(
      'REDIS_URL: names no host; expected redis://[user:password@]host[:port][/db] (rediss:// for TLS; percent-encode special characters in the password)',
    );
    expect(configError({ REDIS_URL: 'redis://:secret@host/abc' }).message).toMatch(
      /^REDIS_URL: the database "abc" is not a number; expected redis:\/\/\[user:password@\]host/,
    );
  });

  it('a database the server does not have is refused, naming the host and the count', async () => {
    const url = new URL(redisUrl());
    url.pathname = '/99';
    const proc = HfqProcess.start(['status'], { REDIS_URL: url.toString() });
    const exit = await proc.exited;
    expect(exit.code).toBe(1);
    const text = proc.lines.join('\n');
    expect(text).toContain(`Redis at ${url.hostname}:${url.port || 6379} has no database 99 (it has `);
    expect(proc.lines.length, text).toBe(1);
  });

  it('an unreachable host: the error names the host and the cause, never the password', async () => {
    const proc = HfqProcess.start(['status'], { REDIS_URL: 'redis://:hunter2secret@127.0.0.1:1/0' });
    const exit = await proc.exited;
    expect(exit.code).toBe(1);
    const text = proc.lines.join('\n');
    expect(text).toMatch(
      /Redis at 127\.0\.0\.1:1 not reachable within \d+ ms: connect ECONNREFUSED 127\.0\.0\.1:1/,
    );
    expect(text).not.toContain('hunter2secret');
  });
});
