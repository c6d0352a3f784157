/**
 * Which batch each job went to, and what its batch answered (see docs/architecture.md, "Deadlines
 * and the batch route"). Two hashes per account, under its hash tag, each with the records' TTL:
 * `provider-batch-jobs` (job id → record id), written before a job is parked until its batch's
 * hedge time, and `provider-batch-answers` (job id → its line's answer, or "unfinished"),
 * written before the job is released. The job's own run reads them (`batch-answer.ts`): a job
 * answered by its batch completes from here and never reaches a real-time route.
 */
import { hashTag, type RedisClient, stateKey } from '@hfq/shared/internal';
import { BATCH_RECORD_TTL_MS, type BatchRecordStore } from './batch-record-store.js';
import type { LineResult } from './batch-results.js';

/** A job's stored answer: its line's output, its line's error (to retry in real time), or none (real time). */
export type StoredAnswer =
  | { kind: 'output'; output: unknown; provider: string }
  | { kind: 'failed'; code: string; message: string }
  | { kind: 'unfinished' };

/** An account's batch route state: its batches' records, and its jobs' ties and answers. */
export interface BatchStores {
  records: BatchRecordStore;
  jobs: BatchJobStore;
}

export function batchJobsKey(prefix: string, account: string): string {
  return stateKey(prefix, 'provider-batch-jobs', hashTag(account));
}

export function batchAnswersKey(prefix: string, account: string): string {
  return stateKey(prefix, 'provider-batch-answers', hashTag(account));
}

export class BatchJobStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    private readonly ttlMs = BATCH_RECORD_TTL_MS,
  ) {}

  /** Tie jobs to a record (again, after a crash: the same record). */
  async assign(account: string, recordId: string, jobIds: readonly string[]): Promise<void> {
    if (jobIds.length === 0) return;
    const key = batchJobsKey(this.prefix, account);
    const fields: Record<string, string> = {};
    for (const jobId of jobIds) fields[jobId] = recordId;
    await this.redis.multi().hset(key, fields).pexpire(key, this.ttlMs).exec();
  }

  /** The records of jobs (undefined: the job is in no batch). */
  async recordsOf(account: string, jobIds: readonly string[]): Promise<(string | undefined)[]> {
    if (jobIds.length === 0) return [];
    const values = await this.redis.hmget(batchJobsKey(this.prefix, account), ...jobIds);
    return values.map((value) => value ?? undefined);
  }

  async recordOf(account: string, jobId: string): Promise<string | undefined> {
    return (await this.redis.hget(batchJobsKey(this.prefix, account), jobId)) ?? undefined;
  }

  /** Store a finished batch's answers: every job of the record gets one (unfinished when it has no line). */
  async storeAnswers(
    account: string,
    provider: string,
    jobIds: readonly string[],
    lines: ReadonlyMap<string, LineResult>,
  ): Promise<void> {
    if (jobIds.length === 0) return;
    const key = batchAnswersKey(this.prefix, account);
    const fields: Record<string, string> = {};
    for (const jobId of jobIds) {
      const line = lines.get(jobId);
      const answer: StoredAnswer = !line
        ? { kind: 'unfinished' }
        : line.ok
          ? { kind: 'output', output: line.output, provider }
          : { kind: 'failed', code: line.error.code, message: line.error.message };
      fields[jobId] = JSON.stringify(answer);
    }
    await this.redis.multi().hset(key, fields).pexpire(key, this.ttlMs).exec();
  }

  async answerOf(account: string, jobId: string): Promise<StoredAnswer | undefined> {
    const raw = await this.redis.hget(batchAnswersKey(this.prefix, account), jobId);
    return raw ? (JSON.parse(raw) as StoredAnswer) : undefined;
  }

  /** The job is done with its batch (completed from it, or sent to real time): forget both entries. */
  async forget(account: string, jobId: string): Promise<void> {
    await this.redis
      .multi()
      .hdel(batchJobsKey(this.prefix, account), jobId)
      .hdel(batchAnswersKey(this.prefix, account), jobId)
      .exec();
  }
}
