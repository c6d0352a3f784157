/** `pnpm bench:limits`: what one system's run is given, and what it gives back. */
import type { ChildNode } from '../support/child.js';
import type { Cleanup } from '../support/cleanup.js';
import type { SimProcess } from '../support/sim-process.js';
import type { RunResult } from './measure.js';

export interface RunContext {
  baselinePool: { workers?: ChildNode[]; startMs?: number; stop?: () => Promise<void> };
  sim: SimProcess;
  redisUrl: string;
  jobs: { account: string; task: 'feature-extraction'; model: string; inputs: string }[];
  cleanup: Cleanup;
}

export interface Outcome {
  completed: number;
  failed: number;
  workerStartMs: number;
  enqueueMs: number;
  lastResultMs: number | null;
  hfq?: RunResult['hfq'];
}
