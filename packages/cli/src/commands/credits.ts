import { readOnlyAdmin } from './read-only-config.js';
import { adminFor, money, operatorConfig, table } from './shared-config.js';

export const CREDITS_HELP = `hfq credits status          — credits state and spend per account (and organisation)
hfq credits reset <account> — after buying credits or fixing a token: reopen the router and resume a held queue`;

export async function runCredits(env: NodeJS.ProcessEnv, args: string[]): Promise<void> {
  const [sub, account] = args;
  // Reset needs the account's config (its provider keys' gates); status reads what workers published.
  const admin = sub === 'reset' ? adminFor(operatorConfig(env)) : readOnlyAdmin(env);
  try {
    if (sub === 'reset') {
      if (!account) throw new Error('usage: hfq credits reset <account>');
      const { scope, resumed } = await admin.resetCredits(account);
      console.log(`credits reset for ${scope}${resumed ? '; held queue resumed' : ''}`);
      return;
    }
    if (sub !== undefined && sub !== 'status')
      throw new Error(`unknown subcommand "${sub}"\n${CREDITS_HELP}`);
    const rows = [
      ['account', 'scope', 'credits', 'since', 'HF spend / budget', 'key spend / cap', 'requests HF / keys'],
    ];
    const statuses = await admin.status();
    for (const s of statuses) {
      const state =
        s.credits.state === 'ok'
          ? 'ok'
          : s.credits.state === 'exhausted'
            ? `exhausted until ${new Date(s.credits.untilMs).toISOString()}`
            : 'held';
      rows.push([
        s.account,
        s.scope,
        s.holdReason ? `${state} (queue held)` : state,
        s.credits.state === 'ok' ? '-' : new Date(s.credits.sinceMs).toISOString(),
        `${money(s.spend.hfRouterUsd)} / ${s.budgetUsd === undefined ? '-' : money(s.budgetUsd)}`,
        `${money(s.spend.providerKeyUsd)} / ${s.providerBudgetUsd === undefined ? 'none' : money(s.providerBudgetUsd)}`,
        `${s.spend.hfRouterRequests} / ${s.spend.providerKeyRequests}`,
      ]);
    }
    console.log(table(rows));
    for (const s of statuses) {
      if (s.credits.state !== 'ok') console.log(`\n${s.account}: ${s.credits.reason}`);
      if (s.holdReason) console.log(`${s.account} held: ${s.holdReason}`);
    }
  } finally {
    await admin.close();
  }
}
