/** `pnpm bench:limits`: the report: its JSON shape, the progress line per run, and the Markdown. */
import { BULLMQ_JOB_OPTIONS, RETRY_POLICY } from '../support/baselines.js';
import { fixed, integer, markdownTable, percent, seconds } from '../support/format.js';
import { clientVersion } from '../support/hf-client.js';
import type { RunResult } from './measure.js';
import {
  BASELINE_CAP,
  CONCURRENCY,
  HFQ_CAP,
  JOBS,
  LATENCY,
  PROCESSES,
  QUICK,
  RATE_SHARE_TARGET,
} from './options.js';
import {
  CONFIGURED,
  idealMsOf,
  jobCount,
  SCENARIOS,
  type Scenario,
  SYSTEM_NAMES,
  SYSTEMS,
  upstreamOf,
  WINDOW_MS,
} from './scenarios.js';

export interface Report {
  mode: 'quick' | 'full';
  generatedAt: string;
  wallSeconds: number;
  setup: {
    jobsPerRun: number;
    processes: number;
    concurrency: number;
    latencyMs: { min: number; max: number };
    configured: string;
    capFactor: { hfq: number; baselines: number };
    baselineWorkersStartMs: number | null;
    client: string;
    baselines: { bullmq: string; retry: string };
    efficiency: string;
    timeToRate: string;
  };
  scenarios: (Scenario & { runs: RunResult[] })[];
}

export function buildReport(
  results: RunResult[],
  wallMs: number,
  baselineStartMs: number | undefined,
): Report {
  return {
    mode: QUICK ? 'quick' : 'full',
    generatedAt: new Date().toISOString(),
    wallSeconds: Math.round(wallMs / 100) / 10,
    setup: {
      jobsPerRun: JOBS,
      processes: PROCESSES,
      concurrency: CONCURRENCY,
      latencyMs: { min: LATENCY.minMs, max: LATENCY.maxMs },
      configured: `${CONFIGURED.max} per ${CONFIGURED.durationMs} ms`,
      capFactor: { hfq: HFQ_CAP, baselines: BASELINE_CAP },
      baselineWorkersStartMs: baselineStartMs ?? null,
      client: `@huggingface/inference ${clientVersion}`,
      baselines: {
        bullmq: `Worker limiter { max: ${CONFIGURED.max}, duration: ${CONFIGURED.durationMs} }; jobs attempts ${BULLMQ_JOB_OPTIONS.attempts}, exponential backoff from ${BULLMQ_JOB_OPTIONS.backoff.delay} ms`,
        retry: `no limiter; per request up to ${RETRY_POLICY.tries} tries, wait ${RETRY_POLICY.baseMs} ms × ${RETRY_POLICY.factor}^(n-1) × (1 + random)`,
      },
      efficiency:
        '(completed jobs ÷ true limit per second) ÷ seconds from the first upstream request to the last',
      timeToRate: `from the first request until admitted requests in a sliding ${WINDOW_MS} ms window first reach ${RATE_SHARE_TARGET} × the true limit`,
    },
    scenarios: SCENARIOS.map((scenario) => ({
      ...scenario,
      runs: results.filter((r) => r.scenario === scenario.id),
    })),
  };
}

function phasesText(s: Scenario): string {
  if (!s.phased) return '';
  const { phases } = s.phased;
  if (phases.length > 6) return `; ${phases.length} phases (see the title)`;
  const text = phases.map((p, i) => {
    const busy = p.busy ? ` with ${percent(p.busy, 0)} random 429s` : '';
    const span = i === phases.length - 1 ? ' to the end' : ` for ${fixed(p.forMs / 1000, 0)} s`;
    return `${p.limit}/s${busy}${span}${p.watched ? ' (watched from 2 s in)' : ''}`;
  });
  return `; phases ${text.join(', ')}`;
}

function upstreamText(s: Scenario, jobs: number): string {
  if (s.phased) {
    const headers =
      s.throttleStyle.retryAfter === 'seconds'
        ? '429 with Retry-After (seconds)'
        : '429 with no Retry-After, no rate headers';
    return `upstream sliding window per ${s.phased.windowMs} ms${phasesText(s)}, configured ${s.configured.max} per ${s.configured.durationMs} ms; ${headers}; ideal ${seconds(idealMsOf(s, jobs))} for ${integer(jobs)} jobs`;
  }
  const upstream = upstreamOf(s, jobs);
  const kind = upstream.algorithm === 'token-bucket' ? 'token bucket' : 'sliding window';
  const capacity = upstream.algorithm === 'token-bucket' ? ` (capacity ${upstream.burst})` : '';
  const moves = (upstream.schedule ?? [])
    .map((entry) => `, ${entry.limit} from ${fixed(entry.afterMs / 1000, 1)} s`)
    .join('');
  const headers =
    s.throttleStyle.retryAfter === 'seconds'
      ? '429 with Retry-After (seconds)'
      : '429 with no Retry-After, no rate headers';
  const busy = s.busyShare ? `; ${percent(s.busyShare, 1)} of requests answered 429 at random` : '';
  const ideal = `ideal ${seconds(idealMsOf(s, jobs))} for ${integer(jobs)} jobs`;
  return `upstream ${upstream.limit} per ${upstream.windowMs} ms ${kind}${capacity}${moves}, configured ${s.configured.max} per ${s.configured.durationMs} ms; ${headers}${busy}; ${ideal}`;
}

function shareTarget(s: Scenario): string {
  return s.target.throttledShare === null ? 'none' : `≤ ${percent(s.target.throttledShare, 1)}`;
}

function doneText(r: RunResult): string {
  const base = `${integer(r.completed)} / ${integer(r.failed)} / ${integer(r.unfinished)}`;
  return r.finished
    ? base
    : `${base} (did not finish: ${integer(r.completed + r.failed)}/${integer(r.jobs)} done at the ${fixed(r.capMs / 1000, 0)} s cap)`;
}

const mark = (ok: boolean) => (ok ? 'pass' : 'miss');

function targetText(r: RunResult, s: Scenario): string {
  if (!r.targets) return '';
  const watched =
    s.target.watchedShare === undefined
      ? ''
      : `; 429s in the watched phases ≤ ${percent(s.target.watchedShare, 1)}: ${mark(r.targets.watchedShare)}`;
  return (
    `efficiency ≥ ${fixed(s.target.efficiency, 2)}: ${mark(r.targets.efficiency)}; ` +
    `429s ${shareTarget(s)}: ${mark(r.targets.throttledShare)}${watched}`
  );
}

function watchedText(r: RunResult): string {
  return r.watched
    ? `, 429s in the watched phases ${percent(r.watched.share)} of ${integer(r.watched.requests)}`
    : '';
}

export function summaryLine(r: RunResult, s: Scenario): string {
  return (
    `${SYSTEM_NAMES[r.system]}: ${seconds(r.upstream.elapsedMs)} first→last request, efficiency ${fixed(r.efficiency, 3)}, ` +
    `429s ${percent(r.upstream.throttledShare)}${watchedText(r)}, max ${r.maxAdmittedInWindow}/window, done/failed/unfinished ${doneText(r)}` +
    (r.targets ? ` — ${targetText(r, s)}` : '')
  );
}

function hfqNotes(r: RunResult, s: Scenario): string[] {
  if (!r.hfq) return [];
  const { episodes, learned, finalLearnedRate } = r.hfq;
  const rates = episodes.map((e) => fixed(e.learnedRate, 1));
  const firstAtOrBelow = learned.find((l) => l.learnedRate !== null && l.learnedRate <= s.trueLimit);
  const parts = [
    `${episodes.length} congestion episode${episodes.length === 1 ? '' : 's'}` +
      (episodes.length > 0
        ? ` at ${episodes.map((e) => fixed(e.atMs / 1000, 1)).join(', ')} s after the enqueue (learned rate after each: ${rates.join(' → ')}; pauses ${episodes.map((e) => `${e.delayMs} ms ${e.delaySource}`).join(', ')})`
        : ''),
    finalLearnedRate === null
      ? 'no learned rate (the configured one in use)'
      : `learned rate at the end ${fixed(finalLearnedRate, 1)}`,
  ];
  if (s.trueLimit < s.configured.max) {
    parts.push(
      firstAtOrBelow
        ? `first at or below the true ${s.trueLimit} at ${fixed(firstAtOrBelow.atMs / 1000, 0)} s`
        : `never at or below the true ${s.trueLimit} in the 1 s samples`,
    );
  }
  return [`hfq: ${parts.join('; ')}.`];
}

/** The median of a non-empty list (the mean of the middle two for an even count). */
function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

export function renderMarkdown(report: Report): string {
  const { setup } = report;
  const lines: string[] = [
    `# Rate limits: hfq, plain BullMQ, a client-side retry loop${report.mode === 'quick' ? ' (quick)' : ''}`,
    '',
    `${integer(setup.jobsPerRun)} feature-extraction jobs per run; each system ${setup.processes} worker processes × concurrency ${setup.concurrency}; ` +
      `upstream latency uniform ${setup.latencyMs.min}–${setup.latencyMs.max} ms; one Redis, one simulator; a fresh BullMQ prefix and token per run; ` +
      `each run capped at a multiple of its ideal time (jobs ÷ true rate): hfq ${setup.capFactor.hfq}×, the baselines ${setup.capFactor.baselines}×. ` +
      `Client: ${setup.client}. Wall time ${fixed(report.wallSeconds, 0)} s.`,
    '',
    `- plain BullMQ: ${setup.baselines.bullmq}.`,
    `- retry loop: ${setup.baselines.retry}.`,
    `- efficiency: ${setup.efficiency}. Time to ${Math.round(RATE_SHARE_TARGET * 100)}%: ${setup.timeToRate}.`,
    '- done / failed / unfinished: jobs completed, failed for good, and neither when the run ended.',
  ];
  for (const scenario of report.scenarios) {
    const hidden = scenario.trueLimit < scenario.configured.max;
    lines.push(
      '',
      `## ${scenario.id}. ${scenario.title}`,
      '',
      `${upstreamText(scenario, scenario.runs[0]?.jobs ?? jobCount(scenario))}.`,
      '',
    );
    const header = [
      'system',
      'first → last request',
      'enqueue → last result',
      'efficiency',
      '429s',
      `max admitted in ${scenario.configured.durationMs} ms`,
      ...(hidden ? [`to ${Math.round(RATE_SHARE_TARGET * 100)}% of true rate`] : []),
      'done / failed / unfinished',
      'hfq target',
    ];
    const rows = scenario.runs.map((r) => [
      SYSTEM_NAMES[r.system],
      seconds(r.upstream.elapsedMs),
      seconds(r.enqueueToLastResultMs),
      fixed(r.efficiency, 3),
      `${percent(r.upstream.throttledShare)} (${integer(r.upstream.throttled)} of ${integer(r.upstream.requests)})`,
      `${r.maxAdmittedInWindow} (limit ${scenario.trueLimit})`,
      ...(hidden ? [seconds(r.upstream.timeToRateMs)] : []),
      doneText(r),
      targetText(r, scenario),
    ]);
    lines.push(markdownTable(header, rows, ['l']));
    const skipped = SYSTEMS.filter((system) => !scenario.runs.some((r) => r.system === system));
    if (skipped.length > 0) {
      lines.push(
        '',
        `Not run here${report.mode === 'quick' ? ' (--quick)' : ''}: ${skipped.map((s) => SYSTEM_NAMES[s]).join(', ')}.`,
      );
    }
    for (const r of scenario.runs) for (const note of hfqNotes(r, scenario)) lines.push('', note);
  }
  const hfqScenarios = report.scenarios
    .map((s) => [s, s.runs.filter((r) => r.system === 'hfq')] as const)
    .filter(([, runs]) => runs.length > 0);
  if (hfqScenarios.length > 0) {
    lines.push('', '## hfq against its targets (median and minimum over its runs)', '');
    lines.push(
      markdownTable(
        ['scenario', 'runs', 'efficiency median / min', 'target', '', '429s median / max', 'target', ''],
        hfqScenarios.map(([s, runs]) => {
          const eff = runs.map((r) => r.efficiency);
          const share = runs.map((r) => r.upstream.throttledShare);
          const watched = runs.flatMap((r) => (r.watched ? [r.watched.share] : []));
          const shareTargetMet = runs.filter(
            (r) => r.targets?.throttledShare && r.targets.watchedShare,
          ).length;
          return [
            `${s.id}. ${s.title}`,
            String(runs.length),
            `${fixed(median(eff), 3)} / ${fixed(Math.min(...eff), 3)}`,
            `≥ ${fixed(s.target.efficiency, 2)}`,
            `${runs.filter((r) => r.targets?.efficiency).length}/${runs.length} met`,
            `${percent(median(share), 2)} / ${percent(Math.max(...share), 2)}` +
              (watched.length > 0
                ? `; watched ${percent(median(watched), 2)} / ${percent(Math.max(...watched), 2)}`
                : ''),
            shareTarget(s) +
              (s.target.watchedShare === undefined ? '' : `; watched ≤ ${percent(s.target.watchedShare, 1)}`),
            s.target.throttledShare === null && s.target.watchedShare === undefined
              ? ''
              : `${shareTargetMet}/${runs.length} met`,
          ];
        }),
        ['l'],
      ),
    );
  }
  return lines.join('\n');
}
