import type { AccountStatus } from '../admin.js';

/**
 * hfq's own view beside Bull Board: what Bull Board cannot know (tier, configured and learned
 * rate, recent 429s, credits, route, spend). One small HTML page with no external assets, and
 * the same data as JSON.
 */

/** `GET /status.json`. */
export interface StatusReport {
  generatedAt: string;
  accounts: AccountStatus[];
}

/** Content-Security-Policy of the page: inline styles only, nothing loaded from anywhere. */
export const STATUS_PAGE_CSP =
  "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Estimates per request are fractions of a cent: show enough digits to see them. */
export function money(usd: number): string {
  if (usd === 0) return '$0';
  if (usd >= 1) return `$${usd.toFixed(2)}`;
  if (usd >= 0.01) return `$${usd.toFixed(4)}`;
  return `$${usd.toFixed(6)}`;
}

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

function duration(ms: number): string {
  if (ms <= 0) return '—';
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`;
}

function row(status: AccountStatus): string {
  const c = status.counts;
  const waiting = (c.waiting ?? 0) + (c.prioritized ?? 0) + (c.paused ?? 0);
  const configured = status.configuredRate;
  // No learned rate yet means no 429 has lowered it: the limiter runs at the configured rate.
  const learned = `${perSecond(status.learnedRate ?? configured.max, configured.durationMs)}/s`;
  const route = status.paused && status.route !== 'holding' ? `${status.route} (paused)` : status.route;
  const credits = creditsText(status);
  const creditsClass = status.credits.state === 'ok' ? 'ok' : 'bad';
  const spendHf = `${money(status.spend.hfRouterUsd)} of ${money(status.budgetUsd)}`;
  const spendKeys =
    status.providerBudgetUsd === undefined
      ? money(status.spend.providerKeyUsd)
      : `${money(status.spend.providerKeyUsd)} of ${money(status.providerBudgetUsd)}`;
  const cells = [
    `<th scope="row">${escapeHtml(status.account)}</th>`,
    `<td>${escapeHtml(status.tier)}</td>`,
    `<td class="num">${waiting}</td>`,
    `<td class="num">${c.active ?? 0}</td>`,
    `<td class="num">${c.delayed ?? 0}</td>`,
    `<td class="num">${c.completed ?? 0}</td>`,
    `<td class="num">${c.failed ?? 0}</td>`,
    `<td class="num">${perSecond(configured.max, configured.durationMs)}/s <small>(${configured.max} per ${configured.durationMs / 1000} s)</small></td>`,
    `<td class="num">${learned}</td>`,
    `<td class="num">${status.recent429s}</td>`,
    `<td class="num">${duration(status.pausedForMs)}</td>`,
    `<td class="${creditsClass}">${escapeHtml(credits)}</td>`,
    `<td>${escapeHtml(route)}</td>`,
    `<td class="num">${escapeHtml(spendHf)}</td>`,
    `<td class="num">${escapeHtml(spendKeys)}</td>`,
  ];
  const hold = status.holdReason
    ? `<tr class="hold"><td></td><td colspan="14">held: ${escapeHtml(status.holdReason)}</td></tr>`
    : '';
  return `<tr>${cells.join('')}</tr>${hold}`;
}

/** The HTML page. Refreshes itself every `refreshSeconds`. */
export function renderStatusPage(
  report: StatusReport,
  options: { boardPath: string; refreshSeconds?: number },
): string {
  const refresh = options.refreshSeconds ?? 10;
  const month = report.accounts[0]?.spend.month ?? '';
  const rows = report.accounts.map(row).join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="${refresh}">
<title>hfq status</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1d2430; background: #f6f7f9; }
  h1 { font-size: 20px; margin: 0 0 4px; }
  p.meta { color: #5b6472; margin: 0 0 16px; }
  a { color: #2456c8; }
  table { border-collapse: collapse; background: #fff; box-shadow: 0 1px 2px rgba(0,0,0,.08); }
  th, td { padding: 6px 10px; border-bottom: 1px solid #e3e6eb; text-align: left; white-space: nowrap; }
  thead th { background: #eef1f5; font-weight: 600; font-size: 12px; text-transform: uppercase; letter-spacing: .03em; white-space: normal; vertical-align: bottom; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; }
  td.ok { color: #17803d; }
  td.bad { color: #b42318; font-weight: 600; }
  tr.hold td { color: #b42318; white-space: normal; }
  small { color: #5b6472; }
</style>
</head>
<body>
<h1>hfq status</h1>
<p class="meta">Generated ${escapeHtml(report.generatedAt)} · spend for ${escapeHtml(month)} (UTC) · refreshes every ${refresh} s ·
<a href="${escapeHtml(options.boardPath)}">queues (Bull Board)</a> · <a href="status.json">status.json</a></p>
<table>
<thead><tr>
<th>account</th><th>tier</th><th>waiting</th><th>active</th><th>delayed</th><th>done</th><th>failed</th>
<th>configured rate</th><th>learned rate</th><th>429s (5 min)</th><th>paused for</th><th>credits</th><th>route</th>
<th>HF spend / budget</th><th>provider-key spend</th>
</tr></thead>
<tbody>
${rows || '<tr><td colspan="15">no accounts configured</td></tr>'}
</tbody>
</table>
</body>
</html>
`;
}
