import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startSim } from '@hfq/sim';
import { describe, expect, it } from 'vitest';
import { ROOT } from './support/processes.js';
import { adminRedis, redisUrl } from './support/redis.js';

/**
 * The README's "Using it" snippet, extracted from README.md and run as written (a real Node
 * process) against the simulator, on a Redis database of its own (the snippet uses the default
 * prefix).
 */

const DB = 9;

function snippet(): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Using it'));
  const match = /```ts\n([\s\S]*?)```/.exec(section);
  if (!match?.[1]) throw new Error('no ts block in the "Using it" section of README.md');
  return match[1];
}

describe('README "Using it"', () => {
  it('runs as written against the simulator', { timeout: 120_000 }, async () => {
    const sim = await startSim();
    const url = new URL(redisUrl());
    url.pathname = `/${DB}`;
    const admin = adminRedis(url.toString());
    await admin.flushdb();
    // A TypeScript file inside the workspace, so that '@hfq/…' resolve as they do for a user.
    const dir = mkdtempSync(join(ROOT, '.scratch-readme-'));
    const file = join(dir, 'using-it.ts');
    writeFileSync(file, snippet());
    try {
      const child = spawn(process.execPath, ['--conditions=hfq-source', '--import', 'tsx', file], {
        cwd: ROOT,
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          REDIS_URL: url.toString(),
          HF_ROUTER_URL: sim.routerUrl,
          HF_HUB_URL: sim.hubUrl,
          HFQ_PROVIDER_URLS: `together=${sim.providerUrls.together}`,
          HF_TOKEN: 'hf_readme_0123456789abcdef',
          TOGETHER_KEY: 'tg-readme-key',
          HFQ_LOG_FORMAT: 'json',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString();
      });
      child.stderr.on('data', (c: Buffer) => {
        out += c.toString();
      });
      const [code] = await once(child, 'exit');
      expect(code, out).toBe(0);
      expect(out).toMatch(/hf-router/);
      expect(out).toMatch(/3 embeddings/);
      expect(sim.received({ route: 'router' })).toBe(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await admin.flushdb();
      await admin.quit();
      await sim.close();
    }
  });
});
