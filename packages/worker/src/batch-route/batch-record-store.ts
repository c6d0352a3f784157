/**
 * Where each provider batch hfq submits is recorded (see docs/architecture.md, "Deadlines and the
 * batch route"), written before the step that needs it: the plan before the upload, the input
 * file's id before the create, `creating` before the create call, the batch's id before anything
 * polls it. A worker that dies at any step resumes from the record and never creates a second
 * batch. Keys carry the account's hash tag; each has a TTL refreshed by every write.
 */
import { createHash, randomUUID } from 'node:crypto';
import { hashTag, type RedisClient, refreshLease, releaseLease, stateKey } from '@hfq/shared/internal';

/** A record's life: `collected` records leave the account's index. */
export type BatchRecordState = 'planned' | 'uploaded' | 'creating' | 'submitted' | 'cancelling' | 'collected';

/** What is known before anything is sent. */
export interface BatchRecordSpec {
  provider: string;
  /** The provider key's domain id (never the key). */
  keyDomain: string;
  endpoint: string;
  /** The jobs of this one input file, in file order. */
  jobIds: string[];
  /** Epoch ms. */
  deadlineMs: number;
  /** Epoch ms: the last moment its unfinished jobs can still finish in real time. */
  hedgeAtMs: number;
}

export interface BatchRecord extends BatchRecordSpec {
  id: string;
  account: string;
  state: BatchRecordState;
  inputFileId: string | undefined;
  batchId: string | undefined;
  createdAtMs: number;
  updatedAtMs: number;
}

/** Two days: the provider's 24-hour window, and a day to collect after it. */
export const BATCH_RECORD_TTL_MS = 48 * 60 * 60 * 1000;

/** The record of one provider batch, tagged with its account. */
export function batchRecordKey(prefix: string, account: string, recordId: string): string {
  return stateKey(prefix, 'provider-batch', hashTag(account), recordId);
}

/** The set of an account's records not yet collected. */
export function batchRecordIndexKey(prefix: string, account: string): string {
  return stateKey(prefix, 'provider-batches', hashTag(account));
}

/** The same jobs for the same key and endpoint make the same record: a resumed plan finds it. */
export function batchRecordId(
  spec: Pick<BatchRecordSpec, 'provider' | 'keyDomain' | 'endpoint' | 'jobIds'>,
): string {
  const hash = createHash('sha256');
  hash.update(`${spec.provider}\n${spec.keyDomain}\n${spec.endpoint}\n`);
  for (const jobId of spec.jobIds) hash.update(`${jobId}\n`);
  return `pb-${hash.digest('hex').slice(0, 24)}`;
}

export class BatchRecordStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    private readonly ttlMs = BATCH_RECORD_TTL_MS,
  ) {}

  /** The record of `spec`, created if there is none; an existing one keeps its fields (the first plan wins). */
  async open(account: string, spec: BatchRecordSpec): Promise<BatchRecord> {
    const id = batchRecordId(spec);
    const key = batchRecordKey(this.prefix, account, id);
    const now = Date.now();
    const fields: Record<string, string> = {
      provider: spec.provider,
      keyDomain: spec.keyDomain,
      endpoint: spec.endpoint,
      jobIds: JSON.stringify(spec.jobIds),
      deadlineMs: String(spec.deadlineMs),
      hedgeAtMs: String(spec.hedgeAtMs),
      state: 'planned',
      createdAtMs: String(now),
      updatedAtMs: String(now),
    };
    const multi = this.redis.multi();
    for (const [field, value] of Object.entries(fields)) multi.hsetnx(key, field, value);
    multi.pexpire(key, this.ttlMs);
    multi.sadd(batchRecordIndexKey(this.prefix, account), id);
    multi.pexpire(batchRecordIndexKey(this.prefix, account), this.ttlMs);
    await exec(multi);
    const record = await this.get(account, id);
    if (!record) throw new Error(`batch record ${id} vanished right after it was written`);
    return record;
  }

  async get(account: string, id: string): Promise<BatchRecord | undefined> {
    const hash = await this.redis.hgetall(batchRecordKey(this.prefix, account, id));
    if (!hash.state) return undefined;
    return {
      id,
      account,
      provider: hash.provider ?? '',
      keyDomain: hash.keyDomain ?? '',
      endpoint: hash.endpoint ?? '',
      jobIds: JSON.parse(hash.jobIds ?? '[]') as string[],
      deadlineMs: Number(hash.deadlineMs),
      hedgeAtMs: Number(hash.hedgeAtMs),
      state: hash.state as BatchRecordState,
      inputFileId: hash.inputFileId || undefined,
      batchId: hash.batchId || undefined,
      createdAtMs: Number(hash.createdAtMs),
      updatedAtMs: Number(hash.updatedAtMs),
    };
  }

  /** Record a step; resolves once Redis has it. */
  async update(
    account: string,
    id: string,
    change: { state: BatchRecordState; inputFileId?: string; batchId?: string },
  ): Promise<BatchRecord> {
    const key = batchRecordKey(this.prefix, account, id);
    const fields: Record<string, string> = { state: change.state, updatedAtMs: String(Date.now()) };
    if (change.inputFileId !== undefined) fields.inputFileId = change.inputFileId;
    if (change.batchId !== undefined) fields.batchId = change.batchId;
    const index = batchRecordIndexKey(this.prefix, account);
    const multi = this.redis.multi().hset(key, fields).pexpire(key, this.ttlMs);
    if (change.state === 'collected') multi.srem(index, id);
    else multi.pexpire(index, this.ttlMs);
    await exec(multi);
    const record = await this.get(account, id);
    if (!record) throw new Error(`batch record ${id} is gone (expired?)`);
    return record;
  }

  /**
   * Run `fn` as the account's only batch watcher: resolves undefined at once when another process
   * is watching (its lease, tagged with the account, lapses by itself if that process dies).
   */
  async asWatcher<T>(account: string, leaseMs: number, fn: () => Promise<T>): Promise<T | undefined> {
    const key = stateKey(this.prefix, 'provider-batch-watch', hashTag(account));
    const token = randomUUID();
    if ((await this.redis.set(key, token, 'PX', leaseMs, 'NX')) !== 'OK') return undefined;
    // Kept while `fn` runs, so a short lease (quick to lapse after a crash) outlasts a long pass.
    const keep = setInterval(
      () => void refreshLease(this.redis, key, token, leaseMs).catch(() => false),
      Math.max(100, Math.floor(leaseMs / 3)),
    );
    keep.unref();
    try {
      return await fn();
    } finally {
      clearInterval(keep);
      await releaseLease(this.redis, key, token).catch(() => false);
    }
  }

  /** The account's records not yet collected: what a starting worker resumes. */
  async openRecords(account: string): Promise<BatchRecord[]> {
    const ids = await this.redis.smembers(batchRecordIndexKey(this.prefix, account));
    const records = await Promise.all(ids.map((id) => this.get(account, id)));
    return records.filter((record): record is BatchRecord => record !== undefined);
  }
}

async function exec(multi: ReturnType<RedisClient['multi']>): Promise<void> {
  const results = await multi.exec();
  const failed = results?.find(([error]) => error);
  if (failed?.[0]) throw failed[0];
}
