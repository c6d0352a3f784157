/**
 * The batch route of one account, wired (see docs/architecture.md, "Deadlines and the batch
 * route"). One round, run by the account's supervisor under the account's watch lease (one
 * process at a time):
 *  1. resume: a record without a batch id (a crash, a refused call) is submitted again;
 *  2. watch: poll the submitted batches, cancel at hedge times, store a finished batch's answers
 *     for its jobs and release them (`batch-answer.ts` completes them from the answers);
 *  3. plan: the parked jobs (`parkingDelayMs`) no batch holds yet, per lane and model, through
 *     `planBatches`: the real-time share is released at once; for each planned batch the record
 *     is written, the jobs tied to it and parked until its hedge time, then the batch submitted.
 * A provider key's 401/402 on its batch API closes the key's gate as on its real-time route; its
 * batches are given up and their jobs released to real time.
 */
import { HfqError, type Job } from '@hfq/shared';
import {
  BATCH_ENDPOINT_BY_TASK,
  hashTag,
  JOB_DATA,
  type JobData,
  keyScope,
  primaryWindow,
  type RedisClient,
  stateKey,
} from '@hfq/shared/internal';
import type { Job as BullJob, Queue } from 'bullmq';
import type { AccountContext } from '../account-context.js';
import { estimateTokens, tokenPrice } from '../cost.js';
import { closeGate } from '../credit-gates.js';
import type { ProviderRoute } from '../route-selection.js';
import { batchApiTargetFor, ProviderBatchClient } from './batch-api-client.js';
import { BatchJobStore, type BatchStores } from './batch-job-store.js';
import { submitBatch } from './batch-lifecycle.js';
import { planBatches } from './batch-planner.js';
import { type BatchPlanSnapshot, batchPlansKey } from './batch-plans.js';
import { type BatchRecord, BatchRecordStore, batchRecordIndexKey } from './batch-record-store.js';
import { type BatchRequest, batchRequestFor, splitIntoFiles } from './batch-requests.js';
import {
  batchPriceShare,
  batchRouteEnabled,
  configuredTurnaroundMs,
  marginMs,
  minBatchJobs,
} from './batch-route-settings.js';
import { type FinishedBatch, watchRecord } from './batch-watch.js';
import { planningTurnaroundMs } from './planning-figures.js';

/** A parked job with less than this left of its planning window is left to real time (it may be starting). */
export const PLAN_SAFETY_MS = 3_000;
/** The account's watch lease; kept alive while a round runs, so it only matters after a crash. @defaultValue 10 s */
export const BATCH_LEASE_MS = 10_000;
/** Observed turnarounds kept per account. */
const TURNAROUNDS_KEPT = 50;
/** A plan shown to the operator is this fresh at most. */
const PLAN_TTL_MS = 60 * 60_000;
/** Jobs read or released per Redis round trip. */
const CHUNK = 500;

export interface BatchRouteRuntimeOptions {
  /** The account's processor context (the router lane's): routes, gates, limiter, prices. */
  ctx: AccountContext;
  redis: RedisClient;
  prefix: string;
  /** The account's running lanes' queues. */
  queues: () => Queue[];
  /** The records and answers the account's job runs read too. */
  stores: BatchStores;
  /** Time between rounds: a batch is cancelled in the last round before its hedge time. @defaultValue 0 */
  roundMs?: number;
  leaseMs?: number;
}

/** The stores of an account's batch route. */
export function batchStores(redis: RedisClient, prefix: string): BatchStores {
  return { records: new BatchRecordStore(redis, prefix), jobs: new BatchJobStore(redis, prefix) };
}

export function batchTurnaroundsKey(prefix: string, account: string): string {
  return stateKey(prefix, 'provider-batch-turnarounds', hashTag(account));
}

interface Parked {
  bullJob: BullJob;
  data: JobData;
  dueAt: number;
}

export class BatchRouteRuntime {
  readonly stores: BatchStores;
  private readonly clients = new Map<string, ProviderBatchClient>();

  constructor(private readonly options: BatchRouteRuntimeOptions) {
    this.stores = options.stores;
  }

  private get account(): string {
    return this.options.ctx.account.id;
  }

  /** One round (resume, watch, plan); does nothing while another process holds the account's lease. */
  async round(): Promise<void> {
    if (!batchRouteEnabled(this.options.ctx.account)) return;
    if (!(await this.mayHaveWork())) return;
    await this.stores.records.asWatcher(this.account, this.options.leaseMs ?? BATCH_LEASE_MS, async () => {
      const open = await this.stores.records.openRecords(this.account);
      for (const record of open.filter((r) => !r.batchId)) await this.resume(record);
      for (const record of open.filter((r) => r.batchId)) await this.watch(record);
      for (const queue of this.options.queues()) await this.plan(queue);
    });
  }

  /**
   * Whether a round may find anything: a record open (to resume or watch) or a delayed job in one of
   * the lanes (a parked job is delayed). One `EXISTS` of keys that share the account's hash tag, so
   * an account with no batch work costs one command per round, not the lease and the reads.
   */
  private async mayHaveWork(): Promise<boolean> {
    const { redis, prefix, queues } = this.options;
    const keys = [
      batchRecordIndexKey(prefix, this.account),
      ...queues().map((queue) => queue.toKey('delayed')),
    ];
    return (await redis.exists(...keys)) > 0;
  }

  /** The provider keys with a batch API, their gates open. */
  private async batchKeys(): Promise<ProviderRoute[]> {
    const { ctx } = this.options;
    const keys: ProviderRoute[] = [];
    for (const route of ctx.routes.providerDomains()) {
      if (!batchApiTargetFor(route.provider, ctx.upstream)) continue;
      const gate = await ctx.credits.status(keyScope(route.domain.id), ctx.now());
      if (gate.state === 'ok') keys.push(route);
    }
    return keys;
  }

  private clientOf(route: ProviderRoute): ProviderBatchClient | undefined {
    let client = this.clients.get(route.domain.id);
    if (!client) {
      const target = batchApiTargetFor(route.provider, this.options.ctx.upstream);
      if (!target) return undefined;
      client = new ProviderBatchClient(target, route.key, { timeoutMs: this.options.ctx.timeoutMs });
      this.clients.set(route.domain.id, client);
    }
    return client;
  }

  private routeOf(record: BatchRecord): ProviderRoute | undefined {
    return this.options.ctx.routes
      .providerDomains()
      .find((route) => route.provider === record.provider && route.domain.id === record.keyDomain);
  }

  /** A record not yet submitted: rebuild its requests from its jobs and submit (the record says how far it got). */
  private async resume(record: BatchRecord): Promise<void> {
    const route = this.routeOf(record);
    const found = await this.findJobs(record.jobIds);
    if (!route) {
      await this.keyUnknown(record);
      return;
    }
    if (found.some((job) => !job)) {
      // A job was removed: the record cannot be sent as planned.
      await this.giveUp(record, 'a job of the batch is gone');
      return;
    }
    const jobs = found as BullJob[];
    const requests: BatchRequest[] = [];
    for (const bullJob of jobs) {
      const job = (bullJob.data as JobData).job;
      requests.push(
        batchRequestFor(bullJob.id as string, job, await this.providerModelId(job, route.provider)),
      );
    }
    await this.submit(route, record, requests);
  }

  /** Tie the jobs to the record, then submit (or resume) the batch. */
  private async submit(
    route: ProviderRoute,
    record: Pick<BatchRecord, 'id' | 'deadlineMs' | 'hedgeAtMs'>,
    requests: BatchRequest[],
  ): Promise<void> {
    const { ctx } = this.options;
    const client = this.clientOf(route);
    if (!client) return;
    await this.stores.jobs.assign(
      this.account,
      record.id,
      requests.map((r) => r.jobId),
    );
    // (Its jobs were moved to the hedge time before the record was written: `parkUntilHedge`.)
    try {
      const submitted = await submitBatch(this.stores.records, client, {
        account: this.account,
        provider: route.provider,
        keyDomain: route.domain.id,
        deadlineMs: record.deadlineMs,
        hedgeAtMs: record.hedgeAtMs,
        requests,
      });
      ctx.logger.info(
        {
          account: this.account,
          provider: route.provider,
          record: submitted.id,
          jobs: requests.length,
          hedgeAtMs: submitted.hedgeAtMs,
        },
        'provider batch submitted',
      );
    } catch (error) {
      await this.refused(route, error, 'submit');
    }
  }

  private async watch(record: BatchRecord): Promise<void> {
    const route = this.routeOf(record);
    const options = {
      store: this.stores.records,
      account: this.account,
      // A hedge time that falls before the next round is kept in this one.
      nowMs: this.options.ctx.now() + (this.options.roundMs ?? 0),
      clientFor: () => (route ? this.clientOf(route) : undefined),
      deliver: (finished: FinishedBatch) => this.deliver(finished),
    };
    try {
      const watched = await watchRecord(options, record);
      // Cancelled now: a provider that stops at once is collected in the same round.
      if (watched.action === 'hedged') {
        const cancelling = await this.stores.records.get(this.account, record.id);
        if (cancelling) await watchRecord(options, cancelling);
      }
    } catch (error) {
      if (route && (await this.refused(route, error, 'poll'))) return;
    }
    if (!route) await this.keyUnknown(record);
  }

  /**
   * A record whose key this worker does not have (removed from its config, or a worker with
   * another config): left to a worker that has it until its hedge time, then given up so that its
   * jobs run in real time in time.
   */
  private async keyUnknown(record: BatchRecord): Promise<void> {
    if (this.options.ctx.now() < record.hedgeAtMs) return;
    await this.giveUp(record, 'its key is not configured here and its hedge time has come');
  }

  /** A finished batch: its answers stored for every job, the turnaround noted, the jobs released. */
  private async deliver({ record, view, results, unfinishedJobIds }: FinishedBatch): Promise<void> {
    const { redis, prefix, ctx } = this.options;
    await this.stores.jobs.storeAnswers(this.account, record.provider, record.jobIds, results.byJob);
    if (view.status === 'completed') {
      const key = batchTurnaroundsKey(prefix, this.account);
      await redis
        .multi()
        .lpush(key, String(ctx.now() - record.createdAtMs))
        .ltrim(key, 0, TURNAROUNDS_KEPT - 1)
        .pexpire(key, 7 * 86_400_000)
        .exec();
    }
    ctx.logger.info(
      {
        account: this.account,
        provider: record.provider,
        record: record.id,
        status: view.status,
        answered: results.byJob.size,
        unfinished: unfinishedJobIds.length,
      },
      'provider batch collected: its jobs are released',
    );
    await this.release(record.jobIds);
  }

  /**
   * A key's 401/403/402 on its batch API closes its gate (as on its real-time route) and gives up
   * its batches; true when `error` was one. Anything else is logged: the next round tries again.
   */
  private async refused(route: ProviderRoute, error: unknown, step: string): Promise<boolean> {
    const { ctx } = this.options;
    const hfq = error instanceof HfqError ? error : undefined;
    if (hfq && (hfq.retryClass === 'credits' || hfq.retryClass === 'hold')) {
      await closeGate(
        ctx,
        { route: 'provider-key', provider: route.provider },
        route.provider,
        route.domain,
        hfq,
        new Set(),
      );
      for (const record of await this.stores.records.openRecords(this.account)) {
        if (record.keyDomain === route.domain.id)
          await this.giveUp(record, `the key was refused (${hfq.code})`);
      }
      return true;
    }
    ctx.logger.warn(
      {
        account: this.account,
        provider: route.provider,
        step,
        err: hfq?.message ?? (error as Error)?.message,
      },
      'provider batch step failed; the next round tries again',
    );
    return false;
  }

  /**
   * Give a record up: its jobs run in real time. A batch the provider may still be running (its
   * key refused mid-batch) cannot be seen any more: its jobs are not held for it.
   */
  private async giveUp(record: BatchRecord, reason: string): Promise<void> {
    await this.stores.jobs.storeAnswers(this.account, record.provider, record.jobIds, new Map());
    await this.stores.records.update(this.account, record.id, { state: 'collected' });
    this.options.ctx.logger.warn(
      { account: this.account, provider: record.provider, record: record.id, reason },
      'provider batch given up: its jobs run in real time',
    );
    await this.release(record.jobIds);
  }

  /** Plan the parked jobs of one lane that no batch holds yet. */
  private async plan(queue: Queue): Promise<void> {
    const parked = await this.parked(queue);
    const groups = new Map<string, Parked[]>();
    for (const entry of parked) {
      const key = `${entry.data.job.task}\n${entry.data.job.model}`;
      groups.set(key, [...(groups.get(key) ?? []), entry]);
    }
    for (const group of groups.values()) await this.planGroup(queue, group);
  }

  private async planGroup(queue: Queue, group: Parked[]): Promise<void> {
    const { ctx, redis, prefix } = this.options;
    const { account } = ctx;
    group.sort((a, b) => a.dueAt - b.dueAt);
    const first = group[0] as Parked;
    const job = first.data.job;
    const nowMs = ctx.now();
    const deadlineMs = first.dueAt;
    const route = await this.batchKeyFor(job);
    const target = route ? batchApiTargetFor(route.provider, ctx.upstream) : undefined;
    const open = await this.stores.records.openRecords(account.id);
    const committed =
      open.reduce((sum, record) => sum + record.jobIds.length, 0) +
      (await queue.getWaitingCount()) +
      (await queue.getActiveCount());
    const observed = (await redis.lrange(batchTurnaroundsKey(prefix, account.id), 0, -1)).map(Number);
    const price = tokenPrice(ctx.prices, route?.provider ?? job.provider ?? 'auto', job.model);
    const realtimePrice = price ? (price.inputPerM + price.outputPerM) / 2 : 1;
    const plan = planBatches({
      nowMs,
      deadlineMs,
      preference: 'cost',
      marginMs: marginMs(account, deadlineMs - nowMs),
      backlog: { jobs: group.length, tokens: group.reduce((sum, p) => sum + estimateTokens(p.data.job), 0) },
      realtimeRps: await this.realtimeRps(),
      realtimePricePerMTokens: realtimePrice,
      batchPricePerMTokens: realtimePrice * batchPriceShare(account),
      batchTurnaroundMs: planningTurnaroundMs(observed, configuredTurnaroundMs(account)),
      batchLimits: target ? { maxRequests: target.limits.maxRequests } : undefined,
      committedJobs: committed,
      minBatchJobs: minBatchJobs(account),
    });
    const snapshot: BatchPlanSnapshot = {
      lane: queue.name,
      model: job.model,
      provider: route?.provider,
      atMs: nowMs,
      deadlineMs,
      plan,
    };
    const plansKey = batchPlansKey(prefix, account.id);
    await redis
      .multi()
      .hset(plansKey, `${queue.name}\n${job.model}`, JSON.stringify(snapshot))
      .pexpire(plansKey, PLAN_TTL_MS)
      .exec();
    // The deadline cannot be kept even in real time: said once per plan, and everything runs at once.
    const log = plan.meetsDeadline ? ctx.logger.info.bind(ctx.logger) : ctx.logger.warn.bind(ctx.logger);
    log(
      {
        account: account.id,
        model: job.model,
        projectedFinishMs: Math.round(plan.projectedFinishMs),
        deadlineMs,
        reason: plan.reason,
        realtime: plan.realtimeJobs,
        batched: group.length - plan.realtimeJobs,
        meetsDeadline: plan.meetsDeadline,
      },
      plan.meetsDeadline
        ? 'batch plan'
        : 'batch plan: the deadline cannot be met, everything runs in real time now',
    );
    // The earliest deadlines run in real time now; the rest go to the batches.
    await inChunks(group.slice(0, plan.realtimeJobs), (p) => p.bullJob.promote().catch(() => {}));
    if (!route || !target) return;
    let from = plan.realtimeJobs;
    for (const batch of plan.batches) {
      const members = group.slice(from, from + batch.jobs);
      from += batch.jobs;
      const modelId = await this.providerModelId(job, route.provider);
      const requests = members.map((p) => batchRequestFor(p.bullJob.id as string, p.data.job, modelId));
      for (const planned of splitIntoFiles(requests, target.limits)) {
        const ids = new Set(planned.map((r) => r.jobId));
        // Each job parked until the hedge time first: BullMQ moves only a job still delayed, so a
        // job whose window ran out meanwhile (waiting, or already running in real time) stays
        // out of the batch (pay once). A crash from here to the record leaves jobs parked with
        // no batch: at the hedge time they run in real time.
        const kept = await this.parkUntilHedge(
          members.filter((p) => ids.has(p.bullJob.id as string)),
          batch.hedgeAtMs,
        );
        const keptIds = new Set(kept.map((p) => p.bullJob.id as string));
        const file = planned.filter((r) => keptIds.has(r.jobId));
        if (file.length === 0) continue;
        // Then the record: a crash from here on resumes it (round step 1) with these same jobs.
        const record = await this.stores.records.open(account.id, {
          provider: route.provider,
          keyDomain: route.domain.id,
          endpoint: file[0]?.endpoint as string,
          jobIds: file.map((r) => r.jobId),
          deadlineMs: Math.min(...kept.map((p) => p.dueAt)),
          hedgeAtMs: batch.hedgeAtMs,
        });
        await this.submit(route, record, file);
      }
    }
  }

  /** Move each parked job's delay to the hedge time; the ones still delayed (moved), in order. */
  private async parkUntilHedge(members: readonly Parked[], hedgeAtMs: number): Promise<Parked[]> {
    const hedgeIn = Math.max(0, hedgeAtMs - this.options.ctx.now());
    const moved = new Set<Parked>();
    await inChunks(members, (p) =>
      p.bullJob.changeDelay(hedgeIn).then(
        () => moved.add(p),
        () => undefined,
      ),
    );
    return members.filter((p) => moved.has(p));
  }

  /** Parked jobs of `queue` with a deadline and preference `cost` that no batch holds, with time left to plan them. */
  private async parked(queue: Queue): Promise<Parked[]> {
    const ids = await queue.getRanges(['delayed'], 0, -1, true);
    const found: Parked[] = [];
    const nowMs = Date.now();
    for (let start = 0; start < ids.length; start += CHUNK) {
      const chunk = ids.slice(start, start + CHUNK);
      const records = await this.stores.jobs.recordsOf(this.account, chunk);
      const free = chunk.filter((_, index) => records[index] === undefined);
      const jobs = await Promise.all(free.map((id) => queue.getJob(id)));
      for (const bullJob of jobs) {
        if (!bullJob) continue;
        const read = JOB_DATA.safeParse(bullJob.data);
        if (!read.success) continue;
        const data = read.data;
        if (data.dueAt === undefined || data.preference !== 'cost') continue;
        if (BATCH_ENDPOINT_BY_TASK[data.job.task] === undefined) continue;
        // Its planning window nearly over: it may be on its way to a worker already.
        if (bullJob.timestamp + bullJob.delay - nowMs < PLAN_SAFETY_MS) continue;
        found.push({ bullJob, data, dueAt: data.dueAt });
      }
    }
    return found;
  }

  /** The first key (job's provider first, then the fallbacks) with a batch API and an open gate that serves the model. */
  private async batchKeyFor(job: Job): Promise<ProviderRoute | undefined> {
    const keys = new Set((await this.batchKeys()).map((route) => route.domain.id));
    const candidates = await this.options.ctx.routes.candidates(job, new Set());
    return candidates.find((route) => keys.has(route.domain.id));
  }

  private providerModelId(job: Job, provider: string): Promise<string> {
    return this.options.ctx.routes.providerModelId(job, provider);
  }

  /**
   * Requests per second real time delivers: the router's learned rate (else its configured limit)
   * while HF credits last; once they are gone, the provider keys' whose gates are open (the keys
   * are the router's failover, not capacity beside it).
   */
  private async realtimeRps(): Promise<number> {
    const { ctx } = this.options;
    const routerOpen = (await ctx.credits.status(ctx.scope, ctx.now())).state === 'ok';
    const domains = routerOpen
      ? [ctx.routes.routerDomain]
      : await Promise.all(
          ctx.routes.providerDomains().map(async (route) => {
            const gate = await ctx.credits.status(keyScope(route.domain.id), ctx.now());
            return gate.state === 'ok' ? route.domain : undefined;
          }),
        );
    let rps = 0;
    for (const domain of domains) {
      const window = domain ? primaryWindow(domain.windows) : undefined;
      if (!domain || !window) continue;
      const { rate, override } = await ctx.limiter.state(domain.id);
      rps += (override ?? rate ?? window.max) / (window.durationMs / 1000);
    }
    // No route at all: plan as if one request a second came through (the lane holds meanwhile).
    return rps > 0 ? rps : 1;
  }

  private async findJobs(jobIds: readonly string[]): Promise<(BullJob | undefined)[]> {
    const found: (BullJob | undefined)[] = [];
    for (const jobId of jobIds) {
      let job: BullJob | undefined;
      for (const queue of this.options.queues()) {
        job = await queue.getJob(jobId);
        if (job) break;
      }
      found.push(job);
    }
    return found;
  }

  /** Release jobs to run now (those still delayed; the others read their answer when they run). */
  private async release(jobIds: readonly string[]): Promise<void> {
    for (const queue of this.options.queues()) {
      await inChunks(jobIds, async (jobId) => {
        const job = await queue.getJob(jobId);
        if (job && (await job.isDelayed())) await job.promote().catch(() => {});
      });
    }
  }
}

async function inChunks<T>(items: readonly T[], fn: (item: T) => Promise<unknown>): Promise<void> {
  for (let start = 0; start < items.length; start += CHUNK) {
    await Promise.all(items.slice(start, start + CHUNK).map(fn));
  }
}
