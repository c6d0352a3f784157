import {
  CreditState,
  DomainLimiter,
  type GateStatus,
  keyScope,
  primaryWindow,
  type RedisClient,
} from '@hfq/shared/internal';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { AccountStatus, Admin } from '../admin.js';
import type { HfqWorker } from '../worker.js';
import type { WorkerEventMap } from '../worker-events.js';

/**
 * Prometheus metrics of one worker process, in a registry of its own. Counters and histograms
 * come from the worker's events (this process's share); gauges read the shared state in Redis
 * (learned rates, pauses, credits, spend, queue counts) on each scrape, at most once per
 * `refreshIntervalMs`, so every process reports the same cluster-wide values for them: aggregate
 * those with max(), not sum(). No label carries a secret: domains are hashes of credentials.
 */

export interface WorkerMetricsOptions {
  worker: HfqWorker;
  /** Reads per-account status (counts, rates, credits, spend); shared with nothing else. */
  admin: Admin;
  /** A connection for provider-key domains' state (their rates and gates are not in `Admin.status`). */
  redis: RedisClient;
  prefix: string;
  /** Shortest time between two reads of the shared state. @defaultValue 1000 */
  refreshIntervalMs?: number;
  /** Longest wait for the shared state on a scrape. @defaultValue 2000 */
  refreshTimeoutMs?: number;
  /** Collect Node process metrics (`hfq_process_*`, `hfq_nodejs_*`). @defaultValue true */
  processMetrics?: boolean;
}

const CREDIT_STATES: GateStatus['state'][] = ['ok', 'exhausted', 'held'];
const ROUTES: AccountStatus['route'][] = ['hf-router', 'provider-key', 'holding'];

export class WorkerMetrics {
  readonly registry = new Registry();
  private readonly limiter: DomainLimiter;
  private readonly credits: CreditState;
  private readonly unsubscribe: (() => void)[] = [];
  private refreshing: Promise<void> | undefined;
  private refreshedAt = 0;

  private readonly jobs = new Counter({
    name: 'hfq_jobs_total',
    help: 'Job runs ended in this process, by outcome (requeued: handed back with no attempt used)',
    labelNames: ['account', 'outcome'] as const,
    registers: [this.registry],
  });
  private readonly jobDuration = new Histogram({
    name: 'hfq_job_duration_seconds',
    help: 'Time from the start of a job run to its end, permit waits included',
    labelNames: ['account', 'outcome'] as const,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
    registers: [this.registry],
  });
  private readonly upstream = new Counter({
    name: 'hfq_upstream_requests_total',
    help: 'Upstream requests by HTTP status (0: connection error or timeout), route and provider',
    labelNames: ['account', 'route', 'provider', 'status'] as const,
    registers: [this.registry],
  });
  private readonly upstreamLatency = new Histogram({
    name: 'hfq_upstream_request_duration_seconds',
    help: 'Latency of successful upstream requests',
    labelNames: ['account', 'route', 'provider'] as const,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    registers: [this.registry],
  });
  private readonly upstream429s = new Counter({
    name: 'hfq_upstream_429_total',
    help: 'Upstream 429 answers (throttling or quota)',
    labelNames: ['account', 'route', 'provider'] as const,
    registers: [this.registry],
  });
  private readonly episodes = new Counter({
    name: 'hfq_congestion_episodes_total',
    help: 'Congestion episodes that lowered a domain learned rate',
    labelNames: ['account', 'route', 'domain'] as const,
    registers: [this.registry],
  });
  private readonly throttledSeconds = new Counter({
    name: 'hfq_throttled_seconds_total',
    help: 'Pauses set on a domain by the 429s this process received, in seconds',
    labelNames: ['account', 'route', 'domain'] as const,
    registers: [this.registry],
  });
  private readonly creditEvents = new Counter({
    name: 'hfq_credit_events_total',
    help: 'Credits exhausted, accounts held and provider keys refused, as this process found them',
    labelNames: ['account', 'event'] as const,
    registers: [this.registry],
  });
  private readonly refreshErrors = new Counter({
    name: 'hfq_metrics_refresh_errors_total',
    help: 'Failed reads of the shared state for the gauges (the gauges keep their last values)',
    registers: [this.registry],
  });
  private readonly configuredRate = this.gauge(
    'hfq_rate_configured_per_second',
    'Configured (or overridden) primary limit of a domain, requests per second',
    ['account', 'route', 'domain'],
  );
  private readonly learnedRate = this.gauge(
    'hfq_rate_learned_per_second',
    'Learned rate of a domain, requests per second (the configured limit until a 429 lowers it)',
    ['account', 'route', 'domain'],
  );
  private readonly pauseRemaining = this.gauge(
    'hfq_domain_pause_remaining_seconds',
    'Time left of a domain 429 pause',
    ['account', 'route', 'domain'],
  );
  private readonly recent429s = this.gauge(
    'hfq_domain_429s_5m',
    '429s recorded for a domain in the last 5 minutes, all processes',
    ['account', 'route', 'domain'],
  );
  private readonly creditsState = this.gauge(
    'hfq_credits_state',
    'Credit gate of an account (scope account:/org:) or provider key (scope key:<hash>): 1 for the current state',
    ['account', 'scope', 'state'],
  );
  private readonly held = this.gauge('hfq_account_held', '1 while hfq holds (pauses) the account queue', [
    'account',
  ]);
  private readonly routeInUse = this.gauge(
    'hfq_account_route',
    'Route the account uses now: 1 for the current one',
    ['account', 'route'],
  );
  private readonly spend = this.gauge(
    'hfq_estimated_spend_usd',
    'Estimated spend this month (UTC), by route',
    ['account', 'route'],
  );
  private readonly budget = this.gauge(
    'hfq_budget_usd',
    'Monthly budget by route (hf-router only when the user set one, provider-key only when capped)',
    ['account', 'route'],
  );
  private readonly includedCredits = this.gauge(
    'hfq_included_credits_usd',
    "The tier's included monthly HF credits (spend past them is pay-as-you-go)",
    ['account'],
  );
  private readonly reused = this.gauge(
    'hfq_reused_results',
    'Jobs answered from the result ledger this month (UTC), with no upstream request',
    ['account'],
  );
  private readonly reusedUsd = this.gauge(
    'hfq_reused_saved_usd',
    'Estimated cost of the requests the result ledger saved this month (UTC)',
    ['account'],
  );
  private readonly queueJobs = this.gauge('hfq_queue_jobs', 'Jobs in the account queue by state', [
    'account',
    'state',
  ]);
  private readonly laneJobs = this.gauge(
    'hfq_lane_jobs',
    'Jobs in each lane of the account (a queue per route) by state',
    ['account', 'lane', 'state'],
  );
  private readonly laneHeld = this.gauge('hfq_lane_held', '1 while hfq holds (pauses) the lane', [
    'account',
    'lane',
  ]);
  private readonly running = this.gauge(
    'hfq_worker_running',
    '1 while this process takes jobs for the account',
    ['account'],
  );

  private readonly orphaned = this.gauge(
    'hfq_queue_orphaned_active_jobs',
    'Active jobs whose worker is gone (no live worker holds their lock); re-delivered when the lock expires',
    ['account'],
  );
  private readonly liveWorkers = this.gauge(
    'hfq_live_workers',
    'Worker processes serving the account whose heartbeat is recent',
    ['account'],
  );
  private readonly throughput = this.gauge(
    'hfq_throughput_jobs_per_second',
    'Jobs completed per second over the last 5 minutes, all workers',
    ['account'],
  );
  private readonly eta = this.gauge(
    'hfq_backlog_eta_seconds',
    'Time to drain the backlog at the current throughput (-1: no throughput or no backlog)',
    ['account'],
  );

  constructor(private readonly options: WorkerMetricsOptions) {
    this.limiter = new DomainLimiter(options.redis, options.prefix);
    this.credits = new CreditState(options.redis, options.prefix);
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'hfq_' });
    this.subscribe();
  }

  private gauge(name: string, help: string, labelNames: string[]) {
    return new Gauge({ name, help, labelNames, registers: [this.registry] });
  }

  private subscribe(): void {
    const { events } = this.options.worker;
    const on = <K extends keyof WorkerEventMap>(name: K, listener: (...args: WorkerEventMap[K]) => void) => {
      events.on(name, listener as never);
      this.unsubscribe.push(() => events.off(name, listener as never));
    };
    on('job', (e) => {
      this.jobs.inc({ account: e.account, outcome: e.outcome });
      this.jobDuration.observe({ account: e.account, outcome: e.outcome }, e.durationMs / 1000);
    });
    on('upstream', (e) => {
      this.upstream.inc({
        account: e.account,
        route: e.route,
        provider: e.provider,
        status: String(e.status),
      });
      if (e.status >= 200 && e.status < 300) {
        this.upstreamLatency.observe(
          { account: e.account, route: e.route, provider: e.provider },
          e.latencyMs / 1000,
        );
      }
      if (e.status === 429)
        this.upstream429s.inc({ account: e.account, route: e.route, provider: e.provider });
    });
    on('throttle', (e) => {
      const labels = { account: e.account, route: e.route, domain: e.domain };
      this.throttledSeconds.inc(labels, e.pauseMs / 1000);
      if (e.newEpisode) this.episodes.inc(labels);
    });
    on('credits', (e) => this.creditEvents.inc({ account: e.account, event: e.event }));
  }

  /** The exposition text, gauges refreshed first (cheaply: see `refreshIntervalMs`). */
  async render(): Promise<{ contentType: string; body: string }> {
    await this.refresh();
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /** Reads the shared state into the gauges; concurrent scrapes share one read. */
  refresh(): Promise<void> {
    const interval = this.options.refreshIntervalMs ?? 1_000;
    if (this.refreshing) return this.refreshing;
    if (Date.now() - this.refreshedAt < interval) return Promise.resolve();
    const timeoutMs = this.options.refreshTimeoutMs ?? 2_000;
    let timer: NodeJS.Timeout | undefined;
    // A scrape never hangs on Redis: past the timeout the gauges keep their last values.
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('refresh timed out')), timeoutMs);
    });
    this.refreshing = Promise.race([this.readState(), timeout])
      .catch(() => this.refreshErrors.inc())
      .finally(() => clearTimeout(timer))
      .finally(() => {
        this.refreshedAt = Date.now();
        this.refreshing = undefined;
      });
    return this.refreshing;
  }

  private async readState(): Promise<void> {
    const { worker, admin } = this.options;
    for (const [id, runtime] of worker.runtimes)
      this.running.set({ account: id }, runtime.worker.isRunning() ? 1 : 0);
    const statuses = await admin.status();
    const now = Date.now();
    for (const s of statuses) {
      const runtime = worker.runtimes.get(s.account);
      const routerDomain = runtime?.routes.routerDomain.id ?? 'unknown';
      const router = { account: s.account, route: 'hf-router', domain: routerDomain };
      if (s.configuredRate) {
        const perSecond = 1000 / s.configuredRate.durationMs;
        this.configuredRate.set(router, s.configuredRate.max * perSecond);
        this.learnedRate.set(router, (s.learnedRate ?? s.configuredRate.max) * perSecond);
      }
      this.pauseRemaining.set(router, s.pausedForMs / 1000);
      this.recent429s.set(router, s.recent429s);
      this.setCredits(s.account, s.scope, s.credits.state);
      this.held.set({ account: s.account }, s.holdReason === undefined ? 0 : 1);
      for (const route of ROUTES)
        this.routeInUse.set({ account: s.account, route }, route === s.route ? 1 : 0);
      this.spend.set({ account: s.account, route: 'hf-router' }, s.spend.hfRouterUsd);
      this.spend.set({ account: s.account, route: 'provider-key' }, s.spend.providerKeyUsd);
      if (s.budgetUsd !== undefined) this.budget.set({ account: s.account, route: 'hf-router' }, s.budgetUsd);
      if (s.includedCreditsUsd !== undefined)
        this.includedCredits.set({ account: s.account }, s.includedCreditsUsd);
      this.reused.set({ account: s.account }, s.spend.reusedRequests);
      this.reusedUsd.set({ account: s.account }, s.spend.reusedUsd);
      this.orphaned.set({ account: s.account }, s.orphanedActive);
      this.liveWorkers.set({ account: s.account }, s.liveWorkers);
      this.throughput.set({ account: s.account }, s.forecast.throughputPerSecond);
      this.eta.set({ account: s.account }, s.forecast.etaMs === undefined ? -1 : s.forecast.etaMs / 1000);
      if (s.providerBudgetUsd !== undefined)
        this.budget.set({ account: s.account, route: 'provider-key' }, s.providerBudgetUsd);
      for (const [state, count] of Object.entries(s.counts))
        this.queueJobs.set({ account: s.account, state }, count);
      for (const lane of s.lanes) {
        this.laneHeld.set({ account: s.account, lane: lane.lane }, lane.holdReason === undefined ? 0 : 1);
        for (const [state, count] of Object.entries(lane.counts ?? {}))
          this.laneJobs.set({ account: s.account, lane: lane.lane, state }, count);
      }
    }
    // Every provider key's state at once: one pipelined round trip, not one per key.
    const providers = statuses.flatMap((s) =>
      (worker.runtimes.get(s.account)?.routes.providerDomains() ?? []).map((provider) => ({ s, provider })),
    );
    await Promise.all(
      providers.map(async ({ s, provider }) => {
        const labels = { account: s.account, route: 'provider-key', domain: provider.domain.id };
        const primary = primaryWindow(provider.domain.windows);
        const [state, gate] = await Promise.all([
          this.limiter.state(provider.domain.id),
          this.credits.status(keyScope(provider.domain.id), now),
        ]);
        if (primary) {
          const max = state.override ?? primary.max;
          this.configuredRate.set(labels, (max * 1000) / primary.durationMs);
          this.learnedRate.set(labels, ((state.rate ?? max) * 1000) / primary.durationMs);
        }
        this.pauseRemaining.set(labels, state.pausedForMs / 1000);
        this.recent429s.set(labels, state.recent429s);
        this.setCredits(s.account, keyScope(provider.domain.id), gate.state);
      }),
    );
  }

  private setCredits(account: string, scope: string, current: GateStatus['state']): void {
    for (const state of CREDIT_STATES)
      this.creditsState.set({ account, scope, state }, state === current ? 1 : 0);
  }

  /** Stops listening to the worker's events. */
  close(): void {
    for (const off of this.unsubscribe.splice(0)) off();
  }
}
