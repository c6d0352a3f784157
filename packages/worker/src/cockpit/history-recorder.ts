import {
  type CreditState,
  creditScope,
  type DomainLimiter,
  primaryWindow,
  type RedisClient,
  TIER_TABLE,
} from '@hfq/shared/internal';
import type { AccountRuntime } from '../account-runtime.js';
import type { WorkerEvents } from '../worker-events.js';
import {
  COUNTERS,
  type CounterName,
  GAUGES,
  HISTORY_BUCKET_MS,
  HISTORY_TTL_SECONDS,
  historyField,
  historyKey,
  hourStart,
} from './history-keys.js';

/**
 * Writes the cockpit's history (see history-keys.ts): counts job outcomes and upstream answers
 * from the worker's events in memory, and once per flush adds them to Redis in one MULTI per
 * account and hour, with the gauges (learned and configured rate, backlog, spend) sampled once
 * per bucket. The hot path pays an in-memory increment.
 */
export interface HistoryRecorderOptions {
  redis: RedisClient;
  prefix: string;
  events: WorkerEvents;
  runtimes: ReadonlyMap<string, AccountRuntime>;
  limiter: DomainLimiter;
  credits: CreditState;
  now: () => number;
  /** @defaultValue 5000 */
  flushEveryMs?: number;
}

export class HistoryRecorder {
  /** account → field → count */
  private pending = new Map<string, Map<string, { hour: number; field: string; n: number }>>();
  private readonly sampledBucket = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();
  private readonly off: (() => void)[] = [];

  constructor(private readonly options: HistoryRecorderOptions) {
    const onJob = (e: { account: string; outcome: string }) => {
      if (e.outcome === 'completed') this.count(e.account, 'completed');
      else if (e.outcome === 'failed') this.count(e.account, 'failed');
    };
    const onUpstream = (e: { account: string; status: number }) =>
      this.count(
        e.account,
        e.status >= 200 && e.status < 300
          ? 'ok'
          : e.status === 429
            ? 'throttled'
            : e.status === 402
              ? 'credits'
              : 'error',
      );
    options.events.on('job', onJob);
    options.events.on('upstream', onUpstream);
    this.off.push(
      () => options.events.off('job', onJob),
      () => options.events.off('upstream', onUpstream),
    );
    this.timer = setInterval(() => void this.flush(), options.flushEveryMs ?? 5_000);
    this.timer.unref();
  }

  private count(account: string, name: CounterName): void {
    const nowMs = this.options.now();
    const field = historyField(nowMs, COUNTERS[name]);
    const hour = hourStart(nowMs);
    const perAccount = this.pending.get(account) ?? new Map();
    const id = `${hour}/${field}`;
    const entry = perAccount.get(id) ?? { hour, field, n: 0 };
    entry.n += 1;
    perAccount.set(id, entry);
    this.pending.set(account, perAccount);
  }

  /** Adds the pending counts and this bucket's gauges; Redis errors put the counts back. */
  flush(): Promise<void> {
    const batch = this.pending;
    this.pending = new Map();
    this.flushing = this.flushing.then(() => this.write(batch));
    return this.flushing;
  }

  private async write(batch: Map<string, Map<string, { hour: number; field: string; n: number }>>) {
    const { redis, prefix, runtimes } = this.options;
    const nowMs = this.options.now();
    const bucket = nowMs - (nowMs % HISTORY_BUCKET_MS);
    const accounts = new Set([...batch.keys(), ...runtimes.keys()]);
    await Promise.all(
      [...accounts].map(async (account) => {
        const counts = [...(batch.get(account)?.values() ?? [])];
        try {
          const gauges = this.sampledBucket.get(account) === bucket ? undefined : await this.sample(account);
          const byHour = new Map<number, typeof counts>();
          for (const c of counts) byHour.set(c.hour, [...(byHour.get(c.hour) ?? []), c]);
          if (gauges) byHour.set(hourStart(nowMs), byHour.get(hourStart(nowMs)) ?? []);
          for (const [hour, list] of byHour) {
            const key = historyKey(prefix, account, hour);
            const multi = redis.multi();
            for (const c of list) multi.hincrby(key, c.field, c.n);
            if (gauges && hour === hourStart(nowMs)) {
              const fields = Object.entries(gauges).flatMap(([code, v]) => [
                historyField(nowMs, code),
                String(v),
              ]);
              if (fields.length > 0) multi.hset(key, ...fields);
            }
            multi.expire(key, HISTORY_TTL_SECONDS);
            await multi.exec();
          }
          if (gauges) this.sampledBucket.set(account, bucket);
        } catch {
          // Redis away: keep the counts for the next flush rather than lose them.
          const perAccount = this.pending.get(account) ?? new Map();
          for (const c of counts) {
            const id = `${c.hour}/${c.field}`;
            const entry = perAccount.get(id) ?? { ...c, n: 0 };
            entry.n += c.n;
            perAccount.set(id, entry);
          }
          this.pending.set(account, perAccount);
        }
      }),
    );
  }

  /** The shared state's gauges of an account this process serves (none for other accounts). */
  private async sample(account: string): Promise<Record<string, number> | undefined> {
    const runtime = this.options.runtimes.get(account);
    if (!runtime) return undefined;
    const nowMs = this.options.now();
    const primary =
      primaryWindow(runtime.routes.routerDomain.windows) ?? TIER_TABLE[runtime.account.tier].inference;
    const [domain, counts, spend] = await Promise.all([
      this.options.limiter.state(runtime.routes.routerDomain.id),
      runtime.queue.getJobCounts('waiting', 'prioritized', 'delayed', 'active'),
      this.options.credits.spend(creditScope(runtime.account), nowMs),
    ]);
    const perSecond = 1000 / primary.durationMs;
    const inForce = domain.override ?? primary.max;
    const backlog = Object.values(counts).reduce((a, b) => a + b, 0);
    return {
      // The configured limit, and an override as a series of its own (the chart shows both).
      [GAUGES.configuredRate]: primary.max * perSecond,
      ...(domain.override !== undefined ? { [GAUGES.overrideRate]: domain.override * perSecond } : {}),
      [GAUGES.learnedRate]: (domain.rate ?? inForce) * perSecond,
      [GAUGES.backlog]: backlog,
      [GAUGES.spendHf]: spend.hfRouterUsd,
      [GAUGES.spendKeys]: spend.providerKeyUsd,
    };
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    for (const off of this.off.splice(0)) off();
    await this.flush();
  }
}
