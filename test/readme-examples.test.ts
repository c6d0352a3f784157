import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HfqProcess, ROOT, startWorkerProcess } from './support/processes.js';
import { adminRedis, expectNoClientsLeft, redisUrl, testPrefix } from './support/redis.js';

/**
 * README's examples, extracted from README.md and run against `hfq sim` started with README's
 * `SIM_CONFIG` example, configured by the `export` lines the simulator prints: one JSONL line of
 * each task through a real worker process and `hfq enqueue --wait`.
 */

const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

function block(language: string, after: string): string {
  const section = README.slice(README.indexOf(after));
  const match = new RegExp(`\`\`\`${language}\\n([\\s\\S]*?)\`\`\``).exec(section);
  if (!match?.[1]) throw new Error(`no ${language} block after "${after}" in README.md`);
  return match[1];
}

/** `export A=1 B=2` lines → { A: '1', B: '2' }. */
function exportsOf(lines: readonly string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of lines.filter((l) => l.startsWith('export '))) {
    for (const pair of line.slice('export '.length).split(' ')) {
      const eq = pair.indexOf('=');
      env[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
  }
  return env;
}

describe("README's examples against hfq sim", () => {
  it('every JSONL line runs to a result, with SIM_CONFIG as README shows it', {
    timeout: 180_000,
  }, async () => {
    const jsonl = block('jsonl', 'One JSONL line of each task');
    const lines = jsonl.split('\n').filter((l) => l.trim() !== '');
    expect(lines.length).toBeGreaterThanOrEqual(8);
    const dir = mkdtempSync(join(tmpdir(), 'hfq-readme-examples-'));
    const simConfig = join(dir, 'sim.json');
    writeFileSync(simConfig, block('json', '`hfq sim` reads an optional `SIM_CONFIG`'));
    const input = join(dir, 'examples.jsonl');
    // One more line, for a model that does not exist: its error names the Hub's lookup.
    writeFileSync(
      input,
      `${jsonl.trimEnd()}\n{"account":"acme","task":"text-classification","model":"acme/no-such-model","inputs":"x"}\n`,
    );
    const out = join(dir, 'results.jsonl');
    const prefix = testPrefix('rex');
    const admin = adminRedis();
    const sim = HfqProcess.start(['sim'], { SIM_PORT: '0', SIM_CONFIG: simConfig });
    let worker: HfqProcess | undefined;
    try {
      await sim.waitForLine((l) => l.startsWith('export HF_TOKEN='));
      const upstream = exportsOf(sim.lines);
      expect(Object.keys(upstream).sort()).toEqual([
        'HFQ_PROVIDER_URLS',
        'HF_ENDPOINTS_API_URL',
        'HF_HUB_URL',
        'HF_ROUTER_URL',
        'HF_TOKEN',
        'TOGETHER_KEY',
      ]);
      const { TOGETHER_KEY: together, ...env } = upstream;
      const common = { ...env, REDIS_URL: redisUrl(), HFQ_PREFIX: prefix, HFQ_LOG_FORMAT: 'json' };
      worker = await startWorkerProcess({
        ...common,
        HFQ_ACCOUNT: 'acme',
        HFQ_TIER: 'pro',
        HFQ_PROVIDER_KEYS: `together=${together}`,
        HFQ_METRICS_PORT: '0',
      });
      const enqueue = HfqProcess.start(['enqueue', input, '--wait', '--out', out], common);
      const exit = await enqueue.exited;
      const log = enqueue.lines.join('\n');
      // The made-up model fails, so the run exits 1; every README line succeeds.
      expect(exit.code, log).toBe(1);
      const rows = readFileSync(out, 'utf8')
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(rows).toHaveLength(lines.length + 1);
      const text = JSON.stringify(rows);
      for (const [i, row] of rows.slice(0, lines.length).entries()) {
        expect(row.ok, `README line ${i + 1}: ${lines[i]}\n${JSON.stringify(row)}`).toBe(true);
      }
      const missing = rows[lines.length] as Record<string, unknown>;
      expect(missing.ok).toBe(false);
      expect(JSON.stringify(missing)).toMatch(
        /the Hugging Face Hub \(model lookup\) answered 404: Repository not found.*: the model does not exist on the Hub/,
      );
      expect(text).not.toContain('router answered 404');
    } finally {
      await worker?.stop();
      await sim.stop();
      await expectNoClientsLeft(admin, prefix);
      await admin.quit();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
