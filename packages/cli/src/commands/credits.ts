import { parseCommand, UsageError } from '../usage.js';
import { readOnlyAdmin } from './read-only-config.js';
import { money, table } from './shared-config.js';

export const CREDITS_HELP = `Usage: hfq credits status          — credits state and spend per account (and organisation)
hfq credits reset <account> — after buying credits or fixing a token: reopen the router and resume a held queue
hfq credits reset <account> --key <provider> — after topping up or fixing one provider key: reopen only that key's gate`;

export async function runCredits(env: NodeJS.ProcessEnv, args: string[]): Promise<void> {
  const { positionals, values } = parseCommand(args, { key: { type: 'string' } }, CREDITS_HELP, [
    'status|reset',
    'account',
  ]);
  const [sub, account] = positionals;
  if (sub !== undefined && sub !== 'status' && sub !== 'reset')
    throw new UsageError(`unknown subcommand "${sub}"`, CREDITS_HELP);
  if (sub === 'reset' && !account) throw new UsageError('missing <account>', CREDITS_HELP);
  if (sub !== 'reset' && account !== undefined)
    throw new UsageError(`unexpected argument "${account}"`, CREDITS_HELP);
  if (values.key !== undefined && sub !== 'reset')
    throw new UsageError('--key goes with reset', CREDITS_HELP);
  if (values.key !== undefined && !values.key.trim())
    throw new UsageError('--key needs a provider name', CREDITS_HELP);
  // Both read what workers published (scope, provider keys' gates): only REDIS_URL is needed.
  const admin = readOnlyAdmin(env);
  try {
    if (sub === 'reset') {
      if (!account) throw new UsageError('missing <account>', CREDITS_HELP);
      const reset = values.key ? admin.resetKeyCredits(account, values.key) : admin.resetCredits(account);
      const { scope, resumed } = await reset.catch((err: Error) => {
        if (err.name === 'UnknownAccountError') throw new UsageError(err.message, CREDITS_HELP);
        throw err;
      });
      const what = values.key ? `${account}'s ${values.key} key (${scope})` : scope;
      console.log(`credits reset for ${what}${resumed ? '; held queue resumed' : ''}`);
      return;
    }
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
