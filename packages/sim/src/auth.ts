/** Who is calling: the bearer token, its policy, and the name it goes by in stats. */
import type { SimConfig, TokenConfig } from './config.js';
import { secretId } from './hash.js';
import type { AuthorizationKind } from './recorder.js';

export interface Caller {
  /** The raw token; kept in memory only, never recorded. */
  token: string | null;
  /** Short hash of the token, or `anonymous`: keys limiter, credit and script state. */
  id: string;
  label: string;
  kind: AuthorizationKind;
  /** Set with `setToken` (or in `tokens`). */
  known: boolean;
  /** The token's config, or `defaultToken` for an unknown token. */
  policy: TokenConfig;
}

export function identify(authorization: string | undefined, config: SimConfig): Caller {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
  const token = match?.[1] ?? null;
  if (token === null) {
    return { token, id: 'anonymous', label: 'anonymous', kind: 'none', known: false, policy: {} };
  }
  const id = secretId(token);
  const known = config.tokens[token];
  return {
    token,
    id,
    label: known?.label ?? `token-${id}`,
    kind: token.startsWith('hf_') ? 'hf' : 'provider-key',
    known: known !== undefined,
    policy: known ?? config.defaultToken,
  };
}

/** The token exists for the simulator: set and not revoked, or unknown while unknown tokens are allowed. */
export function isAccepted(caller: Caller, config: SimConfig): boolean {
  if (caller.token === null || caller.policy.revoked) return false;
  return caller.known || config.unknownTokens === 'allow';
}
