import type { Redis } from 'ioredis';
import { stateKey } from './queue-names.js';

/**
 * Credit state and spend, kept in Redis and shared by every worker (decisions 6 and 7).
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
  | { state: 'exhausted'; reason: string; untilMs: number; sinceMs: number }
  | { state: 'held'; reason: string; sinceMs: number };

export interface SpendByRoute {
  month: string;
  hfRouterUsd: number;
  providerKeyUsd: number;
  hfRouterRequests: number;
  providerKeyRequests: number;
}

/** Ledger field names (the budget check in acquire-permit.lua compares one of them). */
export const LEDGER_FIELDS = {
  hfRouterUsd: 'usd:hf-router',
  providerKeyUsd: 'usd:provider-key',
  hfRouterRequests: 'requests:hf-router',
  providerKeyRequests: 'requests:provider-key',
} as const;

export class CreditState {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  gateKey(scope: CreditScope): string {
    return stateKey(this.prefix, 'credits', scope);
  }

  ledgerKey(scope: CreditScope, nowMs: number): string {
    return stateKey(this.prefix, 'spend', scope, ledgerMonth(nowMs));
  }

  /** Credits are gone until the next monthly reset (or an operator's reset). Idempotent: the first mark wins. */
  async markExhausted(scope: CreditScope, reason: string, nowMs: number): Promise<boolean> {
    const key = this.gateKey(scope);
    const until = nextMonthlyReset(nowMs);
    const [[, created]] = (await this.redis
      .multi()
      .hsetnx(key, 'sinceMs', String(nowMs))
      .hset(key, 'exhaustedUntil', String(until), 'reason', reason.slice(0, 300))
      .exec()) as [[unknown, number]];
    return created === 1;
  }

  /** The account cannot use the router at all (revoked token, refused billTo) until an operator resets it. */
  async hold(scope: CreditScope, reason: string, nowMs: number): Promise<void> {
    await this.redis.hset(this.gateKey(scope), 'heldReason', reason.slice(0, 300), 'sinceMs', String(nowMs));
  }

  /** Operator's reset, after buying credits or fixing the token: the gate opens at once. */
  async reset(scope: CreditScope): Promise<void> {
    await this.redis.del(this.gateKey(scope));
  }

  async status(scope: CreditScope, nowMs: number): Promise<GateStatus> {
    const [until, reason, held, since] = await this.redis.hmget(
      this.gateKey(scope),
      'exhaustedUntil',
      'reason',
      'heldReason',
      'sinceMs',
    );
    if (held) return { state: 'held', reason: held, sinceMs: Number(since ?? 0) };
    if (until && Number(until) > nowMs) {
      return {
        state: 'exhausted',
        reason: reason ?? 'credits exhausted',
        untilMs: Number(until),
        sinceMs: Number(since ?? 0),
      };
    }
    return { state: 'ok' };
  }

  /** Add estimated spend (batched by the caller: one call per flush, not per job). */
  async addSpend(scope: CreditScope, nowMs: number, entries: Record<string, number>): Promise<void> {
    const key = this.ledgerKey(scope, nowMs);
    const multi = this.redis.multi();
    for (const [field, amount] of Object.entries(entries)) {
      if (amount !== 0) multi.hincrbyfloat(key, field, amount);
    }
    multi.pexpire(key, 62 * 86_400_000);
    await multi.exec();
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
    };
  }
}
