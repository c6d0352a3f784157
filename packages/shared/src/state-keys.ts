import { hashTag, stateKey } from './queue-names.js';

/**
 * Names of hfq's own state keys, each tagged with the unit of state it belongs to (see
 * docs/redis-cluster.md, 'Key layout'): a rate-limit domain's keys with the domain, a credit
 * scope's gate and ledger with the scope's name, an account's hold with the account (the tag of
 * its queues). A script or `MULTI` only ever combines keys that one of these functions names with
 * the same unit.
 */

/** The part of `key` Redis Cluster hashes: between the first `{` and the next `}` if not empty, else the whole key. */
export function hashTagOf(key: string): string {
  const open = key.indexOf('{');
  if (open >= 0) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) return key.slice(open + 1, close);
  }
  return key;
}

/** `account:acme` → `account:{acme}`; `org:big` → `org:{big}`; `key:<domain>` → `key:{<domain>}`. */
export function taggedScope(scope: string): string {
  const colon = scope.indexOf(':');
  return colon < 0 ? hashTag(scope) : `${scope.slice(0, colon)}:${hashTag(scope.slice(colon + 1))}`;
}

/** The state hash of a rate-limit domain; its other keys (windows, 429 log, audit) extend it. */
export function domainStateKey(prefix: string, domainId: string): string {
  return stateKey(prefix, 'domain', hashTag(domainId));
}

/** The credit gate of a scope (account, organisation, or a provider key). */
export function creditGateKey(prefix: string, scope: string): string {
  return stateKey(prefix, 'credits', taggedScope(scope));
}

/** A gate key of a scope that is never written: the router probe's permit checks it and finds it open. */
export function creditProbeKey(prefix: string, scope: string): string {
  return stateKey(prefix, 'credits-probe', taggedScope(scope));
}

/** The spend ledger of a scope for one month (`2026-11`). */
export function spendLedgerKey(prefix: string, scope: string, month: string): string {
  return stateKey(prefix, 'spend', taggedScope(scope), month);
}

/**
 * An account's result ledger (see result-ledger.ts): the results hash; its order set and size
 * counter extend it. Same tag as the account's queues.
 */
export function resultLedgerKey(prefix: string, accountId: string): string {
  return stateKey(prefix, 'reuse', hashTag(accountId));
}

/**
 * Why a lane of an account is held (its queue paused), when it is: the router lane's is the key
 * of the layout before lanes; another lane's adds the lane id. Same tag as the account's queues.
 */
export function accountHoldKey(prefix: string, accountId: string, lane = 'router'): string {
  const key = stateKey(prefix, 'hold', hashTag(accountId));
  return lane === 'router' ? key : `${key}:${lane}`;
}

/**
 * An operator paused an account's queue (`hfq queue pause`): the value says when. Permanent by
 * design (README, "Permanent keys"): only `hfq queue resume` lifts it; while it is set no worker
 * resumes the queue (a hold whose cause cleared leaves it paused).
 */
export function operatorPauseKey(prefix: string, accountId: string): string {
  return stateKey(prefix, 'operator-pause', hashTag(accountId));
}
