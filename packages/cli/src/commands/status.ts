import { adminFor, money, operatorConfig, table } from './shared-config.js';

export const STATUS_HELP = `hfq status [--json] — per-account queue counts, learned rate, credits and spend

Reads the same environment as "hfq worker" (REDIS_URL, HFQ_PREFIX, HFQ_ACCOUNTS_FILE or HFQ_ACCOUNT …).`;

export async function runStatus(env: NodeJS.ProcessEnv, args: string[]): Promise<void> {
  const config = operatorConfig(env);
  const admin = adminFor(config);
  try {
    const statuses = await admin.status();
    if (args.includes('--json')) {
      console.log(JSON.stringify(statuses, null, 2));
      return;
    }
    const rows = [
      [
        'account',
        'tier',
        'waiting',
        'active',
        'delayed',
        'done',
        'failed',
        'rate (learned/limit)',
        '429s 5m',
        'credits',
        'route',
        'spend HF / keys',
      ],
    ];
    for (const s of statuses) {
      const c = s.counts;
      const credits =
        s.credits.state === 'ok'
          ? 'ok'
          : s.credits.state === 'exhausted'
            ? `exhausted until ${new Date(s.credits.untilMs).toISOString().slice(0, 10)}`
            : `held: ${s.credits.reason.slice(0, 40)}`;
      rows.push([
        s.account,
        s.tier,
        String((c.waiting ?? 0) + (c.prioritized ?? 0)),
        String(c.active ?? 0),
        String(c.delayed ?? 0),
        String(c.completed ?? 0),
        String(c.failed ?? 0),
        `${s.learnedRate?.toFixed(1) ?? '-'}/${s.configuredRate.max} per ${s.configuredRate.durationMs / 1000}s`,
        String(s.recent429s),
        credits,
        s.paused ? `${s.route} (paused)` : s.route,
        `${money(s.spend.hfRouterUsd)} / ${money(s.spend.providerKeyUsd)}`,
      ]);
    }
    console.log(table(rows));
    for (const s of statuses) if (s.holdReason) console.log(`\n${s.account} is held: ${s.holdReason}`);
    for (const s of statuses) {
      for (const e of s.endpoints) {
        const cost = e.costUsd === undefined ? '' : ` · ${money(e.costUsd)} so far`;
        const why = e.availability === 'ok' ? '' : ` · ${e.availability}${e.reason ? `: ${e.reason}` : ''}`;
        console.log(
          `\n${s.account} endpoint ${e.name}: ${e.state} · ${e.inFlight}/${e.limit} in flight (configured ${e.concurrency})${cost}${why}`,
        );
      }
    }
  } finally {
    await admin.close();
  }
}
