import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { beforeAll, describe, expect, it } from 'vitest';

/**
 * Each package's public surface, as a user gets it: the built `dist`, imported by package name
 * with plain Node (no `hfq-source` condition). The lists below are the surface; a change to them
 * is a change of the public API, made on purpose. Internals live in each package's `internal`
 * entry, which is free to change and shares no name with the public one.
 */
const EXPECTED: Record<string, { values: string[]; types: string[] }> = {
  '@hfq/shared': {
    values: [
      'ACCOUNTS',
      'ACCOUNT_CONFIG',
      'AccountHeldError',
      'ConfigError',
      'CreditsExhaustedError',
      'DEFAULT_ATTEMPTS',
      'DEFAULT_BACKOFF',
      'DEFAULT_PREFIX',
      'DEFAULT_RETENTION',
      'ENDPOINT_CONFIG',
      'EndpointColdError',
      'EndpointPausedError',
      'EndpointRefusedError',
      'HfqError',
      'JOB',
      'KNOWN_VARIABLES',
      'KeyRefusedError',
      'LIMITS',
      'MalformedOutputError',
      'ModelNotSupportedError',
      'ModelRefusedError',
      'PermanentUpstreamError',
      'ROUTING_POLICIES',
      'RedisTargetError',
      'TASKS',
      'TIERS',
      'ThrottledError',
      'TransientUpstreamError',
      'ValidationError',
      'canonicalJson',
      'contentJobId',
      'createLogger',
      'isSampling',
      'loadConfig',
    ],
    types: [
      'AccountConfig',
      'AccountConfigInput',
      'BatchProgress',
      'BinaryOutput',
      'ClusterConnection',
      'Connection',
      'ConnectionInput',
      'EndpointConfig',
      'Env',
      'HfqConfig',
      'InferenceResult',
      'Job',
      'LimiterOptions',
      'Logger',
      'LoggerOptions',
      'RateWindow',
      'RetryClass',
      'RoutingPolicy',
      'Task',
      'Tier',
      'UpstreamErrorInfo',
      'UpstreamUrls',
    ],
  },
  '@hfq/producer': {
    values: [
      'Batch',
      'BatchAbandonedError',
      'BatchInputError',
      'BatchTimeoutError',
      'COALESCING_TASKS',
      'DEFAULT_BATCH_PRIORITY',
      'EnqueueManyError',
      'JobFailedError',
      'JobHandle',
      'NoHeadroomError',
      'Producer',
      'ResultTimeoutError',
      'createProducer',
    ],
    types: [
      'BatchBase',
      'BatchEnqueued',
      'BatchItemResult',
      'BatchOptions',
      'BatchProgress',
      'BatchReadOptions',
      'BatchSpec',
      'EnqueueOptions',
      'HeadroomOptions',
      'InferenceResult',
      'ProducerOptions',
    ],
  },
  '@hfq/worker': {
    values: [
      'DEFAULT_PRICES',
      'createAdmin',
      'createBoardServer',
      'createHealthServer',
      'createWorker',
      'estimateCost',
      'shutdownGracefully',
    ],
    types: [
      'AccountBatchPlanRow',
      'AccountBatchRow',
      'AccountForecast',
      'AccountRunState',
      'AccountStatus',
      'Admin',
      'AdminOptions',
      'BoardServer',
      'BoardServerOptions',
      'HealthServer',
      'HealthServerOptions',
      'HfqWorker',
      'HistoryPoint',
      'PriceTable',
      'ShutdownOutcome',
      'WorkerEventMap',
      'WorkerEvents',
      'WorkerHeartbeatInfo',
      'WorkerMetrics',
      'WorkerOptions',
    ],
  },
  '@hfq/cli': {
    values: [
      'UsageError',
      'runBoard',
      'runCredits',
      'runDemo',
      'runEnqueue',
      'runLimit',
      'runQueue',
      'runRetry',
      'runSim',
      'runStatus',
      'runWorker',
    ],
    types: [],
  },
};

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PACKAGES = ['shared', 'producer', 'worker', 'cli', 'sim'];
/** Packages with an `internal` entry besides the public one. */
const INTERNAL = ['@hfq/shared', '@hfq/producer', '@hfq/worker'];

interface Manifest {
  name: string;
  exports: Record<string, Record<string, string>>;
  bin?: Record<string, string>;
}
const manifest = (pkg: string): Manifest =>
  JSON.parse(readFileSync(join(ROOT, 'packages', pkg, 'package.json'), 'utf8')) as Manifest;

/** Run a command in the repository; resolves with its output, rejects with it when it fails. */
function run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
    });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`${command} ${args.join(' ')} exited ${code}:\n${out}`)),
    );
  });
}

/** What plain Node resolves each entry to, and the names it exports at run time. */
async function importAsUser(entries: string[]): Promise<Record<string, { url: string; names: string[] }>> {
  const script = `
    const out = {};
    for (const entry of ${JSON.stringify(entries)}) {
      const mod = await import(entry);
      out[entry] = { url: import.meta.resolve(entry), names: Object.keys(mod).sort() };
    }
    process.stdout.write(JSON.stringify(out));
  `;
  // No NODE_OPTIONS: a user's Node knows no `hfq-source` condition.
  const { NODE_OPTIONS: _, ...env } = process.env;
  const stdout = await run(process.execPath, ['--input-type=module', '--eval', script], env);
  return JSON.parse(stdout) as Record<string, { url: string; names: string[] }>;
}

/** Every name each built declaration entry exports, types included, as TypeScript sees it. */
function declaredNames(entries: Record<string, string>): Record<string, string[]> {
  const program = ts.createProgram(Object.values(entries), {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    skipLibCheck: true,
    noEmit: true,
    types: [],
  });
  const checker = program.getTypeChecker();
  const out: Record<string, string[]> = {};
  for (const [entry, file] of Object.entries(entries)) {
    const source = program.getSourceFile(file);
    const symbol = source && checker.getSymbolAtLocation(source);
    if (!symbol) throw new Error(`${file}: not a module`);
    out[entry] = checker
      .getExportsOfModule(symbol)
      .map((s) => s.name)
      .sort();
  }
  return out;
}

const sorted = (names: string[]) => [...names].sort();

describe('public surface of the built packages', () => {
  let runtime: Record<string, { url: string; names: string[] }>;
  let declared: Record<string, string[]>;

  beforeAll(async () => {
    // The real build, as `pnpm build` runs it from a clean clone (about 15 s on two cores).
    await run('pnpm', ['build']);
    const entries = [...Object.keys(EXPECTED), ...INTERNAL.map((name) => `${name}/internal`)];
    runtime = await importAsUser(entries);
    declared = declaredNames(
      Object.fromEntries(
        entries.map((entry) => {
          const [, pkg, sub] = entry.split('/');
          return [entry, join(ROOT, 'packages', pkg as string, 'dist', `${sub ?? 'index'}.d.ts`)];
        }),
      ),
    );
  }, 180_000);

  for (const [name, expected] of Object.entries(EXPECTED)) {
    it(`${name} exports exactly its public values and types`, () => {
      const entry = runtime[name];
      expect(entry?.url).toMatch(/\/dist\/index\.js$/);
      expect(entry?.names).toEqual(sorted(expected.values));
      const names = declared[name] ?? [];
      // Every run-time export is declared; the rest of the declared names are types.
      expect(names).toEqual(expect.arrayContaining(expected.values));
      expect(names.filter((n) => !expected.values.includes(n))).toEqual(sorted(expected.types));
    });
  }

  it('keeps internals in the internal entries, under names the public entries do not use', () => {
    for (const name of INTERNAL) {
      const internal = declared[`${name}/internal`] ?? [];
      expect(runtime[`${name}/internal`]?.url).toMatch(/\/dist\/internal\.js$/);
      expect(internal.length).toBeGreaterThan(0);
      expect(internal.filter((n) => declared[name]?.includes(n))).toEqual([]);
    }
  });

  it('names only files that exist in every package.json exports map and bin', () => {
    const missing: string[] = [];
    for (const pkg of PACKAGES) {
      const { name, exports, bin } = manifest(pkg);
      const targets = Object.values(exports).flatMap((conditions) => Object.values(conditions));
      targets.push(...Object.values(bin ?? {}));
      for (const target of targets) {
        if (!existsSync(join(ROOT, 'packages', pkg, target))) missing.push(`${name}: ${target}`);
      }
    }
    expect(missing).toEqual([]);
  });
});
