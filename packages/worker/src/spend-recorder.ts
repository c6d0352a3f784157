import type { Logger } from '@hfq/shared';
import { type CreditScope, type CreditState, LEDGER_FIELDS, ledgerMonth } from '@hfq/shared/internal';

export interface SpendRecorderOptions {
  /** After a failed write, try again this often, ms. @defaultValue 500 */
  retryMs?: number;
  /** `close()` keeps trying to write what is left this long before it gives up and logs it, ms. @defaultValue 15000 */
  closeTimeoutMs?: number;
  logger?: Logger;
  /** A scope's included monthly credits (its tier's), to note when pay-as-you-go began. @defaultValue none */
  includedUsd?: (scope: CreditScope) => number | undefined;
}

/** Amounts of one scope for one month, dated by the requests' own time (`atMs`: any instant of that month). */
interface Entry {
  scope: CreditScope;
  atMs: number;
  fields: Record<string, number>;
}

/**
 * Adds estimated spend to the monthly ledger in Redis as soon as a request completes, written
 * behind the job (the job never waits for it): one write in flight per process, and what
 * completes meanwhile goes in the next write, coalesced per scope. The ledger lags the upstream
 * by at most one write's round trip, which bounds the budget overshoot (see README, 'Budget
 * overshoot'). Amounts a write could not store (Redis away or full) stay here until a later write
 * stores them; `close()` keeps trying before it gives up, and then logs what was not written.
 * Each amount goes to the ledger of the month its request completed in, not the month of the
 * write: spend just before midnight on the last day stays in that month.
 */
export class SpendRecorder {
  /** Keyed by scope and month. */
  private pending = new Map<string, Entry>();
  private readonly timer: NodeJS.Timeout;
  private writing: Promise<void> | undefined;
  /** The amounts of the write in flight: still unwritten until it succeeds. */
  private inFlight = new Map<string, Entry>();
  private readonly retryMs: number;
  private readonly closeTimeoutMs: number;

  constructor(
    private readonly credits: CreditState,
    private readonly now: () => number,
    private readonly options: SpendRecorderOptions = {},
  ) {
    this.retryMs = options.retryMs ?? 500;
    this.closeTimeoutMs = options.closeTimeoutMs ?? 15_000;
    // Retries what a failed write left behind; a successful write needs no timer.
    this.timer = setInterval(() => void this.flush(), this.retryMs);
    this.timer.unref();
  }

  /** A request completed now (or at `atMs`), costing `usd` (estimated). */
  record(scope: CreditScope, route: 'hf-router' | 'provider-key', usd: number, atMs = this.now()): void {
    const usdField = route === 'hf-router' ? LEDGER_FIELDS.hfRouterUsd : LEDGER_FIELDS.providerKeyUsd;
    const countField =
      route === 'hf-router' ? LEDGER_FIELDS.hfRouterRequests : LEDGER_FIELDS.providerKeyRequests;
    this.add({ scope, atMs, fields: { [usdField]: usd, [countField]: 1 } });
    void this.flush();
  }

  /** A job answered by a provider batch's line, costing `usd` at the batch price (batch-route/batch-answer.ts). */
  recordBatchLine(scope: CreditScope, usd: number, atMs = this.now()): void {
    this.add({
      scope,
      atMs,
      fields: { [LEDGER_FIELDS.providerBatchUsd]: usd, [LEDGER_FIELDS.providerBatchRequests]: 1 },
    });
    void this.flush();
  }

  /** A job answered from the result ledger: no request, and `savedUsd` not spent (see result-reuse.ts). */
  recordReuse(scope: CreditScope, savedUsd: number, atMs = this.now()): void {
    this.add({
      scope,
      atMs,
      fields: { [LEDGER_FIELDS.reusedUsd]: savedUsd, [LEDGER_FIELDS.reusedRequests]: 1 },
    });
    void this.flush();
  }

  /** Spend recorded here and not yet in Redis, per scope (what a failed write left behind). */
  unwritten(): Map<CreditScope, Record<string, number>> {
    const all = new Map<CreditScope, Record<string, number>>();
    for (const source of [this.inFlight, this.pending]) {
      for (const { scope, fields } of source.values()) {
        const entry = all.get(scope) ?? {};
        for (const [k, v] of Object.entries(fields)) entry[k] = (entry[k] ?? 0) + v;
        all.set(scope, entry);
      }
    }
    return all;
  }

  /** Write what is pending; resolves when the write in flight (and this one) ended. Never rejects. */
  flush(): Promise<void> {
    if (this.writing) return this.writing.then(() => (this.pending.size ? this.flush() : undefined));
    if (this.pending.size === 0) return Promise.resolve();
    const batch = this.pending;
    this.pending = new Map();
    this.inFlight = batch;
    this.writing = (async () => {
      for (const [key, entry] of batch) {
        try {
          await this.credits.addSpend(
            entry.scope,
            entry.atMs,
            entry.fields,
            this.options.includedUsd?.(entry.scope),
          );
        } catch {
          // Redis away or full: keep the amounts for the next write rather than lose them.
          this.add(entry);
        }
        batch.delete(key);
      }
    })().finally(() => {
      this.writing = undefined;
    });
    return this.writing;
  }

  /** Write everything pending, retrying for up to `closeTimeoutMs`; then log what could not be written. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    const deadline = Date.now() + this.closeTimeoutMs;
    const until = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)).unref());
    for (;;) {
      // A write to an unreachable Redis waits for it to come back: never past the deadline.
      await Promise.race([this.flush(), until(deadline - Date.now())]);
      if (this.unwritten().size === 0) return;
      if (Date.now() >= deadline) break;
      await until(Math.min(this.retryMs, deadline - Date.now()));
    }
    this.options.logger?.error(
      { unwritten: Object.fromEntries(this.unwritten()) },
      'spend not written to the ledger before close: Redis refused it; add it by hand if it matters',
    );
  }

  private add({ scope, atMs, fields }: Entry): void {
    const key = `${scope}\n${ledgerMonth(atMs)}`;
    const entry = this.pending.get(key) ?? { scope, atMs, fields: {} };
    for (const [k, v] of Object.entries(fields)) entry.fields[k] = (entry.fields[k] ?? 0) + v;
    this.pending.set(key, entry);
  }
}
