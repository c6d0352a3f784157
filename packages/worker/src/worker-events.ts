import { EventEmitter } from 'node:events';

/**
 * What a worker reports as it runs, for metrics and the status view. Field names are stable;
 * no event carries a secret (domains are hashes of credentials).
 */
export interface WorkerEventMap {
  /** An upstream call ended: `status` 0 for a connection error or timeout. */
  upstream: [
    {
      account: string;
      route: 'hf-router' | 'provider-key' | 'endpoint';
      provider: string;
      status: number;
      latencyMs: number;
    },
  ];
  /** A 429 paused a domain. */
  throttle: [
    {
      account: string;
      route: 'hf-router' | 'provider-key';
      domain: string;
      pauseMs: number;
      newEpisode: boolean;
    },
  ];
  /** A job's run ended: completed, failed (it may be retried), or handed back to its queue (no attempt used). */
  job: [{ account: string; outcome: 'completed' | 'failed' | 'requeued'; durationMs: number }];
  /**
   * The account's credits ran out (each time a gate closes), the router refused its token, a
   * provider key was refused or ran out, or a router probe found the credits back.
   */
  credits: [{ account: string; scope: string; event: 'exhausted' | 'held' | 'key-refused' | 'reopened' }];
  /** The account's queue was held or resumed. */
  hold: [{ account: string; lane?: string; held: boolean; reason?: string }];
  /** An Inference Endpoint changed availability, or its 429s lowered its concurrency. */
  endpoint: [
    {
      account: string;
      endpoint: string;
      event: 'cold' | 'ready' | 'paused' | 'failed' | 'throttled' | 'resumed' | 'scaled-to-zero';
      reason?: string;
      limit?: number;
    },
  ];
}

export class WorkerEvents extends EventEmitter<WorkerEventMap> {}
