import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { HfqProcess, ROOT } from './support/processes.js';
import { adminRedis, redisUrl } from './support/redis.js';

/**
 * README "Install", as a user does it today: every package a user installs is built, packed into
 * a tarball, and installed with npm into an empty folder outside the workspace (their other
 * dependencies come from the npm registry). From there, `hfq --help` runs from the installed bin,
 * the installed `hfq sim` serves, and README's "Using it" snippet runs against it.
 */

const run = promisify(execFile);
const PACKAGES = ['shared', 'producer', 'worker', 'sim', 'cli'];
/** The snippet uses the default prefix: a database of its own. */
const DB = 11;

function snippet(): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Using it'));
  const match = /```ts\n([\s\S]*?)```/.exec(section);
  if (!match?.[1]) throw new Error('no ts block in the "Using it" section of README.md');
  // A user's TypeScript, compiled as their build would (ES modules, top-level await).
  return ts.transpileModule(match[1], {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
  }).outputText;
}

describe('install from packed tarballs', () => {
  it('packs, installs outside the workspace, and runs the CLI and the snippet', {
    timeout: 300_000,
  }, async () => {
    const packs = mkdtempSync(join(tmpdir(), 'hfq-packs-'));
    const app = mkdtempSync(join(tmpdir(), 'hfq-user-app-'));
    const url = new URL(redisUrl());
    url.pathname = `/${DB}`;
    const admin = adminRedis(url.toString());
    let sim: HfqProcess | undefined;
    try {
      await run('pnpm', ['build'], { cwd: ROOT, maxBuffer: 16 << 20 });
      for (const name of PACKAGES) {
        await run('pnpm', ['pack', '--pack-destination', packs], { cwd: join(ROOT, 'packages', name) });
      }
      const tarballs = readdirSync(packs).filter((f) => f.endsWith('.tgz'));
      expect(tarballs.sort()).toEqual(PACKAGES.map((p) => `hfq-${p}-0.1.0.tgz`).sort());
      // No workspace protocol left in what npm reads.
      for (const tarball of tarballs) {
        const { stdout } = await run('tar', ['-xOzf', join(packs, tarball), 'package/package.json']);
        expect(stdout, tarball).not.toContain('workspace:');
        expect(JSON.parse(stdout).private, tarball).toBeUndefined();
      }
      writeFileSync(
        join(app, 'package.json'),
        JSON.stringify({ name: 'my-app', private: true, type: 'module' }),
      );
      // Optional dependencies (testcontainers, for the demo's Redis) are left out to keep it quick.
      await run(
        'npm',
        ['install', '--no-audit', '--no-fund', '--omit=optional', ...tarballs.map((t) => join(packs, t))],
        { cwd: app, maxBuffer: 16 << 20 },
      );
      const hfq = join(app, 'node_modules', '.bin', 'hfq');
      const help = await run(hfq, ['--help'], { cwd: app });
      expect(help.stdout).toMatch(/^hfq — a distributed job queue/);
      expect(help.stdout).toContain('Usage: hfq <command>');

      // The installed simulator, and its export lines as the configuration.
      sim = new HfqProcess(
        spawn(hfq, ['sim'], {
          cwd: app,
          env: { PATH: process.env.PATH, HOME: process.env.HOME, SIM_PORT: '0' },
          stdio: ['ignore', 'pipe', 'pipe'],
        }),
      );
      await sim.waitForLine((l) => l.startsWith('export HF_TOKEN='));
      const env: Record<string, string> = {};
      for (const line of sim.lines.filter((l) => l.startsWith('export '))) {
        for (const pair of line.slice(7).split(' '))
          env[pair.slice(0, pair.indexOf('='))] = pair.slice(pair.indexOf('=') + 1);
      }
      await admin.flushdb();
      writeFileSync(join(app, 'using-it.mjs'), snippet());
      const result = await run(process.execPath, ['using-it.mjs'], {
        cwd: app,
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          ...env,
          REDIS_URL: url.toString(),
          HFQ_LOG_FORMAT: 'json',
        },
        maxBuffer: 16 << 20,
      });
      expect(result.stdout).toMatch(/^hf-router /m);
      expect(result.stdout).toMatch(/^3 embeddings$/m);
      // What ran is the installed copy, not the workspace's sources.
      const resolved = await run(
        process.execPath,
        ['--input-type=module', '--eval', "console.log(import.meta.resolve('@hfq/worker'))"],
        { cwd: app },
      );
      expect(resolved.stdout.trim()).toBe(`file://${join(app, 'node_modules/@hfq/worker/dist/index.js')}`);
    } finally {
      await sim?.stop();
      await admin.flushdb();
      await admin.quit();
      rmSync(packs, { recursive: true, force: true });
      rmSync(app, { recursive: true, force: true });
    }
  });
});
