/** The load benchmark's report: medians, ratios against the baseline, and its Markdown. */
import { fixed, integer, markdownTable } from '../support/format.js';
import { clientVersion } from '../support/hf-client.js';
import {
  ACCOUNT_LIMIT,
  CONCURRENCY,
  JOBS,
  MODEL,
  PROCESSES,
  QUICK,
  ROUNDS,
  SIM_BUSY_SHARE,
  SYSTEM_NAMES,
  type SystemId,
  TARGETS,
} from './options.js';
import type { RunResult } from './run.js';

export interface Report {
  mode: 'quick' | 'full';
  generatedAt: string;
  wallSeconds: number;
  setup: {
    jobs: number;
    processes: number;
    concurrency: number;
    accountLimit: string;
    model: string;
    client: string;
    redis: string;
    simulator: string;
    baseline: string;
  };
  rounds: number;
  runs: RunResult[];
  /** The round of each system's median run, the one the ratios compare. */
  median: Record<SystemId, number | null>;
  ratios: {
    throughput: number | null;
    /** Baseline CPU per job (every process) ÷ hfq's: the throughput ratio of a machine doing nothing else. */
    cpuImpliedThroughput: number | null;
    commandsPerJob: number | null;
    throughputTarget: number;
    commandsTarget: number;
    throughputMet: boolean | null;
    commandsMet: boolean | null;
  };
  /** Commands per job hfq issues beyond the baseline, largest first. */
  addedCallsPerJob: Record<string, number>;
  simulatorBottleneck: boolean;
}

/** The run with the median throughput of a system (the lower middle one for an even count). */
export function medianRun(results: RunResult[], system: SystemId): RunResult | undefined {
  const runs = results.filter((r) => r.system === system).sort((a, b) => a.jobsPerSecond - b.jobsPerSecond);
  return runs[Math.floor((runs.length - 1) / 2)];
}

export function buildReport(results: RunResult[], wallMs: number, redisSource: string): Report {
  const hfq = medianRun(results, 'hfq');
  const base = medianRun(results, 'baseline');
  const throughput = hfq && base ? Math.round((hfq.jobsPerSecond / base.jobsPerSecond) * 1000) / 1000 : null;
  // On a CPU-bound machine, throughput goes as 1 ÷ CPU per job: a figure other load does not move.
  const totalCpu = (r: RunResult) =>
    (r.cpuMsPerJob.workers ?? Number.NaN) +
    (r.cpuMsPerJob.simulator ?? Number.NaN) +
    r.cpuMsPerJob.redis +
    r.cpuMsPerJob.producer;
  const cpuImplied = hfq && base ? Math.round((totalCpu(base) / totalCpu(hfq)) * 1000) / 1000 : null;
  const commands =
    hfq && base ? Math.round((hfq.redis.commandsPerJob / base.redis.commandsPerJob) * 1000) / 1000 : null;
  const added: Record<string, number> = {};
  if (hfq && base) {
    const names = new Set([...Object.keys(hfq.redis.callsPerJob), ...Object.keys(base.redis.callsPerJob)]);
    for (const name of names) {
      const delta = (hfq.redis.callsPerJob[name] ?? 0) - (base.redis.callsPerJob[name] ?? 0);
      if (Math.abs(delta) >= 0.01) added[name] = Math.round(delta * 100) / 100;
    }
  }
  return {
    mode: QUICK ? 'quick' : 'full',
    generatedAt: new Date().toISOString(),
    wallSeconds: Math.round(wallMs / 100) / 10,
    setup: {
      jobs: JOBS,
      processes: PROCESSES,
      concurrency: CONCURRENCY,
      accountLimit: `${ACCOUNT_LIMIT.max} per ${ACCOUNT_LIMIT.durationMs} ms (never binds; the permit is still taken)`,
      model: MODEL,
      client: `@huggingface/inference ${clientVersion}`,
      redis: redisSource,
      simulator: '`hfq sim` in its own process, zero latency',
      baseline:
        'BullMQ Worker, no limiter, the same client and URL rewrite; jobs added with addBulk and the same options as hfq',
    },
    rounds: ROUNDS,
    runs: results,
    median: { hfq: hfq?.round ?? null, baseline: base?.round ?? null },
    ratios: {
      throughput,
      cpuImpliedThroughput: Number.isFinite(cpuImplied) ? cpuImplied : null,
      commandsPerJob: commands,
      throughputTarget: TARGETS.throughputRatio,
      commandsTarget: TARGETS.commandsRatio,
      throughputMet: throughput === null ? null : throughput >= TARGETS.throughputRatio,
      commandsMet: commands === null ? null : commands <= TARGETS.commandsRatio,
    },
    addedCallsPerJob: Object.fromEntries(Object.entries(added).sort((a, b) => b[1] - a[1])),
    simulatorBottleneck: results.some((r) => (r.simulatorCoreShare ?? 0) > SIM_BUSY_SHARE),
  };
}

export function summaryLine(r: RunResult): string {
  return (
    `${SYSTEM_NAMES[r.system]} (round ${r.round}): ${integer(r.completed)} done, ${integer(r.failed)} failed in ${fixed(r.elapsedMs / 1000)} s ` +
    `= ${fixed(r.jobsPerSecond, 0)} jobs/s; ${fixed(r.redis.commandsPerJob, 1)} Redis commands/job; ` +
    `worker peak RSS ${r.memory.workerPeakRssMB.map((m) => m ?? '?').join('/')} MB; producer ${r.memory.producerPeakRssMB ?? '?'} MB; ` +
    `simulator ${r.simulatorCoreShare ?? '?'} of a core`
  );
}

export const mark = (ok: boolean | null) => (ok === null ? '—' : ok ? 'pass' : 'miss');
export const maxOf = (list: (number | null)[]) => Math.max(...list.map((m) => m ?? 0));
export const meanOf = (list: (number | null)[]) =>
  list.reduce<number>((a, m) => a + (m ?? 0), 0) / list.length;

export function renderMarkdown(report: Report): string {
  const { setup, runs, ratios } = report;
  const lines: string[] = [
    `# Load: hfq against plain BullMQ${report.mode === 'quick' ? ' (quick)' : ''}`,
    '',
    `${integer(setup.jobs)} feature-extraction jobs per system; ${setup.processes} worker processes × concurrency ${setup.concurrency}; ` +
      `simulator: ${setup.simulator}; Redis: ${setup.redis}; client ${setup.client}. hfq account limit ${setup.accountLimit}. ` +
      `Baseline: ${setup.baseline}. Wall time ${fixed(report.wallSeconds, 0)} s.`,
    '',
    report.rounds > 1
      ? `${report.rounds} rounds, the order of the systems flipped each round; the ratios compare each system's median run (marked *).`
      : 'One run per system.',
    '',
    '- jobs/s: completed jobs ÷ seconds from the start of the enqueue to the last job finished (its `finishedOn`).',
    '- Redis commands/job: `total_commands_processed` (commands inside Lua scripts included) over the run ÷ jobs.',
    '- CPU ms/job: CPU time of each process group over the run ÷ jobs (a 2-core machine runs everything).',
    '',
    markdownTable(
      [
        'system',
        'round',
        'done / failed',
        'enqueue',
        'enqueue → last result',
        'jobs/s',
        'Redis cmds/job',
        'worker peak RSS (max / mean)',
        'producer peak RSS',
        'Redis memory growth',
        'CPU ms/job: workers / sim / Redis / producer',
        'simulator busy',
      ],
      runs.map((r) => [
        SYSTEM_NAMES[r.system],
        `${r.round}${report.rounds > 1 && report.median[r.system] === r.round ? ' *' : ''}`,
        `${integer(r.completed)} / ${integer(r.failed)}${r.finished ? '' : ' (cap reached)'}`,
        `${fixed(r.enqueueMs / 1000)} s`,
        `${fixed(r.elapsedMs / 1000)} s`,
        fixed(r.jobsPerSecond, 0),
        fixed(r.redis.commandsPerJob, 1),
        `${fixed(maxOf(r.memory.workerPeakRssMB), 0)} / ${fixed(meanOf(r.memory.workerPeakRssMB), 0)} MB`,
        `${fixed(r.memory.producerPeakRssMB ?? 0, 0)} MB`,
        `${fixed(r.redis.memoryGrowthMB, 0)} MB`,
        [r.cpuMsPerJob.workers, r.cpuMsPerJob.simulator, r.cpuMsPerJob.redis, r.cpuMsPerJob.producer]
          .map((v) => (v === null ? '?' : fixed(v, 3)))
          .join(' / '),
        r.simulatorCoreShare === null ? '?' : `${fixed(r.simulatorCoreShare * 100, 0)}% of a core`,
      ]),
      ['l'],
    ),
  ];
  if (ratios.throughput !== null && ratios.commandsPerJob !== null) {
    lines.push(
      '',
      '## hfq ÷ baseline',
      '',
      markdownTable(
        ['figure', 'ratio', 'target', ''],
        [
          [
            'throughput',
            fixed(ratios.throughput, 3),
            `≥ ${ratios.throughputTarget}`,
            mark(ratios.throughputMet),
          ],
          [
            'throughput implied by CPU per job (all processes)',
            ratios.cpuImpliedThroughput === null ? '?' : fixed(ratios.cpuImpliedThroughput, 3),
            '(for reference)',
            '',
          ],
          [
            'Redis commands per job',
            fixed(ratios.commandsPerJob, 3),
            `≤ ${ratios.commandsTarget}`,
            mark(ratios.commandsMet),
          ],
        ],
        ['l'],
      ),
      '',
      `Redis calls per job hfq adds (+) or saves (−) against the baseline: ${
        Object.entries(report.addedCallsPerJob)
          .map(([name, n]) => `${name} ${n > 0 ? '+' : ''}${fixed(n, 2)}`)
          .join(', ') || 'none'
      }.`,
    );
  }
  for (const r of runs.filter((x) => report.median[x.system] === x.round)) {
    const top = Object.entries(r.redis.callsPerJob)
      .slice(0, 12)
      .map(([name, n]) => `${name} ${fixed(n, 2)}`);
    lines.push('', `${SYSTEM_NAMES[r.system]} (round ${r.round}), Redis calls per job: ${top.join(', ')}.`);
  }
  lines.push(
    '',
    report.simulatorBottleneck
      ? `The simulator used more than ${SIM_BUSY_SHARE * 100}% of a core in some run: it may have capped throughput there.`
      : `The simulator used at most ${fixed(Math.max(...runs.map((r) => (r.simulatorCoreShare ?? 0) * 100)), 0)}% of a core: it was not the bottleneck.`,
  );
  return lines.join('\n');
}
