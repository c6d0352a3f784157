import type { Connection } from '@hfq/shared';
import { createAdmin } from '@hfq/worker';
import { type DeadlineProjection, durationText, projectDeadline } from '@hfq/worker/internal';
import { money } from './commands/shared-config.js';
import type { RunDeadline } from './deadline-flags.js';

/**
 * What `hfq enqueue --deadline` prints before it enqueues (and `--dry-run` too): per account, the
 * jobs already waiting plus the run's, the real-time capacity `hfq status` shows, and the
 * planner's verdict (`projectDeadline`, the worker's rule).
 */

/** The run's distinct jobs for one account, their estimated tokens and real-time cost, its chat completions. */
export interface RunShare {
  jobs: number;
  tokens: number;
  costUsd: number;
  chatJobs: number;
}

export interface RunProjection {
  /** One per account of the run; undefined where no worker described the account. */
  projections: { account: string; projection: DeadlineProjection | undefined }[];
  /** Some account's projected finish is after the deadline. */
  missed: boolean;
}

/** Read the accounts' status (read-only: what workers published) and project the run. */
export async function projectRun(
  connection: Connection,
  prefix: string,
  perAccount: ReadonlyMap<string, RunShare>,
  deadline: RunDeadline,
): Promise<RunProjection> {
  const admin = createAdmin({ connection, prefix });
  try {
    const statuses = await admin.status();
    const nowMs = Date.now();
    const projections = [...perAccount].map(([account, run]) => {
      const status = statuses.find((s) => s.account === account && s.source !== 'unconfigured');
      return {
        account,
        projection:
          status &&
          projectDeadline({
            status,
            run,
            deadlineMs: deadline.atMs,
            preference: deadline.preference,
            nowMs,
          }),
      };
    });
    const missed = projections.some((p) => p.projection?.plan && !p.projection.plan.meetsDeadline);
    return { projections, missed };
  } finally {
    await admin.close();
  }
}

/** `16:20Z` today, `12-07 16:20Z` another day (UTC, as the logs). */
export function clockText(ms: number, nowMs = Date.now()): string {
  const iso = new Date(ms).toISOString();
  const sameDay = iso.slice(0, 10) === new Date(nowMs).toISOString().slice(0, 10);
  return `${sameDay ? '' : `${iso.slice(5, 10)} `}${iso.slice(11, 16)}Z`;
}

/** `5 m 00 s before` / `12 m 30 s after`: a projected finish against the deadline. */
export function slackText(finishMs: number, deadlineMs: number): string {
  const diff = deadlineMs - finishMs;
  return `${durationText(Math.abs(diff))} ${diff >= 0 ? 'before' : 'after'}`;
}

/** One line per account, then what happens for a deadline that cannot be met. */
export function projectionText(run: RunProjection, deadline: RunDeadline, nowMs = Date.now()): string[] {
  const head = `deadline ${clockText(deadline.atMs, nowMs)} (in ${durationText(deadline.atMs - nowMs)}), preference ${deadline.preference}`;
  const lines = [head];
  for (const { account, projection: p } of run.projections) {
    if (!p) {
      lines.push(`  ${account}: projected finish unknown: no worker has described ${account} yet`);
      continue;
    }
    const jobs = `${p.jobs} job(s) (${p.backlog} waiting + ${p.jobs - p.backlog} of this run)`;
    if (!p.plan || !p.capacity) {
      lines.push(`  ${account}: ${jobs}: projected finish unknown: no rate known for ${account} yet`);
      continue;
    }
    const plan = p.plan;
    const rate = `${p.capacity.rps.toFixed(1)}/s (${p.capacity.source})`;
    const finish = `projected finish ${clockText(plan.projectedFinishMs, nowMs)}, ${slackText(plan.projectedFinishMs, p.deadlineMs)} the deadline`;
    if (!plan.meetsDeadline) {
      const batch =
        p.batchProviders.length > 0
          ? `a batch (${p.batchProviders.join(', ')}) cannot make it sooner`
          : 'no batch route';
      lines.push(
        `  ${account}: deadline cannot be met: ${jobs} at ${rate} in real time, ${finish}; ${batch}`,
      );
      continue;
    }
    lines.push(`  ${account}: ${jobs} at ${rate}: ${finish}; ${routeText(p)}`);
  }
  if (run.missed)
    lines.push(
      deadline.strict
        ? '--deadline-strict: nothing enqueued'
        : 'enqueueing anyway: every job runs in real time, as fast as it can',
    );
  return lines;
}

/** How the planner would route the jobs: all real time (and why) or part to a batch. */
function routeText(p: DeadlineProjection): string {
  const plan = p.plan;
  if (!plan) return '';
  if (plan.reason !== 'batch') {
    const why: Record<string, string> = {
      'no-deadline': '',
      speed: ' (preference speed)',
      'no-batch-route': ' (no batch route: it takes chat completions and a provider key with a batch API)',
      'batch-not-cheaper': ' (a batch is not cheaper)',
      'deadline-unreachable': ' (too close to the deadline for a batch to come back)',
      'no-room-for-batch': ' (no time for a batch to come back and still hedge)',
    };
    return `all real time${why[plan.reason] ?? ''}`;
  }
  const batched = plan.batches.reduce((n, b) => n + b.jobs, 0);
  const saved = plan.costAllRealtimeUsd - plan.plannedCostUsd;
  const money_ = p.pricesKnown ? `, about ${money(saved)} saved of ${money(plan.costAllRealtimeUsd)}` : '';
  return `${batched} to a batch (${p.batchProviders.join(', ')}), ${plan.realtimeJobs} real time${money_}`;
}
