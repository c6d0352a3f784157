import { type CreditScope, type CreditState, LEDGER_FIELDS } from '@hfq/shared';

/**
 * Adds estimated spend to the monthly ledger in Redis, batched: one write per scope per flush
 * instead of one per job, so the ledger costs the hot path nothing.
 */
export class SpendRecorder {
  private pending = new Map<CreditScope, Record<string, number>>();
  private readonly timer: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly credits: CreditState,
    private readonly now: () => number,
    flushEveryMs = 500,
  ) {
    this.timer = setInterval(() => void this.flush(), flushEveryMs);
    this.timer.unref();
  }

  record(scope: CreditScope, route: 'hf-router' | 'provider-key', usd: number): void {
    const entry = this.pending.get(scope) ?? {};
    const usdField = route === 'hf-router' ? LEDGER_FIELDS.hfRouterUsd : LEDGER_FIELDS.providerKeyUsd;
    const countField =
      route === 'hf-router' ? LEDGER_FIELDS.hfRouterRequests : LEDGER_FIELDS.providerKeyRequests;
    entry[usdField] = (entry[usdField] ?? 0) + usd;
    entry[countField] = (entry[countField] ?? 0) + 1;
    this.pending.set(scope, entry);
  }

  flush(): Promise<void> {
    const batch = this.pending;
    if (batch.size === 0) return this.flushing;
    this.pending = new Map();
    const nowMs = this.now();
    this.flushing = this.flushing.then(async () => {
      for (const [scope, fields] of batch) {
        try {
          await this.credits.addSpend(scope, nowMs, fields);
        } catch {
          // Redis away: put the amounts back for the next flush rather than lose them.
          const entry = this.pending.get(scope) ?? {};
          for (const [k, v] of Object.entries(fields)) entry[k] = (entry[k] ?? 0) + v;
          this.pending.set(scope, entry);
        }
      }
    });
    return this.flushing;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}
