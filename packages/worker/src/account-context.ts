import type { AccountConfig, Logger, UpstreamUrls } from '@hfq/shared';
import type { CreditScope, CreditState, DomainLimiter, LaneId, ResultLedger } from '@hfq/shared/internal';
import type { Queue } from 'bullmq';
import type { BatchStores } from './batch-route/batch-job-store.js';
import type { PriceTable } from './cost.js';
import type { AccountEndpoint } from './endpoints/endpoint-slots.js';
import type { RouteSelection } from './route-selection.js';
import type { SpendRecorder } from './spend-recorder.js';
import type { WorkerEvents } from './worker-events.js';

/** Everything the processor of one lane of an account needs; built by `AccountRuntime`. */
export interface AccountContext {
  account: AccountConfig;
  scope: CreditScope;
  /** The lane the job is in (see docs/architecture.md, "Every route its own lane"). */
  lane: LaneId;
  /** The lane's queue: a wait (`requeueAfter`) rate-limits this queue, never the account's other lanes. */
  queue: Queue;
  routes: RouteSelection;
  limiter: DomainLimiter;
  credits: CreditState;
  spend: SpendRecorder;
  logger: Logger;
  upstream: UpstreamUrls;
  /** The fetch for Hub lookups (the model mapping): made once per account, it records nothing. */
  hubFetch: typeof fetch;
  now: () => number;
  prices: PriceTable;
  timeoutMs: number;
  maxBodyBytes: number;
  maxBinaryBytes: number;
  events: WorkerEvents;
  /** The account's Inference Endpoints in this process (empty when it has none). */
  endpoints: AccountEndpoint[];
  /** The batch route's records and answers (batch-route/batch-answer.ts); absent when it is off. */
  batchRoute?: BatchStores;
  /** The result ledger, when the account opted in to result reuse (result-reuse.ts). */
  results?: ResultLedger;
  /** Pause the lane's queue: nothing fails, nothing is lost; resumes when the cause clears. */
  hold: (reason: string) => Promise<void>;
  /** Before a wait (`requeueAfter`): the lane's queue gets BullMQ's coarse limit, which the wait needs (lane-queue-limit.ts). */
  limitQueue: () => Promise<void>;
  /** Write the lane queue's marker: a lane worker blocked on it looks for work now (`requeueAfter`). */
  wakeLane: () => Promise<void>;
}
