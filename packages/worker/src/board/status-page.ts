import type { AccountStatus } from '../admin.js';
import { durationText } from '../cockpit/forecast.js';
import { spendNotes } from '../cockpit/spend-note.js';
import type { WorkerHeartbeatInfo } from '../cockpit/worker-heartbeat.js';
import { endpointAvailabilityText } from '../endpoints/endpoint-status-view.js';
import { noiseText } from '../noise-text.js';
import { batchesTable } from './batch-table.js';
import { ASSETS_PATH, FONTS_CSS } from './board-assets.js';
import { escapeHtml, labelled, money } from './html-cells.js';

/**
 * hfq's cockpit beside Bull Board: what Bull Board cannot know (tier, configured and learned
 * rate, 429s, credits, route, spend, Inference Endpoints), charts of the last hour, ETA and cost
 * to complete, and the live workers. Server-rendered HTML; the charts are drawn by a script and a
 * charting library that the board serves itself (nothing is loaded from anywhere else).
 */

/** `GET /status.json`. */
export interface StatusReport {
  generatedAt: string;
  readOnly: boolean;
  accounts: AccountStatus[];
  workers: (WorkerHeartbeatInfo & { live: boolean })[];
}

/** Content-Security-Policy of the page: its own scripts, styles, fonts and JSON only. */
export const STATUS_PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "font-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

function perSecond(max: number, durationMs: number): string {
  const rate = (max * 1000) / durationMs;
  return rate >= 10 ? rate.toFixed(0) : rate.toFixed(2);
}

/** ok / exhausted until … / holding: …, as the operator reads it. */
export function creditsText(status: AccountStatus): string {
  const credits = status.credits;
  if (credits.state === 'exhausted')
    return `exhausted until ${new Date(credits.untilMs).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
  if (credits.state === 'held') return `holding: ${credits.reason}`;
  return 'ok';
}

function pauseText(ms: number): string {
  if (ms <= 0) return '';
  return ` · paused ${ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`}`;
}

function etaCell(s: AccountStatus): string {
  const f = s.forecast;
  if (f.backlog === 0) return '<span class="dim">idle</span>';
  if (s.source === 'unconfigured' || s.liveWorkers === 0) return '<span class="bad">no worker</span>';
  if (s.holdReason || s.paused) return '<span class="bad">held</span>';
  if (f.etaMs === undefined) return '<span class="bad">stalled</span>';
  return `${escapeHtml(durationText(f.etaMs))}<br><small>${f.throughputPerSecond.toFixed(1)} jobs/s</small>`;
}

function row(s: AccountStatus): string {
  const c = s.counts;
  const waiting = (c.waiting ?? 0) + (c.prioritized ?? 0) + (c.paused ?? 0);
  const configured = s.configuredRate;
  const unconfigured = s.source === 'unconfigured';
  // No learned rate yet means no 429 has lowered it: the limiter runs at the configured rate.
  const rate = configured
    ? `${perSecond(s.learnedRate ?? configured.max, configured.durationMs)} / ${perSecond(configured.max, configured.durationMs)}`
    : '—';
  // An `hfq limit` in force is shown as what it is, with the limit it replaces and its end.
  const override = s.override
    ? `<br><small class="override">override of ${perSecond(s.override.configuredMax, configured?.durationMs ?? 1000)}${
        s.override.untilMs === undefined
          ? ', permanent'
          : ` until ${new Date(s.override.untilMs).toISOString().slice(11, 16)}Z`
      }</small>`
    : '';
  const route = s.paused && s.route !== 'holding' ? `${s.route} (paused)` : s.route;
  const creditsClass = s.credits.state === 'ok' ? 'ok' : 'bad';
  const spendHf =
    s.budgetUsd === undefined
      ? money(s.spend.hfRouterUsd)
      : `${money(s.spend.hfRouterUsd)} of ${money(s.budgetUsd)}`;
  const spendKeys =
    s.providerBudgetUsd === undefined
      ? money(s.spend.providerKeyUsd)
      : `${money(s.spend.providerKeyUsd)} of ${money(s.providerBudgetUsd)}`;
  const active =
    s.orphanedActive > 0
      ? `${c.active ?? 0}<br><small class="bad">${s.orphanedActive} orphaned</small>`
      : String(c.active ?? 0);
  const name = unconfigured
    ? `${escapeHtml(s.account)}<br><small class="bad">not configured</small>`
    : `<a href="#account-${escapeHtml(s.account)}">${escapeHtml(s.account)}</a><br><small>${escapeHtml(s.tier)}</small>`;
  const cells = [
    `<th scope="row">${name}</th>`,
    `<td class="num${s.liveWorkers === 0 ? ' bad' : ''}">${s.liveWorkers}</td>`,
    `<td class="num">${waiting}</td>`,
    `<td class="num">${active}</td>`,
    `<td class="num">${c.delayed ?? 0}</td>`,
    `<td class="num">${c.completed ?? 0}</td>`,
    `<td class="num">${c.failed ?? 0}</td>`,
    `<td class="num">${rate}${override}<br><small>${s.recent429s} × 429 in 5 min${escapeHtml(pauseText(s.pausedForMs))}</small><br><small>noise ${escapeHtml(noiseText(s.learnedNoise))}</small></td>`,
    unconfigured
      ? '<td class="dim">—</td>'
      : `<td><span class="${creditsClass}">${escapeHtml(creditsText(s))}</span><br><small>${escapeHtml(route)}</small></td>`,
    `<td class="num">${escapeHtml(spendHf)}<br><small>keys ${escapeHtml(spendKeys)}</small></td>`,
    `<td class="num eta">${etaCell(s)}</td>`,
  ];
  const hold = s.holdReason
    ? `<tr class="hold"><td></td><td colspan="10">held: ${escapeHtml(s.holdReason)}</td></tr>`
    : '';
  // A paused or failed endpoint changes where the account's jobs go: said on the account's row too.
  const endpoints = s.endpoints
    .filter((e) => e.availability === 'paused' || e.availability === 'failed')
    .map(
      (e) =>
        `<tr class="hold endpoint-note"><td></td><td colspan="10">endpoint ${escapeHtml(e.name)} ${escapeHtml(endpointAvailabilityText(e, s.routing))}${e.reason ? ` (${escapeHtml(e.reason)})` : ''}</td></tr>`,
    )
    .join('');
  return `<tr${unconfigured ? ' class="unconfigured"' : ''}>${labelled(cells, ACCOUNT_COLUMNS).join('')}</tr>${hold}${endpoints}`;
}

const ACCOUNT_COLUMNS = [
  'account',
  'live workers',
  'waiting',
  'active',
  'delayed',
  'done',
  'failed',
  'rate learned / configured (req/s)',
  'credits · route',
  'spend HF / budget · keys',
  'ETA',
];
const ENDPOINT_COLUMNS = [
  'endpoint',
  'state',
  'availability',
  'in flight / learned',
  'jobs for it',
  'cost so far',
  'last action',
];
const WORKER_COLUMNS = [
  'worker (host:pid:id)',
  'state',
  'accounts',
  'concurrency',
  'in flight',
  'version',
  'last heartbeat',
];

/** The ETA and cost line above an account's charts. */
function forecastLine(s: AccountStatus, nowMs: number): string {
  const f = s.forecast;
  const parts = [
    `backlog ${f.backlog} job${f.backlog === 1 ? '' : 's'}`,
    `${f.throughputPerSecond.toFixed(1)} jobs/s (last 30 s)`,
  ];
  const stopped =
    s.source === 'unconfigured' || s.liveWorkers === 0
      ? 'ETA: no worker serves this account'
      : s.holdReason || s.paused
        ? 'ETA: the queue is held'
        : undefined;
  if (f.backlog > 0)
    parts.push(
      stopped ?? (f.etaMs === undefined ? 'ETA: no throughput yet' : `ETA ${durationText(f.etaMs)}`),
    );
  if (f.backlogCostUsd !== undefined && f.backlog > 0)
    parts.push(`cost to complete ≈ ${money(f.backlogCostUsd)}`);
  if (s.budgetUsd !== undefined) parts.push(`HF credits left ≈ ${money(f.creditsLeftUsd)}`);
  parts.push(...spendNotes(s, money));
  const runsOut = f.creditsRunOutAtMs !== undefined && f.hfSpendPerHourUsd !== undefined && f.backlog > 0;
  if (runsOut && s.budgetUsd !== undefined)
    parts.push(
      `they run out in ${durationText((f.creditsRunOutAtMs ?? nowMs) - nowMs)} at ${money(f.hfSpendPerHourUsd ?? 0)}/h`,
    );
  else if (runsOut && f.creditsLeftUsd > 0)
    // No budget: the included credits end in pay-as-you-go, not in a stop.
    parts.push(
      `included credits used in ${durationText((f.creditsRunOutAtMs ?? nowMs) - nowMs)} at ${money(f.hfSpendPerHourUsd ?? 0)}/h, then pay-as-you-go`,
    );
  else if (s.budgetUsd !== undefined && s.route === 'hf-router' && f.backlog > 0)
    parts.push('not running out at this rate');
  return `<p class="forecast" data-account="${escapeHtml(s.account)}">${parts.map(escapeHtml).join(' · ')}</p>`;
}

/** Whether jobs may use the endpoint, and why not: what a person needs when its jobs wait or go elsewhere. */
function availabilityCell(e: AccountStatus['endpoints'][number], routing: AccountStatus['routing']): string {
  const text = escapeHtml(endpointAvailabilityText(e, routing));
  if (e.availability === 'ok') return `<span class="ok">${text}</span>`;
  const reason = e.reason ? `<br><small>${escapeHtml(e.reason)}</small>` : '';
  return `<span class="${e.availability === 'cold' ? 'dim' : 'bad'}">${text}</span>${reason}`;
}

/** An account's Inference Endpoints: state, availability, in flight against the limits, backlog, cost. */
function endpointsTable(s: AccountStatus): string {
  if (s.endpoints.length === 0) return '';
  const rows = s.endpoints
    .map((e) => {
      const learned =
        e.limit < e.concurrency
          ? `<br><small class="bad">learned ${e.limit} (${e.episodes} × 429)</small>`
          : '';
      const cells = [
        `<th scope="row">${escapeHtml(e.name)}</th>`,
        `<td class="state">${escapeHtml(e.state)}</td>`,
        `<td class="availability">${availabilityCell(e, s.routing)}</td>`,
        `<td class="num in-flight">${e.inFlight} / ${e.limit}<br><small>limit ${e.concurrency}</small>${learned}</td>`,
        `<td class="num backlog">${e.backlog ?? '—'}</td>`,
        `<td class="num cost">${e.costUsd === undefined ? '<span class="dim">no price</span>' : escapeHtml(money(e.costUsd))}</td>`,
        `<td class="last-action"><small>${escapeHtml(e.lastAction ?? '—')}</small></td>`,
      ];
      return `<tr data-endpoint="${escapeHtml(e.name)}">${labelled(cells, ENDPOINT_COLUMNS).join('')}</tr>`;
    })
    .join('\n');
  return `<table class="endpoints" data-account="${escapeHtml(s.account)}">
<thead><tr><th>endpoint</th><th>state</th><th>availability</th><th>in flight / learned</th><th>jobs for it</th><th>cost so far</th><th>last action</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>`;
}

function workersTable(workers: StatusReport['workers'], nowMs: number): string {
  const live = workers.filter((w) => w.live);
  const gone = workers.filter((w) => !w.live);
  const rows = workers
    .map(
      (w) =>
        `<tr class="${w.live ? 'live' : 'gone'}">${labelled(
          [
            `<td>${escapeHtml(w.id)}</td>`,
            `<td>${w.live ? '<span class="ok">live</span>' : '<span class="bad">gone</span>'}</td>`,
            `<td>${escapeHtml(w.accounts.join(', '))}</td>`,
            `<td class="num">${w.concurrency}</td>`,
            `<td class="num">${w.inFlight}</td>`,
            `<td>${escapeHtml(w.version)}</td>`,
            `<td class="num">${escapeHtml(durationText(nowMs - w.seenAtMs))} ago</td>`,
          ],
          WORKER_COLUMNS,
        ).join('')}</tr>`,
    )
    .join('\n');
  return `<h2 id="workers">Workers <small>${live.length} live${gone.length > 0 ? `, ${gone.length} gone` : ''}</small></h2>
<table class="workers">
<thead><tr><th>worker (host:pid:id)</th><th>state</th><th>accounts</th><th>concurrency</th><th>in flight</th><th>version</th><th>last heartbeat</th></tr></thead>
<tbody>
${rows || '<tr><td colspan="7" class="bad">no worker has published a heartbeat: nothing is processing these queues</td></tr>'}
</tbody>
</table>`;
}

function warnings(report: StatusReport): string {
  const items: string[] = [];
  for (const s of report.accounts) {
    if (s.source === 'unconfigured') {
      const jobs = Object.values(s.counts).reduce((a, b) => a + b, 0);
      items.push(
        `Queue <b>${escapeHtml(s.account)}</b> holds ${jobs} job${jobs === 1 ? '' : 's'} but no worker serves this account (a mistyped account?).`,
      );
    }
    if (s.orphanedActive > 0)
      items.push(
        `<b>${escapeHtml(s.account)}</b>: ${s.orphanedActive} active jobs whose worker is gone; they are re-delivered when their locks expire.`,
      );
  }
  if (!report.workers.some((w) => w.live)) items.push('No live worker.');
  return items.length > 0 ? `<ul class="warnings">${items.map((i) => `<li>${i}</li>`).join('')}</ul>` : '';
}

/** The HTML page. Refreshes itself every `refreshSeconds`. */
export function renderStatusPage(
  report: StatusReport,
  options: { boardPath: string; refreshSeconds?: number; hours?: number },
): string {
  const refresh = options.refreshSeconds ?? 10;
  const hours = options.hours ?? 1;
  const nowMs = Date.parse(report.generatedAt);
  const month = report.accounts[0]?.spend.month ?? '';
  const rows = report.accounts.map(row).join('\n');
  const sections = report.accounts
    .map(
      (s) => `<section class="account" id="account-${escapeHtml(s.account)}">
<h2>${escapeHtml(s.account)} <small>${escapeHtml(s.source === 'unconfigured' ? 'not configured' : `tier ${s.tier}`)}</small></h2>
${forecastLine(s, nowMs)}
${endpointsTable(s)}
${batchesTable(s, nowMs)}
${s.source === 'unconfigured' ? '' : `<div class="charts" data-account="${escapeHtml(s.account)}"></div>`}
</section>`,
    )
    .join('\n');
  const span = (h: number, label: string) =>
    h === hours ? `<b>${label}</b>` : `<a href="?hours=${h}">${label}</a>`;
  const banner = report.readOnly
    ? '<div class="banner" role="status">Read-only board: jobs and queues cannot be changed from here (HFQ_BOARD_READ_ONLY=true).</div>'
    : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="${refresh}">
<title>hfq status</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${FONTS_CSS}">
<link rel="stylesheet" href="${ASSETS_PATH}/uplot.css">
<style>
  * { box-sizing: border-box; }
  body { font: 13px/1.4 'IBM Plex Sans', system-ui, sans-serif; margin: 0 auto; padding: 16px 20px; max-width: 1280px; color: #1d2430; background: #f6f7f9; }
  h1 { font-size: 20px; margin: 0 0 4px; font-weight: 600; }
  h2 { font-size: 15px; margin: 20px 0 4px; font-weight: 600; }
  h2 small, p.meta, small, .dim { color: #5b6472; font-weight: 400; }
  p.meta { margin: 0 0 12px; }
  a { color: #2456c8; }
  .banner { background: #fff4e5; border: 1px solid #f5b971; color: #7a4100; padding: 6px 10px; margin: 0 0 12px; border-radius: 4px; font-weight: 500; }
  ul.warnings { background: #fdecea; border: 1px solid #f3b7b0; color: #8a1c12; margin: 0 0 12px; padding: 6px 10px 6px 28px; border-radius: 4px; }
  table { border-collapse: collapse; background: #fff; box-shadow: 0 1px 2px rgba(0,0,0,.08); width: 100%; }
  th, td { padding: 5px 8px; border-bottom: 1px solid #e3e6eb; text-align: left; vertical-align: top; }
  thead th { background: #eef1f5; font-weight: 600; font-size: 11px; text-transform: uppercase; letter-spacing: .03em; vertical-align: bottom; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
  td.eta { min-width: 90px; }
  .ok { color: #17803d; }
  .bad { color: #b42318; font-weight: 600; }
  tr.hold td, tr.unconfigured th { color: #b42318; }
  tr.gone td { color: #8a94a6; }
  p.forecast { margin: 0 0 6px; font-variant-numeric: tabular-nums; }
  table.endpoints, table.batches { margin: 0 0 8px; }
  .charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); gap: 8px; }
  .chart { background: #fff; box-shadow: 0 1px 2px rgba(0,0,0,.08); padding: 4px; min-width: 0; overflow: hidden; }
  .uplot .u-title { font-size: 12px; font-weight: 600; }
  .uplot .u-legend { font-size: 11px; }
  /* A phone (390 px): one block per table row, each cell under its column's name; nothing wider than the screen. */
  @media (max-width: 640px) {
    body { padding: 12px 10px; }
    table, tbody, tr, th, td { display: block; width: auto; }
    thead { display: none; }
    tr { border-bottom: 2px solid #e3e6eb; }
    th, td { border: 0; padding: 3px 8px; overflow-wrap: anywhere; }
    td.num { text-align: left; white-space: normal; }
    td[data-label]::before, th[data-label]::before { content: attr(data-label); display: block; color: #5b6472; font-size: 11px; font-weight: 400; text-transform: uppercase; letter-spacing: .03em; }
    td:empty { display: none; }
    .charts { grid-template-columns: minmax(0, 1fr); }
  }
</style>
</head>
<body>
<h1>hfq status</h1>
<p class="meta">Generated ${escapeHtml(report.generatedAt)} · spend for ${escapeHtml(month)} (UTC) · refreshes every ${refresh} s ·
<a href="${escapeHtml(options.boardPath)}">queues (Bull Board)</a> · <a href="#workers">workers</a> · <a href="status.json">status.json</a> ·
history ${span(1, '1 h')} ${span(6, '6 h')} ${span(24, '24 h')}</p>
${banner}
${warnings(report)}
<table class="accounts">
<thead><tr>
<th>account</th><th>live workers</th><th>waiting</th><th>active</th><th>delayed</th><th>done</th><th>failed</th>
<th>rate learned / configured (req/s)</th><th>credits · route</th><th>spend HF / budget · keys</th><th>ETA</th>
</tr></thead>
<tbody>
${rows || '<tr><td colspan="11">no account queues found under this prefix</td></tr>'}
</tbody>
</table>
${workersTable(report.workers, nowMs)}
${sections}
<script src="${ASSETS_PATH}/uplot.js"></script>
<script src="${ASSETS_PATH}/status-charts.js"></script>
</body>
</html>
`;
}
