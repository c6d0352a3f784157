import type { RedisClient } from './redis-cluster.js';
import { luaScript } from './redis-script.js';
import { creditGateKey, creditProbeKey, spendLedgerKey } from './state-keys.js';

const CLOSE_GATE = luaScript('close-credit-gate');
const TAKE_PROBE = luaScript('take-credit-probe');
const RELEASE_PROBE = luaScript('release-credit-probe');
const ADD_SPEND = luaScript('add-spend');

/** How often a closed credit gate (the router's, or a provider key's) is probed with one real request, all workers together. @defaultValue 10 minutes */
export const DEFAULT_CREDIT_PROBE_MS = 10 * 60_000;
/** An exhausted gate outlives its reset by this much, so a late reset is still seen as one. */
const GATE_GRACE_MS = 86_400_000;
/**
 * A held gate (revoked token) has no natural end: it lives this long after its last write, then
 * the next request finds out again (a 401 holds it anew). Longer than any exhausted gate.
 */
export const HELD_GATE_TTL_MS = 35 * 86_400_000;
/** The spend ledger of a month lives two months after its last write (within a minute, see below). */
export const LEDGER_TTL_MS = 62 * 86_400_000;
/** A process refreshes a ledger's TTL at most this often (a new ledger gets its TTL at once: add-spend.lua). */
const LEDGER_TTL_REFRESH_MS = 60_000;

/**
 * Credit state and spend, kept in Redis and shared by every worker (see docs/architecture.md, "What a 402 does").
 * A scope is an account, or an organisation when the account bills one (`billTo`): every
 * account billing the same organisation shares one gate and one ledger.
 */

export type CreditScope = string;

export function creditScope(account: { id: string; billTo?: string | undefined }): CreditScope {
  return account.billTo ? `org:${account.billTo}` : `account:${account.id}`;
}

/** A provider key's own credit scope: the key refused (402/401) closes only its gate. */
export function keyScope(domainId: string): CreditScope {
  return `key:${domainId}`;
}

/** First instant of the next month, UTC: when Hugging Face resets monthly credits. */
export function nextMonthlyReset(nowMs: number): number {
  const now = new Date(nowMs);
  return Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1);
}

/** `2026-11`: the ledger's month, UTC. */
export function ledgerMonth(nowMs: number): string {
  const now = new Date(nowMs);
  return `${now.getUTCFullYear()}-${String(now.getUTCMonth() + 1).padStart(2, '0')}`;
}

export type GateStatus =
  | { state: 'ok' }
  | {
      state: 'exhausted';
      reason: string;
      untilMs: number;
      sinceMs: number;
      /** When the router is next probed with one real request (all workers together). */
      nextProbeAtMs: number;
    }
  | { state: 'held'; reason: string; sinceMs: number };

export interface SpendByRoute {
  month: string;
  hfRouterUsd: number;
  providerKeyUsd: number;
  hfRouterRequests: number;
  providerKeyRequests: number;
  /** When this month's router spend passed the tier's included credits (pay-as-you-go began), if it did. */
  payAsYouGoSinceMs: number | undefined;
  /** Jobs answered from the result ledger this month, and what their requests cost when paid (saved). */
  reusedRequests: number;
  reusedUsd: number;
  /** Lines answered by a provider's batch API this month (README, "Deadlines and the batch route"), and their cost. */
  providerBatchRequests?: number;
  providerBatchUsd?: number;
}

/** Ledger field names (the budget check in acquire-permit.lua compares one of them). */
export const LEDGER_FIELDS = {
  hfRouterUsd: 'usd:hf-router',
  providerKeyUsd: 'usd:provider-key',
  hfRouterRequests: 'requests:hf-router',
  providerKeyRequests: 'requests:provider-key',
  payAsYouGoSince: 'payg:since',
  reusedRequests: 'requests:reused',
  reusedUsd: 'usd:reused',
  providerBatchRequests: 'requests:provider-batch',
  providerBatchUsd: 'usd:provider-batch',
} as const;

export interface CreditStateOptions {
  /** Interval between probes while a credit gate (router or provider key) is closed, ms. @defaultValue 600000 */
  probeIntervalMs?: number;
}

export class CreditState {
  readonly probeIntervalMs: number;
  /** When this process last refreshed each ledger's TTL (performance.now()). */
  private readonly ledgerTtlRefreshedAt = new Map<string, number>();

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    options: CreditStateOptions = {},
  ) {
    this.probeIntervalMs = options.probeIntervalMs ?? DEFAULT_CREDIT_PROBE_MS;
  }

  gateKey(scope: CreditScope): string {
    return creditGateKey(this.prefix, scope);
  }

  /** A gate key that is never written: the router probe's permit checks it and finds it open. */
  probeGateKey(scope: CreditScope): string {
    return creditProbeKey(this.prefix, scope);
  }

  ledgerKey(scope: CreditScope, nowMs: number): string {
    return spendLedgerKey(this.prefix, scope, ledgerMonth(nowMs));
  }

  /**
   * Credits are gone until the next monthly reset, an operator's reset or a successful probe.
   * True when this closed an open gate: each exhaustion is reported once, every month.
   */
  async markExhausted(scope: CreditScope, reason: string, nowMs: number): Promise<boolean> {
    const until = nextMonthlyReset(nowMs);
    const closed = await CLOSE_GATE.run<number>(
      this.redis,
      [this.gateKey(scope)],
      [nowMs, until, reason.slice(0, 300), this.probeIntervalMs, until - nowMs + GATE_GRACE_MS],
    );
    return closed === 1;
  }

  /**
   * Claim the probe (router or provider key) of a closed gate, when one is due: one real request every
   * `probeIntervalMs`, all workers together. True when the caller is to send it.
   */
  async takeProbe(scope: CreditScope, nowMs: number): Promise<boolean> {
    return (
      (await TAKE_PROBE.run<number>(this.redis, [this.gateKey(scope)], [nowMs, this.probeIntervalMs])) === 1
    );
  }

  /**
   * A claimed probe that sent nothing (its permit had to wait): the next caller may take it at
   * once. A gate reset meanwhile (`hfq credits reset`) stays gone: never a gate key without TTL.
   */
  async releaseProbe(scope: CreditScope): Promise<void> {
    await RELEASE_PROBE.run(this.redis, [this.gateKey(scope)]);
  }

  /** A probe got through: the credits are back. Opens the exhausted gate; a hold stays. */
  async reopen(scope: CreditScope): Promise<void> {
    await this.redis.hdel(this.gateKey(scope), 'exhaustedUntil', 'reason', 'sinceMs', 'nextProbeAt');
  }

  /** The router refused the credential itself (revoked token, refused billTo): held until an operator resets it. */
  async hold(scope: CreditScope, reason: string, nowMs: number): Promise<void> {
    await this.redis
      .multi()
      .hset(this.gateKey(scope), 'heldReason', reason.slice(0, 300), 'heldSinceMs', String(nowMs))
      .pexpire(this.gateKey(scope), HELD_GATE_TTL_MS)
      .exec();
  }

  /** Operator's reset, after buying credits or fixing the token: the gate opens at once. */
  async reset(scope: CreditScope): Promise<void> {
    await this.redis.del(this.gateKey(scope));
  }

  async status(scope: CreditScope, nowMs: number): Promise<GateStatus> {
    const [until, reason, held, since, heldSince, nextProbe] = await this.redis.hmget(
      this.gateKey(scope),
      'exhaustedUntil',
      'reason',
      'heldReason',
      'sinceMs',
      'heldSinceMs',
      'nextProbeAt',
    );
    if (held) return { state: 'held', reason: held, sinceMs: Number(heldSince ?? since ?? 0) };
    if (until && Number(until) > nowMs) {
      return {
        state: 'exhausted',
        reason: reason ?? 'credits exhausted',
        untilMs: Number(until),
        sinceMs: Number(since ?? 0),
        nextProbeAtMs: Number(nextProbe ?? 0),
      };
    }
    return { state: 'ok' };
  }

  /**
   * Add estimated spend (batched by the caller: one call per flush, not per job) to the ledger of
   * the month of `atMs`, the requests' own time. With `includedUsd` (the tier's included
   * credits), the first write that takes the router's spend to it notes when pay-as-you-go began.
   */
  async addSpend(
    scope: CreditScope,
    atMs: number,
    entries: Record<string, number>,
    includedUsd?: number,
  ): Promise<void> {
    const key = this.ledgerKey(scope, atMs);
    const fields = Object.entries(entries).filter(([, amount]) => amount !== 0);
    if (fields.length === 0) return;
    const now = performance.now();
    const last = this.ledgerTtlRefreshedAt.get(key);
    const refresh = last === undefined || now - last >= LEDGER_TTL_REFRESH_MS;
    // A refused write (Redis full) rejects, so the caller keeps the amounts; a script's first
    // write refused writes nothing.
    const values = await ADD_SPEND.run<string[]>(
      this.redis,
      [key],
      [refresh ? '1' : '0', LEDGER_TTL_MS, ...fields.flat()],
    );
    if (refresh) {
      // Keyed by ledger, one per scope and month: old months' entries are dropped with the map's growth.
      if (this.ledgerTtlRefreshedAt.size > 1_000) this.ledgerTtlRefreshedAt.clear();
      this.ledgerTtlRefreshedAt.set(key, now);
    }
    const router = fields.findIndex(([field]) => field === LEDGER_FIELDS.hfRouterUsd);
    if (includedUsd !== undefined && router >= 0 && Number(values[router]) >= includedUsd) {
      // Best effort: the amounts are in; a lost note only loses the date shown in status.
      await this.redis.hsetnx(key, LEDGER_FIELDS.payAsYouGoSince, String(atMs)).catch(() => {});
    }
  }

  async spend(scope: CreditScope, nowMs: number): Promise<SpendByRoute> {
    const fields = await this.redis.hgetall(this.ledgerKey(scope, nowMs));
    const n = (name: string) => Number(fields[name] ?? 0);
    return {
      month: ledgerMonth(nowMs),
      hfRouterUsd: n(LEDGER_FIELDS.hfRouterUsd),
      providerKeyUsd: n(LEDGER_FIELDS.providerKeyUsd),
      hfRouterRequests: n(LEDGER_FIELDS.hfRouterRequests),
      providerKeyRequests: n(LEDGER_FIELDS.providerKeyRequests),
      payAsYouGoSinceMs:
        fields[LEDGER_FIELDS.payAsYouGoSince] === undefined ? undefined : n(LEDGER_FIELDS.payAsYouGoSince),
      reusedRequests: n(LEDGER_FIELDS.reusedRequests),
      reusedUsd: n(LEDGER_FIELDS.reusedUsd),
      providerBatchRequests: n(LEDGER_FIELDS.providerBatchRequests),
      providerBatchUsd: n(LEDGER_FIELDS.providerBatchUsd),
    };
  }
}
