import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createProducer, type Producer, type ProducerOptions } from '@hfq/producer';
import { type AccountConfigInput, createLogger } from '@hfq/shared';
import { type Sim, type SimOptions, startSim, type TokenConfig } from '@hfq/sim';
import { type Admin, createAdmin, createWorker, type HfqWorker, type WorkerOptions } from '@hfq/worker';
import type { Redis } from 'ioredis';
import { expect, onTestFinished } from 'vitest';
import { type HfqProcess, startWorkerProcess } from './processes.js';
import { adminRedis, expectNoClientsLeft, redisUrl, testPrefix } from './redis.js';

/** Environment for an `hfq worker` process pointed at the simulator and the test's Redis and prefix. */
export function workerEnv(
  sim: Sim,
  options: {
    redisUrl: string;
    prefix: string;
    accounts: AccountConfigInput[];
    concurrency?: number;
    extra?: Record<string, string>;
  },
): { env: Record<string, string>; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'hfq-accounts-'));
  const file = join(dir, 'accounts.json');
  writeFileSync(file, JSON.stringify(options.accounts));
  return {
    env: {
      REDIS_URL: options.redisUrl,
      HFQ_PREFIX: options.prefix,
      HFQ_ACCOUNTS_FILE: file,
      HFQ_CONCURRENCY: String(options.concurrency ?? 8),
      HF_ROUTER_URL: sim.routerUrl,
      HF_HUB_URL: sim.hubUrl,
      HFQ_PROVIDER_URLS: `together=${sim.providerUrls.together},cerebras=${sim.providerUrls.cerebras}`,
      // Each worker process serves /metrics: any free port, so several can run on one machine.
      HFQ_METRICS_PORT: '0',
      ...options.extra,
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Upstream URLs for an in-process worker. */
export function upstreamOf(sim: Sim) {
  return { routerUrl: sim.routerUrl, hubUrl: sim.hubUrl, providerUrls: { ...sim.providerUrls } };
}

/** Asserts that none of `secrets` occurs in `text` (logs, Redis dumps, results). */
export function expectNoSecrets(text: string, secrets: string[], where: string): void {
  for (const secret of secrets) {
    expect(text.includes(secret), `${where} contains a secret`).toBe(false);
  }
}

/** Options of an in-process worker started by a stack; the stack fills in what is left out. */
export type StackWorkerOptions = Partial<WorkerOptions>;

export interface StackOptions {
  /** Label the test's own prefix starts with. @defaultValue `'t'` */
  label?: string;
  /** The simulator's configuration, or `false` for a stack without one (producer-only tests). @defaultValue the simulator's defaults */
  sim?: SimOptions | false;
  /** Tokens set on the simulator before any worker starts. */
  tokens?: Record<string, TokenConfig>;
  /** Accounts of the stack's workers and admin, unless a call names others. @defaultValue [] */
  accounts?: AccountConfigInput[];
  /** In-process workers started at once, each with `worker`. @defaultValue 0 */
  workers?: number;
  /** Options of the workers the stack starts (`workers`, and `startWorker()` under its own). */
  worker?: StackWorkerOptions;
  /** The Redis the stack's clients use. @defaultValue the run's Redis */
  redisUrl?: string;
  /**
   * `'test'`: stopped when the current test finishes (call from a test or a `beforeEach`).
   * `'caller'`: the caller calls `stop()`, e.g. in `afterAll` for a stack shared by a suite.
   * @defaultValue `'test'`
   */
  teardown?: 'test' | 'caller';
}

/**
 * A simulator over HTTP, a prefix of the test's own on Redis, and the in-process workers,
 * producers and admins the test asks for. Everything it starts is closed by `stop()`, newest
 * first, then the simulator; last, `stop()` fails if any connection under the prefix is left open.
 */
export interface Stack {
  readonly sim: Sim;
  readonly prefix: string;
  readonly redisUrl: string;
  readonly accounts: AccountConfigInput[];
  /** The in-process workers started so far, in order. */
  readonly workers: HfqWorker[];
  /** The stack's producer, created on first use. */
  readonly producer: Producer;
  /** An admin over the stack's accounts, created on first use. */
  readonly admin: Admin;
  /** Starts one more in-process worker: the stack's worker options, then `options` over them. */
  startWorker(options?: StackWorkerOptions): Promise<HfqWorker>;
  /**
   * Starts `count` `hfq worker` processes side by side, on the stack's simulator, Redis and prefix
   * (the stack's accounts unless `options` names others); stopped with the stack.
   */
  startWorkerProcesses(
    count: number,
    options?: {
      accounts?: AccountConfigInput[];
      concurrency?: number;
      extra?: Record<string, string>;
      /** How the stack stops them. @defaultValue `'SIGTERM'` (a graceful shutdown) */
      stopSignal?: NodeJS.Signals;
    },
  ): Promise<HfqProcess[]>;
  /** A plain Redis connection for assertions (closed with the stack). */
  redis(): Redis;
  /** A producer of its own (closed with the stack). */
  newProducer(options?: Partial<ProducerOptions>): Producer;
  /** An admin of its own over `accounts` (closed with the stack). */
  newAdmin(accounts?: AccountConfigInput[]): Admin;
  /** Runs `cleanup` when the stack stops, before what was registered earlier. */
  defer(cleanup: () => unknown): void;
  /** Closes everything, then checks that no connection under the prefix is left; idempotent. */
  stop(): Promise<void>;
}

/** Starts a stack; see `Stack`. With `teardown: 'test'` (the default) the current test stops it. */
export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const url = options.redisUrl ?? redisUrl();
  const prefix = testPrefix(options.label);
  const accounts = options.accounts ?? [];
  const cleanups: (() => unknown)[] = [];
  const workers: HfqWorker[] = [];
  let sim: Sim | undefined;
  let producer: Producer | undefined;
  let admin: Admin | undefined;
  let stopped: Promise<void> | undefined;

  async function stopAll(): Promise<void> {
    const errors: unknown[] = [];
    for (const cleanup of cleanups.splice(0).reverse()) {
      try {
        await cleanup();
      } catch (error) {
        errors.push(error);
      }
    }
    await sim?.close();
    const check = adminRedis(url);
    try {
      await expectNoClientsLeft(check, prefix);
    } finally {
      await check.quit();
    }
    if (errors.length > 0) throw errors[0];
  }

  const stack: Stack = {
    get sim() {
      if (!sim) throw new Error('the simulator of this stack has not started');
      return sim;
    },
    prefix,
    redisUrl: url,
    accounts,
    workers,
    get producer() {
      producer ??= stack.newProducer();
      return producer;
    },
    get admin() {
      admin ??= stack.newAdmin();
      return admin;
    },
    async startWorker(extra = {}) {
      const worker = await createWorker({
        connection: url,
        prefix,
        accounts,
        upstream: upstreamOf(stack.sim),
        logger: createLogger({ level: 'silent' }),
        ...options.worker,
        ...extra,
      });
      workers.push(worker);
      cleanups.push(() => worker.close());
      return worker;
    },
    async startWorkerProcesses(count, processOptions = {}) {
      const env = workerEnv(stack.sim, {
        redisUrl: url,
        prefix,
        accounts: processOptions.accounts ?? accounts,
        ...(processOptions.concurrency !== undefined ? { concurrency: processOptions.concurrency } : {}),
        ...(processOptions.extra ? { extra: processOptions.extra } : {}),
      });
      cleanups.push(env.cleanup);
      const started = await Promise.allSettled(
        Array.from({ length: count }, () => startWorkerProcess(env.env)),
      );
      const processes = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
      cleanups.push(() => Promise.all(processes.map((p) => p.stop(processOptions.stopSignal))));
      const failed = started.find((s) => s.status === 'rejected');
      if (failed) throw failed.reason;
      return processes;
    },
    redis() {
      const r = adminRedis(url);
      cleanups.push(() => r.quit());
      return r;
    },
    newProducer(extra = {}) {
      const p = createProducer({ connection: url, prefix, ...extra });
      cleanups.push(() => p.close());
      return p;
    },
    newAdmin(forAccounts = accounts) {
      const a = createAdmin({ connection: url, prefix, accounts: forAccounts });
      cleanups.push(() => a.close());
      return a;
    },
    defer(cleanup) {
      cleanups.push(cleanup);
    },
    stop() {
      stopped ??= stopAll();
      return stopped;
    },
  };

  // Registered before anything starts, so a stack that fails half-way is still torn down.
  const byTest = (options.teardown ?? 'test') === 'test';
  if (byTest) onTestFinished(() => stack.stop());
  try {
    if (options.sim !== false) sim = await startSim(options.sim);
    for (const [token, config] of Object.entries(options.tokens ?? {})) stack.sim.setToken(token, config);
    for (let i = 0; i < (options.workers ?? 0); i += 1) await stack.startWorker();
  } catch (error) {
    // The caller never gets a stack to stop.
    if (!byTest) await stack.stop().catch(() => undefined);
    throw error;
  }
  return stack;
}
