import type { InferenceResult } from '@hfq/shared';
import { Job, type Queue, type QueueEvents } from 'bullmq';

/** A job failed for good; `reason` is the worker's `failedReason` (status, request id, upstream message). */
export class JobFailedError extends Error {
  readonly code = 'HFQ_JOB_FAILED';
  constructor(
    readonly jobId: string,
    readonly reason: string,
  ) {
    super(`job ${jobId} failed: ${reason}`);
    this.name = 'JobFailedError';
  }
}

export class ResultTimeoutError extends Error {
  readonly code = 'HFQ_RESULT_TIMEOUT';
  constructor(
    readonly jobId: string,
    timeoutMs: number,
  ) {
    super(`job ${jobId} did not finish within ${timeoutMs} ms (it is still queued or running)`);
    this.name = 'ResultTimeoutError';
  }
}

/** A handle on one enqueued job. */
export class JobHandle {
  constructor(
    readonly id: string,
    readonly account: string,
    private readonly queue: Queue,
    private readonly events: () => Promise<QueueEvents>,
  ) {}

  /** The lane the job is in (see docs/architecture.md, "Every route its own lane"): `router`, `router.<provider>` or `endpoint.<name>`. */
  get lane(): string {
    const name = this.queue.name;
    const at = name.indexOf('}.');
    return at < 0 ? 'router' : name.slice(at + 2);
  }

  /** The job's state in BullMQ (`waiting`, `active`, `delayed`, `completed`, `failed`, … or `unknown` once removed). */
  async state(): Promise<string> {
    return this.queue.getJobState(this.id);
  }

  /**
   * Wait for the job to finish either way: its result or why it failed, and when it finished (a
   * job that finished before this call reports its own time, so a resumed reader can tell old
   * results from new ones).
   */
  async outcome(): Promise<
    | { ok: true; result: InferenceResult; finishedOn: number }
    | { ok: false; error: string; finishedOn: number }
  > {
    const events = await this.events();
    await events.waitUntilReady();
    const job = await Job.fromId(this.queue, this.id);
    if (!job) {
      return {
        ok: false,
        error: 'the job is not in Redis (removed by retention, or never added)',
        finishedOn: Date.now(),
      };
    }
    const finishedBefore = job.finishedOn;
    try {
      const result = (await job.waitUntilFinished(events)) as InferenceResult;
      return { ok: true, result, finishedOn: finishedBefore ?? Date.now() };
    } catch (err) {
      return {
        ok: false,
        error: (err as Error).message ?? String(err),
        finishedOn: finishedBefore ?? Date.now(),
      };
    }
  }

  /**
   * Wait for the result. Rejects with `JobFailedError` if the job fails, `ResultTimeoutError` after `timeoutMs`.
   * @param options.timeoutMs - @defaultValue no limit
   */
  async result(options: { timeoutMs?: number } = {}): Promise<InferenceResult> {
    const events = await this.events();
    await events.waitUntilReady();
    const job = await Job.fromId(this.queue, this.id);
    if (!job)
      throw new JobFailedError(this.id, 'the job is not in Redis (removed by retention, or never added)');
    try {
      return (await job.waitUntilFinished(events, options.timeoutMs)) as InferenceResult;
    } catch (err) {
      const message = (err as Error).message ?? String(err);
      if (/timed out before finishing/i.test(message))
        throw new ResultTimeoutError(this.id, options.timeoutMs ?? 0);
      throw new JobFailedError(this.id, message);
    }
  }
}
