/**
 * `pnpm bench:cluster`: what a 3-master Redis Cluster gives hfq, against one Redis, on one machine.
 *
 * Twelve accounts, each with its own token and a limit far above what the machine reaches (the
 * limiter runs but never binds), the same workload twice:
 *
 * 1. **one Redis**: a `redis-server` of the benchmark's own;
 * 2. **cluster**: three masters started by `test/support/cluster.ts` (no replicas).
 *
 * Each run: two `hfq worker` processes serving all twelve accounts (concurrency 16 each), the
 * simulator in a process of its own at zero latency, a producer in this process enqueueing
 * `--jobs` per account with `enqueueMany`, then polling the counts until every job is done.
 *
 * Figures per run: jobs per second (first enqueue → last `finishedOn`), Redis commands per job
 * (sum over every master of the `INFO commandstats` deltas; also net of what the idle workers send
 * in the same time, measured for 5 s before the run, and the benchmark's own polling once a
 * second), the commands per job of the largest commands, and each master's share of the commands
 * (target: with 12 accounts no master above 50%), and the busiest master's Redis CPU per command
 * (`INFO cpu`), from which one core's capacity for this mix follows (README, "Redis Cluster",
 * sizing). Writes `.bench-out/cluster.json` and
 * `.bench-out/cluster.md`.
 *
 * The machine runs other work too: jobs per second are this machine's, not a cluster's capacity.
 * Commands per job and the shares do not depend on the machine.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createProducer } from '@hfq/producer';
import type { AccountConfigInput, Connection } from '@hfq/shared';
import { Redis } from 'ioredis';
import { SpawnedRedis } from '../packages/cli/src/local-redis.js';
import { SpawnedCluster } from '../test/support/cluster.js';
import { startChildren, stopChildren } from './support/child.js';
import { Cleanup } from './support/cleanup.js';
import { fixed, integer, markdownTable, percent } from './support/format.js';
import { startSimProcess } from './support/sim-process.js';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    /** Jobs per account. */
    jobs: { type: 'string' },
    accounts: { type: 'string', default: '12' },
    processes: { type: 'string', default: '2' },
    concurrency: { type: 'string', default: '16' },
    targets: { type: 'string', default: 'standalone,cluster' },
  },
});

type TargetId = 'standalone' | 'cluster';
const QUICK = values.quick === true;
const JOBS_PER_ACCOUNT = Number(values.jobs ?? (QUICK ? 100 : 500));
const ACCOUNTS = Number(values.accounts);
const PROCESSES = Number(values.processes);
const CONCURRENCY = Number(values.concurrency);
const MODEL = 'sentence-transformers/all-MiniLM-L6-v2';
const LIMIT = { max: 100_000, durationMs: 1_000 };
const MAX_MASTER_SHARE = 0.5;
const CAP_MS = 600_000;
const POLL_MS = 1_000;
/** Idle workers still talk to Redis (blocking fetches, stalled checks, supervisors): measured this long first. */
const IDLE_MS = 5_000;

const log = (message: string) => process.stderr.write(`${message}\n`);

const accounts: AccountConfigInput[] = Array.from({ length: ACCOUNTS }, (_, i) => ({
  id: `bench-${String(i + 1).padStart(2, '0')}`,
  tier: 'pro',
  hfToken: `hf_bench_cluster_${String(i + 1).padStart(2, '0')}_0123456789abcdef`,
  limit: LIMIT,
}));

/** `cmdstat_<name>` calls of one node, and its CPU seconds so far (as `cpu`). */
async function commandCalls(port: number): Promise<Record<string, number>> {
  const redis = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1 });
  try {
    const text = `${await redis.info('commandstats')}\n${await redis.info('cpu')}`;
    const calls: Record<string, number> = {};
    for (const match of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
      calls[match[1] as string] = Number(match[2]);
    }
    const cpu = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(text)?.[1] ?? 0);
    calls[CPU] = cpu('used_cpu_user') + cpu('used_cpu_sys');
    return calls;
  } finally {
    redis.disconnect();
  }
}

/** Not a command: the node's CPU seconds, carried in the same record. */
const CPU = '(cpu seconds)';

/** Commands the benchmark's own readings add (INFO) are left out of the counts. */
const READINGS = new Set([CPU, 'info', 'cluster|info', 'cluster|nodes', 'cluster|slots', 'cluster|keyslot']);

function delta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, n] of Object.entries(after)) {
    if (READINGS.has(name)) continue;
    const d = n - (before[name] ?? 0);
    if (d > 0) out[name] = d;
  }
  return out;
}

interface RunResult {
  target: TargetId;
  jobs: number;
  completed: number;
  failed: number;
  elapsedMs: number;
  jobsPerSecond: number;
  commandsPerJob: number;
  /** Commands per job less what the idle workers sent in the same time (measured before the run). */
  netCommandsPerJob: number;
  /** Commands per second of the idle workers (12 accounts × processes), all masters. */
  idleCommandsPerSecond: number;
  /** Share of all commands served by each master (port → share), largest first. */
  masterShares: { port: number; share: number; commands: number }[];
  topCommandsPerJob: Record<string, number>;
  /** Redis CPU time per command on the busiest master, µs, and what one core would serve at it. */
  cpuMicrosPerCommand: number;
  commandsPerCoreSecond: number;
}

async function runOnce(
  target: TargetId,
  sim: Awaited<ReturnType<typeof startSimProcess>>,
  cleanup: Cleanup,
): Promise<RunResult> {
  // The masters (ports) whose commands are counted, and how workers and the producer connect.
  let ports: number[];
  let connection: Connection;
  let env: Record<string, string>;
  let stopServer: () => Promise<void>;
  if (target === 'standalone') {
    const server = await SpawnedRedis.start();
    ports = [server.port];
    connection = server.url;
    env = { REDIS_URL: server.url };
    stopServer = () => server.stop();
  } else {
    const cluster = await SpawnedCluster.start();
    ports = (await cluster.topology()).filter((n) => n.role === 'master').map((n) => n.port);
    connection = { clusterNodes: cluster.ports.map((port) => ({ host: '127.0.0.1', port })) };
    env = { REDIS_CLUSTER_NODES: cluster.nodesEnv };
    stopServer = () => cluster.stop();
  }
  const stop = cleanup.add(`${target} redis`, stopServer);
  const dir = mkdtempSync(join(tmpdir(), 'hfq-bench-cluster-'));
  const removeDir = cleanup.add('temporary files', () => rmSync(dir, { recursive: true, force: true }));
  const accountsFile = join(dir, 'accounts.json');
  writeFileSync(accountsFile, JSON.stringify(accounts));
  // A plain prefix: hfq tags its keys per unit of state, so the accounts spread over the masters.
  const prefix = 'benchc';
  const workers = await startChildren(
    PROCESSES,
    (i) => ({
      label: `worker ${i + 1}`,
      script: 'packages/cli/src/main.ts',
      args: ['worker'],
      env: {
        ...env,
        HFQ_PREFIX: prefix,
        HFQ_ACCOUNTS_FILE: accountsFile,
        HFQ_CONCURRENCY: String(CONCURRENCY),
        HF_ROUTER_URL: sim.routerUrl,
        HF_HUB_URL: sim.hubUrl,
        HFQ_METRICS_PORT: '0',
        LOG_LEVEL: 'info',
      },
    }),
    '"worker ready"',
    120_000,
  );
  const stopWorkers = cleanup.add(`${target} workers`, () => stopChildren(workers));
  const producer = createProducer({ connection, prefix });
  const closeProducer = cleanup.add(`${target} producer`, () => producer.close());
  try {
    // Connections up before the first reading.
    await Promise.all(accounts.map((a) => producer.queue(a.id).getJobCounts('completed')));
    const idleBefore = await Promise.all(ports.map(commandCalls));
    await new Promise((r) => setTimeout(r, IDLE_MS));
    const before = await Promise.all(ports.map(commandCalls));
    const idleCommands = ports
      .map((_, i) => Object.values(delta(idleBefore[i] ?? {}, before[i] ?? {})).reduce((a, b) => a + b, 0))
      .reduce((a, b) => a + b, 0);
    const idleCommandsPerSecond = idleCommands / (IDLE_MS / 1000);
    const t0 = Date.now();
    const total = JOBS_PER_ACCOUNT * ACCOUNTS;
    const jobs = accounts.flatMap((a) =>
      Array.from({ length: JOBS_PER_ACCOUNT }, (_, i) => ({
        account: a.id as string,
        task: 'feature-extraction' as const,
        model: MODEL,
        inputs: `${a.id} text ${i}`,
      })),
    );
    for (let start = 0; start < jobs.length; start += 2_000) {
      await producer.enqueueMany(jobs.slice(start, start + 2_000));
    }
    let done = { completed: 0, failed: 0 };
    for (;;) {
      const counts = await Promise.all(
        accounts.map((a) => producer.queue(a.id).getJobCounts('completed', 'failed')),
      );
      done = { completed: 0, failed: 0 };
      for (const c of counts) {
        done.completed += c.completed ?? 0;
        done.failed += c.failed ?? 0;
      }
      if (done.completed + done.failed >= total || Date.now() - t0 > CAP_MS) break;
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    const lastFinished = Math.max(
      ...(await Promise.all(
        accounts.map(async (a) => {
          const [last] = await producer.queue(a.id).getJobs(['completed'], 0, 0, false);
          return last?.finishedOn ?? 0;
        }),
      )),
    );
    const after = await Promise.all(ports.map(commandCalls));
    const perMaster = ports.map((port, i) => ({ port, calls: delta(before[i] ?? {}, after[i] ?? {}) }));
    const commands = perMaster.map((m) => Object.values(m.calls).reduce((a, b) => a + b, 0));
    const allCommands = commands.reduce((a, b) => a + b, 0);
    const byName: Record<string, number> = {};
    for (const m of perMaster) {
      for (const [name, n] of Object.entries(m.calls)) byName[name] = (byName[name] ?? 0) + n;
    }
    const top = Object.entries(byName)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 8)
      .map(([name, n]) => [name, n / total] as const);
    const elapsedMs = (lastFinished > 0 ? lastFinished : Date.now()) - t0;
    const busiest = commands.indexOf(Math.max(...commands));
    const busiestCpu = (after[busiest]?.[CPU] ?? 0) - (before[busiest]?.[CPU] ?? 0);
    const cpuMicrosPerCommand = (busiestCpu * 1e6) / Math.max(1, commands[busiest] ?? 0);
    const measuredMs = Date.now() - t0;
    return {
      target,
      jobs: total,
      ...done,
      elapsedMs,
      jobsPerSecond: done.completed / (elapsedMs / 1000),
      commandsPerJob: allCommands / total,
      netCommandsPerJob: Math.max(0, allCommands - idleCommandsPerSecond * (measuredMs / 1000)) / total,
      idleCommandsPerSecond,
      masterShares: perMaster
        .map((m, i) => ({
          port: m.port,
          commands: commands[i] ?? 0,
          share: (commands[i] ?? 0) / allCommands,
        }))
        .sort((a, b) => b.share - a.share),
      topCommandsPerJob: Object.fromEntries(top),
      cpuMicrosPerCommand,
      commandsPerCoreSecond: cpuMicrosPerCommand > 0 ? 1e6 / cpuMicrosPerCommand : 0,
    };
  } finally {
    await closeProducer();
    await stopWorkers();
    await removeDir();
    await stop();
  }
}

async function main(): Promise<void> {
  const targets = (values.targets ?? '').split(',').map((s) => s.trim()) as TargetId[];
  for (const t of targets)
    if (t !== 'standalone' && t !== 'cluster') throw new Error(`unknown target "${t}"`);
  const cleanup = new Cleanup();
  const results: RunResult[] = [];
  try {
    const sim = await startSimProcess({
      latency: { baseMs: 0, jitterMs: 0, perItemMs: 0 },
      logLimit: 1_000,
      hub: { limits: [{ algorithm: 'fixed-window', limit: 1_000_000, windowMs: 300_000 }] },
      tokens: Object.fromEntries(accounts.map((a) => [a.hfToken, { label: a.id }])),
    });
    cleanup.add('simulator', () => sim.close());
    log(
      `bench:cluster ${QUICK ? '(quick) ' : ''}— ${ACCOUNTS} accounts × ${integer(JOBS_PER_ACCOUNT)} jobs, ` +
        `${PROCESSES} worker processes × concurrency ${CONCURRENCY}, targets ${targets.join(', ')}`,
    );
    for (const target of targets) {
      log(`  ${target} …`);
      const result = await runOnce(target, sim, cleanup);
      results.push(result);
      log(
        `  ${target}: ${fixed(result.jobsPerSecond)} jobs/s, ${fixed(result.commandsPerJob, 2)} commands/job, ` +
          `busiest master ${percent(result.masterShares[0]?.share ?? 0)}`,
      );
    }
  } finally {
    await cleanup.runAll();
  }
  const table = markdownTable(
    [
      'target',
      'jobs',
      'completed',
      'failed',
      'jobs/s',
      'commands/job',
      'net of idle',
      'idle commands/s',
      'Redis CPU µs/command',
      'share of commands per master',
    ],
    results.map((r) => [
      r.target === 'standalone' ? 'one Redis' : `cluster (${r.masterShares.length} masters)`,
      integer(r.jobs),
      integer(r.completed),
      integer(r.failed),
      fixed(r.jobsPerSecond),
      fixed(r.commandsPerJob, 2),
      fixed(r.netCommandsPerJob, 2),
      integer(r.idleCommandsPerSecond),
      fixed(r.cpuMicrosPerCommand, 1),
      r.masterShares.map((m) => percent(m.share)).join(' / '),
    ]),
    ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l'],
  );
  const cluster = results.find((r) => r.target === 'cluster');
  const verdict = cluster
    ? `busiest master ${percent(cluster.masterShares[0]?.share ?? 0)} of commands (target ≤ ${percent(MAX_MASTER_SHARE, 0)}): ` +
      ((cluster.masterShares[0]?.share ?? 1) <= MAX_MASTER_SHARE ? 'met' : 'MISSED')
    : '';
  const commands = results
    .map(
      (r) =>
        `${r.target}: ${Object.entries(r.topCommandsPerJob)
          .map(([name, n]) => `${name} ${fixed(n, 2)}`)
          .join(', ')}`,
    )
    .join('\n');
  const report = `${table}\n\n${verdict}\n\nCommands per job, largest:\n${commands}\n`;
  process.stdout.write(`\n${report}`);
  mkdirSync('.bench-out', { recursive: true });
  writeFileSync('.bench-out/cluster.json', `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync('.bench-out/cluster.md', report);
}

main().catch((err) => {
  process.stderr.write(`bench:cluster failed: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
