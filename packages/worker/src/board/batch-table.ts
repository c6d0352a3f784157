import type { AccountStatus } from '../admin.js';
import { durationText } from '../cockpit/forecast.js';
import { escapeHtml, labelled, money } from './html-cells.js';

/**
 * An account's provider batches on the status page (README, "Deadlines and the batch route"):
 * provider and batch id, state, jobs, hedge time and deadline, and the estimated saving against
 * all real time. Nothing for an account without batches.
 */

const BATCH_COLUMNS = ['batch', 'provider', 'state', 'jobs', 'hedge', 'deadline'];

/** `16:20Z (in 25 m 00 s)`, in UTC as the logs. */
function whenCell(ms: number, nowMs: number): string {
  const at = `${new Date(ms).toISOString().slice(11, 16)}Z`;
  const rel = ms >= nowMs ? `in ${durationText(ms - nowMs)}` : `${durationText(nowMs - ms)} ago`;
  return `${escapeHtml(at)}<br><small>${escapeHtml(rel)}</small>`;
}

/** The planner's split per lane and model: one line each, above the batches. */
function planLines(s: AccountStatus, nowMs: number): string {
  return (s.batchPlans ?? [])
    .map((p) => {
      const split =
        p.batchedJobs > 0
          ? `${p.realtimeJobs} real time + ${p.batchedJobs} in ${p.batches} batch${p.batches === 1 ? '' : 'es'} (${p.provider})`
          : `${p.realtimeJobs} real time`;
      const finish = `${new Date(p.projectedFinishMs).toISOString().slice(11, 16)}Z`;
      const deadline = `${new Date(p.deadlineMs).toISOString().slice(11, 16)}Z`;
      const verdict = p.meetsDeadline ? '' : ', misses it';
      const rel = p.deadlineMs >= nowMs ? ` (in ${durationText(p.deadlineMs - nowMs)})` : '';
      return `<p class="forecast batch-plan" data-model="${escapeHtml(p.model)}">plan ${escapeHtml(p.model)}: ${escapeHtml(split)}; finish ${escapeHtml(finish)}, deadline ${escapeHtml(deadline + rel + verdict)}; ${escapeHtml(money(p.plannedCostUsd))} against ${escapeHtml(money(p.costAllRealtimeUsd))} all real time</p>`;
    })
    .join('\n');
}

export function batchesTable(s: AccountStatus, nowMs: number): string {
  const batches = s.batches ?? [];
  const plans = planLines(s, nowMs);
  if (batches.length === 0) return plans;
  const rows = batches
    .map((b) => {
      const cells = [
        `<th scope="row">${escapeHtml(b.id)}${b.batchId ? `<br><small>${escapeHtml(b.batchId)}</small>` : ''}</th>`,
        `<td>${escapeHtml(b.provider)}</td>`,
        `<td class="state">${escapeHtml(b.state)}</td>`,
        `<td class="num">${b.jobs}</td>`,
        `<td class="num hedge">${whenCell(b.hedgeAtMs, nowMs)}</td>`,
        `<td class="num deadline">${whenCell(b.deadlineMs, nowMs)}</td>`,
      ];
      return `<tr data-batch="${escapeHtml(b.id)}">${labelled(cells, BATCH_COLUMNS).join('')}</tr>`;
    })
    .join('\n');
  const saving =
    s.batchSavingUsd === undefined
      ? ''
      : `<p class="forecast batch-saving">batches save ≈ ${escapeHtml(money(s.batchSavingUsd))} against all real time (at this month's cost per request)</p>`;
  return `${plans}
<table class="batches" data-account="${escapeHtml(s.account)}">
<thead><tr>${BATCH_COLUMNS.map((c) => `<th>${c}</th>`).join('')}</tr></thead>
<tbody>
${rows}
</tbody>
</table>
${saving}`;
}
