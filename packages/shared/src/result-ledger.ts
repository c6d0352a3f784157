import type { RedisClient } from './redis-cluster.js';
import { luaScript } from './redis-script.js';
import { resultLedgerKey } from './state-keys.js';

const STORE = luaScript('store-reusable-result');
const READ = luaScript('read-reusable-result');

/** How long and how much an account's result ledger keeps (its `resultReuse` setting). */
export interface ResultReuseSettings {
  /** A stored result answers repeated work for this long after it was stored, ms. */
  ttlMs: number;
  /** Bytes of result JSON the ledger holds at most; the oldest results go first. */
  maxBytes: number;
}

/** What the ledger keeps of a completed job: enough to answer the same request again, and its price. */
export interface ReusableResult {
  output: unknown;
  provider: string;
  route: 'hf-router' | 'provider-key' | 'endpoint' | 'provider-batch';
  /** What the request cost when it was paid for: what each reuse saves. */
  costUsd: number;
}

/**
 * The per-account result ledger (see docs/architecture.md, 'Pay once'): completed results keyed by
 * content identity, under the account's hash tag, kept for a TTL and within a memory bound that
 * hfq enforces itself (oldest first, in the store script), never through maxmemory eviction.
 */
export class ResultLedger {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
  ) {}

  /** The ledger's keys for an account: results hash, order set, size counter (one slot). */
  keys(account: string): [string, string, string] {
    const base = resultLedgerKey(this.prefix, account);
    return [base, `${base}:order`, `${base}:size`];
  }

  /** The result stored for `contentId`, if it is younger than the TTL. */
  async read(
    account: string,
    contentId: string,
    settings: ResultReuseSettings,
  ): Promise<ReusableResult | undefined> {
    const [h, o] = this.keys(account);
    const raw = await READ.run<string | null>(this.redis, [h, o], [contentId, settings.ttlMs]);
    if (raw === null) return undefined;
    try {
      return JSON.parse(raw) as ReusableResult;
    } catch {
      return undefined;
    }
  }

  /**
   * Store a result; evicts expired and oldest results to stay within the bound. Returns how many
   * were evicted, or -1 when this result alone is larger than the bound (not stored).
   */
  async store(
    account: string,
    contentId: string,
    result: ReusableResult,
    settings: ResultReuseSettings,
  ): Promise<number> {
    const [h, o, s] = this.keys(account);
    const value = JSON.stringify(result);
    return STORE.run<number>(this.redis, [h, o, s], [contentId, value, settings.ttlMs, settings.maxBytes]);
  }

  /** Results held and their bytes (for status and tests). */
  async size(account: string): Promise<{ results: number; bytes: number }> {
    const [, o, s] = this.keys(account);
    const [results, bytes] = await Promise.all([this.redis.zcard(o), this.redis.get(s)]);
    return { results, bytes: Number(bytes ?? 0) };
  }
}
