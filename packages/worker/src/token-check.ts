import { type AccountConfig, ConfigError, type Logger, type UpstreamUrls } from '@hfq/shared';
import { maskUrlCredentials, scrubSecrets } from '@hfq/shared/internal';
import { rewriteUrl } from './upstream-fetch.js';

/**
 * A worker's start-up check of its upstream: which one it talks to (the simulator, Hugging Face, or
 * another URL), and each HF token once through the Hub's `whoami-v2`. A token the Hub refuses
 * stops start-up naming the account; a Hub that cannot be reached is a warning (the router may
 * still answer). See docs/architecture.md, "Configuration is checked at start".
 */

const WHOAMI_URL = 'https://huggingface.co/api/whoami-v2';
const CHECK_TIMEOUT_MS = 10_000;

export type UpstreamKind = 'huggingface' | 'simulator' | 'custom';

export interface UpstreamCheck {
  kind: UpstreamKind;
  routerUrl: string;
  hubUrl: string;
  providerUrls: Record<string, string>;
  /** Per account, the Hub's name for its token's owner. */
  users: Record<string, string>;
}

export interface TokenCheckOptions {
  accounts: readonly AccountConfig[];
  upstream: UpstreamUrls;
  logger: Logger;
  /** Where the variable naming the tokens is: `HF_TOKEN` or `HFQ_ACCOUNTS_FILE`. */
  tokenVariable: string;
  fetch?: typeof fetch;
}

/** Asks the Hub who each distinct token belongs to; logs the upstream and the users. */
export async function checkUpstreamAndTokens(options: TokenCheckOptions): Promise<UpstreamCheck> {
  const { accounts, upstream, logger } = options;
  const doFetch = options.fetch ?? fetch;
  const url = rewriteUrl(WHOAMI_URL, upstream);
  const byToken = new Map<string, string[]>();
  for (const account of accounts)
    byToken.set(account.hfToken, [...(byToken.get(account.hfToken) ?? []), account.id]);
  const known = accounts.map((a) => a.hfToken);
  let simulator = false;
  const users: Record<string, string> = {};
  for (const [token, ids] of byToken) {
    let res: Response;
    try {
      res = await doFetch(url, {
        headers: { authorization: `Bearer ${token}` },
        signal: AbortSignal.timeout(CHECK_TIMEOUT_MS),
      });
    } catch (err) {
      const cause = (err as Error & { cause?: Error }).cause?.message ?? (err as Error).message;
      logger.warn(
        { accounts: ids, url: maskUrlCredentials(url) },
        scrubSecrets(`could not check the HF token (${cause}); starting anyway`, known),
      );
      continue;
    }
    simulator ||= res.headers.get('x-hf-simulator') !== null;
    const body = await res.text();
    if (res.status === 401 || res.status === 403) {
      const message = /"error"\s*:\s*"([^"]*)"/.exec(body)?.[1] ?? `HTTP ${res.status}`;
      throw new ConfigError(
        options.tokenVariable,
        `the Hub refused the HF token of ${ids.length > 1 ? 'accounts' : 'account'} ${ids.join(', ')} (${res.status}: ${scrubSecrets(message, known)}); check the token at https://huggingface.co/settings/tokens`,
      );
    }
    if (!res.ok) {
      logger.warn(
        { accounts: ids, url: maskUrlCredentials(url), status: res.status },
        'could not check the HF token; starting anyway',
      );
      continue;
    }
    let name = '?';
    try {
      name = String((JSON.parse(body) as { name?: unknown }).name ?? '?');
    } catch {
      // A body that is not JSON: the token was accepted, the name is unknown.
    }
    for (const id of ids) users[id] = name;
  }
  // URLs as they may be logged: any user-info masked.
  const shown = (u: string) => maskUrlCredentials(u);
  const check: UpstreamCheck = {
    kind: simulator ? 'simulator' : upstream.routerUrl || upstream.hubUrl ? 'custom' : 'huggingface',
    routerUrl: shown(upstream.routerUrl ?? 'https://router.huggingface.co'),
    hubUrl: shown(upstream.hubUrl ?? 'https://huggingface.co'),
    providerUrls: Object.fromEntries(
      Object.entries(upstream.providerUrls ?? {}).map(([provider, u]) => [provider, shown(u)]),
    ),
    users,
  };
  const what =
    check.kind === 'simulator'
      ? `upstream: the simulator at ${check.routerUrl} (not Hugging Face)`
      : check.kind === 'custom'
        ? `upstream: ${check.routerUrl} (set by HF_ROUTER_URL / HF_HUB_URL, not Hugging Face's own)`
        : 'upstream: Hugging Face (https://router.huggingface.co)';
  logger.info(
    {
      upstream: check.kind,
      routerUrl: check.routerUrl,
      hubUrl: check.hubUrl,
      providerUrls: check.providerUrls,
      tokens: users,
    },
    what,
  );
  return check;
}
