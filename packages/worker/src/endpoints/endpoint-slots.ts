import type { EndpointConfig, Job } from '@hfq/shared';
import {
  ENDPOINT_OK_TTL_MS,
  type EndpointRef,
  type EndpointSemaphore,
  type EndpointStatusStore,
  endpointServes,
  type SlotResult,
} from '@hfq/shared/internal';

/**
 * One Inference Endpoint of an account, in this worker process: its slots in the shared
 * semaphore, and the jobs of this process waiting for one. A waiter is woken when this process
 * releases a slot, else by a short tick (a slot another process released); one waiter at a time,
 * and each admission wakes the next, so waiting costs a script per tick, not one per job.
 */

/** Without `X-Scale-Up-Timeout`, the one waking request is repeated this often while cold. */
const PLAIN_WAKE_INTERVAL_MS = 2_000;
/**
 * A slot whose request succeeded passes straight to a job of this process waiting for one (no
 * release, no new admission: two Redis round trips less per request), but only this long after
 * the semaphore admitted it, so a lowered limit or a new status is obeyed within this time.
 */
const HANDOFF_MAX_AGE_MS = 1_000;

/** A slot held by this process: its lease, and when the semaphore admitted it. */
export interface HeldSlot {
  lease: string;
  /** Redis time of the admission (for 429 episodes). */
  admittedAt: number;
  /** This process's clock at the admission (for hand-offs). */
  admittedLocalAt: number;
  waker: boolean;
}

export class AccountEndpoint {
  readonly ref: EndpointRef;
  private readonly waiters: ((slot?: HeldSlot) => void)[] = [];
  private tick: NodeJS.Timeout | undefined;
  /** When this process last refreshed the shared `ok` mark (it expires; see endpoint-status.ts). */
  private okMarkedAt = 0;
  /** When this process last set the demand mark (see @hfq/shared endpoint-backlog.ts). */
  private demandMarkedAt = Number.NEGATIVE_INFINITY;

  constructor(
    readonly config: EndpointConfig,
    readonly accountId: string,
    readonly semaphore: EndpointSemaphore,
    readonly status: EndpointStatusStore,
    private readonly pollMs: number,
    /** The upstream timeout of one call: a held waking request must end before it. */
    private readonly timeoutMs: number,
    /** Sets the endpoint's demand mark for `ttlMs` (a job it serves found it unavailable). */
    private readonly demand: { ttlMs: number; mark: (ttlMs: number) => Promise<void> },
  ) {
    this.ref = { accountId, name: config.name, concurrency: config.concurrency };
  }

  get name(): string {
    return this.config.name;
  }

  /** Whether this endpoint serves the job: its model, and its task when the endpoint names one. */
  serves(job: Job): boolean {
    return endpointServes(this.config, job);
  }

  /**
   * A job this endpoint serves found it paused or failed: it counts as the endpoint's backlog
   * (for resuming it) even if the producer did not index it. Set at most a few times per TTL.
   */
  async noteDemand(nowMs: number): Promise<void> {
    if (nowMs - this.demandMarkedAt < this.demand.ttlMs / 3) return;
    this.demandMarkedAt = nowMs;
    await this.demand.mark(this.demand.ttlMs).catch(() => {
      this.demandMarkedAt = Number.NEGATIVE_INFINITY;
    });
  }

  /** `X-Scale-Up-Timeout` for the waking request, in seconds (0: none); within the call's timeout. */
  scaleUpTimeoutS(): number {
    const wanted = this.config.scaleUpTimeoutS ?? 600;
    return Math.max(0, Math.min(wanted, Math.floor(this.timeoutMs / 1000) - 5));
  }

  tryAcquire(): Promise<SlotResult> {
    return this.semaphore.tryAcquire(this.ref);
  }

  /** The endpoint answered: mark it up (at once after a waking request, else now and then). */
  async noteAnswered(waker: boolean, nowMs: number): Promise<void> {
    if (!waker && nowMs - this.okMarkedAt < ENDPOINT_OK_TTL_MS / 4) return;
    this.okMarkedAt = nowMs;
    await this.status.markOk(this.accountId, this.name, nowMs);
  }

  /** A 503: a replica is starting. Returns whether this was news. */
  async noteCold(reason: string, nowMs: number): Promise<boolean> {
    this.okMarkedAt = 0;
    return this.status.markCold(this.accountId, this.name, reason, nowMs);
  }

  /** The waking request got a 503: after a held one the next may go now, else after the interval. */
  async afterColdAnswer(held: boolean): Promise<void> {
    await this.status.afterColdAnswer(this.accountId, this.name, held ? 0 : PLAIN_WAKE_INTERVAL_MS);
  }

  /** Paused or failed: every worker admits nothing to it for `forMs` (0 = until cleared), on Redis's clock. */
  async noteUnavailable(state: 'paused' | 'failed', reason: string, forMs: number): Promise<void> {
    this.okMarkedAt = 0;
    await this.status.markUnavailable(this.accountId, this.name, state, reason, forMs);
  }

  /**
   * Keep a running request's lease alive; returns the function that stops renewing and gives the
   * slot back: to a waiting job of this process when `handOff` allows it, else to the semaphore.
   */
  hold(slot: HeldSlot): (handOff: boolean) => Promise<void> {
    const every = Math.max(100, Math.floor(this.semaphore.options.leaseMs / 3));
    const renewing = setInterval(
      () => void this.semaphore.renew(this.ref, slot.lease).catch(() => {}),
      every,
    );
    let released = false;
    return async (handOff) => {
      clearInterval(renewing);
      if (released) return;
      released = true;
      const next = this.waiters[0];
      if (handOff && next && !slot.waker && performance.now() - slot.admittedLocalAt < HANDOFF_MAX_AGE_MS) {
        next(slot);
        return;
      }
      await this.semaphore.release(this.ref, slot.lease).catch(() => {});
      this.wake();
    };
  }

  /**
   * Wait for a turn to try again: a local release, the next tick, or `maxMs`. Resolves with a
   * slot when one was handed over (see `hold`).
   */
  waitForTurn(signal: AbortSignal, maxMs = 1_000): Promise<HeldSlot | undefined> {
    return new Promise((resolve, reject) => {
      if (signal.aborted) {
        reject(signal.reason);
        return;
      }
      const done = (slot?: HeldSlot): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        const at = this.waiters.indexOf(done);
        if (at >= 0) this.waiters.splice(at, 1);
        if (this.waiters.length === 0) this.stopTick();
        resolve(slot);
      };
      const onAbort = (): void => {
        done();
        reject(signal.reason);
      };
      const timer = setTimeout(() => done(), maxMs);
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(done);
      this.startTick();
    });
  }

  /** Let the next waiter of this process try. */
  wake(): void {
    this.waiters[0]?.();
  }

  private startTick(): void {
    if (this.tick) return;
    this.tick = setInterval(() => this.wake(), this.pollMs);
    this.tick.unref();
  }

  private stopTick(): void {
    clearInterval(this.tick);
    this.tick = undefined;
  }

  close(): void {
    this.stopTick();
    for (const waiter of [...this.waiters]) waiter();
  }
}
