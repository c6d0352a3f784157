import type { AccountStatus } from '@hfq/worker';
import { durationText, endpointAvailabilityText, noiseText, spendNotes } from '@hfq/worker/internal';
import { clockText } from '../deadline-projection.js';
import { money, table } from './shared-config.js';

/** What `hfq status` prints (and redraws with --watch): accounts, ETA, live workers, warnings. */

export interface WorkerRow {
  id: string;
  host: string;
  version: string;
  accounts: string[];
  concurrency: number;
  inFlight: number;
  seenAtMs: number;
  live: boolean;
}

function creditsText(s: AccountStatus): string {
  if (s.credits.state === 'ok') return 'ok';
  if (s.credits.state === 'exhausted')
    return `exhausted until ${new Date(s.credits.untilMs).toISOString().slice(0, 10)}`;
  return `held: ${s.credits.reason.slice(0, 40)}`;
}

function rateText(s: AccountStatus): string {
  if (!s.configuredRate) return '-';
  const rate = `${s.learnedRate?.toFixed(1) ?? '-'}/${s.configuredRate.max} per ${s.configuredRate.durationMs / 1000}s`;
  return s.override ? `${rate} (${overrideText(s.override)})` : rate;
}

/** `override of 20 until 14:05Z` or `override of 20, permanent`: an `hfq limit` in force. */
export function overrideText(o: NonNullable<AccountStatus['override']>): string {
  return o.untilMs === undefined
    ? `override of ${o.configuredMax}, permanent`
    : `override of ${o.configuredMax} until ${new Date(o.untilMs).toISOString().slice(11, 16)}Z`;
}

function etaText(s: AccountStatus): string {
  const f = s.forecast;
  if (f.backlog === 0) return 'idle';
  if (s.source === 'unconfigured' || s.liveWorkers === 0) return 'no worker';
  if (s.holdReason || s.paused) return 'held';
  if (f.etaMs === undefined) return 'stalled';
  return `${durationText(f.etaMs)} @ ${f.throughputPerSecond.toFixed(1)}/s`;
}

export function renderStatusText(statuses: AccountStatus[], workers: WorkerRow[], nowMs: number): string {
  const rows = [
    [
      'account',
      'tier',
      'workers',
      'waiting',
      'active',
      'delayed',
      'done',
      'failed',
      'rate (learned/limit)',
      'noise (learned)',
      '429s 5m',
      'credits',
      'route',
      'spend HF / keys',
      'ETA',
      'backlog cost',
    ],
  ];
  for (const s of statuses) {
    const c = s.counts;
    rows.push([
      s.source === 'unconfigured' ? `${s.account} (?)` : s.account,
      s.tier,
      String(s.liveWorkers),
      String((c.waiting ?? 0) + (c.prioritized ?? 0)),
      s.orphanedActive > 0 ? `${c.active ?? 0} (${s.orphanedActive} orphaned)` : String(c.active ?? 0),
      String(c.delayed ?? 0),
      String(c.completed ?? 0),
      String(c.failed ?? 0),
      rateText(s),
      s.configuredRate ? noiseText(s.learnedNoise) : '-',
      String(s.recent429s),
      s.source === 'unconfigured' ? '-' : creditsText(s),
      s.source === 'unconfigured' ? '-' : s.paused ? `${s.route} (paused)` : s.route,
      `${money(s.spend.hfRouterUsd)} / ${money(s.spend.providerKeyUsd)}`,
      etaText(s),
      s.forecast.backlogCostUsd === undefined || s.forecast.backlog === 0
        ? '-'
        : money(s.forecast.backlogCostUsd),
    ]);
  }
  const out = [statuses.length > 0 ? table(rows) : 'no account queues found under this prefix'];
  const live = workers.filter((w) => w.live);
  out.push('');
  if (live.length === 0) out.push('live workers: none');
  else {
    out.push(`live workers: ${live.length}`);
    out.push(
      table([
        ['worker', 'version', 'accounts', 'concurrency', 'in flight', 'seen'],
        ...live.map((w) => [
          w.id,
          w.version,
          w.accounts.join(','),
          String(w.concurrency),
          String(w.inFlight),
          `${durationText(nowMs - w.seenAtMs)} ago`,
        ]),
      ])
        .split('\n')
        .map((line) => `  ${line}`)
        .join('\n'),
    );
  }
  const notes: string[] = [];
  for (const s of statuses) {
    const f = s.forecast;
    if (s.source === 'unconfigured') {
      const jobs = Object.values(s.counts).reduce((a, b) => a + b, 0);
      notes.push(
        `${s.account}: a queue with ${jobs} job${jobs === 1 ? '' : 's'} that no worker serves (a mistyped account?)`,
      );
    }
    if (s.orphanedActive > 0)
      notes.push(
        `${s.account}: ${s.orphanedActive} active jobs whose worker is gone; re-delivered when their locks expire`,
      );
    if (s.holdReason) notes.push(`${s.account} is held: ${s.holdReason}`);
    for (const note of spendNotes(s, money)) notes.push(`${s.account}: ${note}`);
    // Each lane (see docs/architecture.md, "Every route its own lane") when the account has several.
    if (s.lanes.length > 1) {
      for (const lane of s.lanes) {
        const c = lane.counts ?? {};
        const backlog = (c.waiting ?? 0) + (c.prioritized ?? 0) + (c.delayed ?? 0);
        const state =
          lane.holdReason !== undefined
            ? ` · held: ${lane.holdReason}`
            : lane.paused
              ? ' · paused'
              : lane.pausedForMs > 0
                ? ` · paused ${Math.ceil(lane.pausedForMs / 1000)} s (Retry-After)`
                : '';
        notes.push(`${s.account} lane ${lane.lane}: ${backlog} waiting · ${c.active ?? 0} active${state}`);
      }
    }
    for (const e of s.endpoints) {
      const cost = e.costUsd === undefined ? '' : ` · ${money(e.costUsd)} so far`;
      const jobs = e.backlog === undefined ? '' : ` · ${e.backlog} job${e.backlog === 1 ? '' : 's'} for it`;
      const why =
        e.availability === 'ok'
          ? ''
          : ` · ${endpointAvailabilityText(e, s.routing)}${e.reason ? ` (${e.reason})` : ''}`;
      notes.push(
        `${s.account} endpoint ${e.name}: ${e.state} · ${e.inFlight}/${e.limit} in flight (configured ${e.concurrency})${jobs}${cost}${why}`,
      );
    }
    for (const line of batchLines(s, nowMs)) notes.push(line);
    if (f.creditsRunOutAtMs !== undefined && f.hfSpendPerHourUsd !== undefined && f.backlog > 0) {
      // No budget: the included credits end in pay-as-you-go, not in a stop.
      if (s.budgetUsd !== undefined)
        notes.push(
          `${s.account}: HF credits left ${money(f.creditsLeftUsd)}, spending ${money(f.hfSpendPerHourUsd)}/h: they run out in ${durationText(f.creditsRunOutAtMs - nowMs)}`,
        );
      else if (f.creditsLeftUsd > 0)
        notes.push(
          `${s.account}: included credits left ${money(f.creditsLeftUsd)}, spending ${money(f.hfSpendPerHourUsd)}/h: pay-as-you-go in ${durationText(f.creditsRunOutAtMs - nowMs)}`,
        );
    }
  }
  if (notes.length > 0) out.push('', ...notes);
  return out.join('\n');
}

/**
 * The account's provider batches (README, "Deadlines and the batch route"), one line each, and
 * what they save: nothing for an account without batches.
 */
export function batchLines(s: AccountStatus, nowMs: number): string[] {
  const plans = (s.batchPlans ?? []).map((p) => {
    const split =
      p.batchedJobs > 0
        ? `${p.realtimeJobs} real time + ${p.batchedJobs} in ${p.batches} batch${p.batches === 1 ? '' : 'es'} (${p.provider})`
        : `${p.realtimeJobs} real time`;
    const verdict = p.meetsDeadline ? '' : ' (misses it: everything runs in real time now)';
    return `${s.account} plan ${p.model} (${p.lane}): ${split} · finish ${clockText(p.projectedFinishMs, nowMs)} · deadline ${clockText(p.deadlineMs, nowMs)}${verdict} · ${money(p.plannedCostUsd)} against ${money(p.costAllRealtimeUsd)} all real time`;
  });
  const lines = (s.batches ?? []).map((b) => {
    const id = b.batchId ? ` ${b.batchId}` : '';
    return `${s.account} batch ${b.id} (${b.provider}${id}): ${b.state} · ${b.jobs} job${b.jobs === 1 ? '' : 's'} · hedge ${clockText(b.hedgeAtMs, nowMs)} · deadline ${clockText(b.deadlineMs, nowMs)}`;
  });
  if (s.batchSavingUsd !== undefined)
    lines.push(
      `${s.account}: its batches save about ${money(s.batchSavingUsd)} against all real time (at this month's cost per request)`,
    );
  return [...plans, ...lines];
}
