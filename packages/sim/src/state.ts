/**
 * The simulator's runtime state: the current config and everything that remembers between
 * requests (limiter windows, credit balances, scripts, the request log, the PRNGs, timers).
 */
import type { Caller } from './auth.js';
import { SimBatchStore } from './batches/batch-store.js';
import {
  type FaultConfig,
  type LatencyConfig,
  mergeConfig,
  type SimConfig,
  type SimConfigPatch,
  type ThrottleStyle,
  type ThrottleTarget,
} from './config.js';
import { CreditLedger } from './credits.js';
import { mulberry32, secretId } from './hash.js';
import { LimiterRegistry } from './limiters/limiter-registry.js';
import { Recorder } from './recorder.js';
import { ScriptBook } from './scripts.js';

// The latency stream is seeded apart from the fault stream so turning jitter on does not change
// which requests fail.
const LATENCY_SEED_SALT = 0x9e3779b9;

export class SimState {
  readonly limiters = new LimiterRegistry();
  readonly credits = new CreditLedger();
  readonly scripts = new ScriptBook();
  /** Files and batches of the providers' batch API. */
  readonly batches: SimBatchStore = new SimBatchStore(this);
  readonly recorder: Recorder;
  faultRandom: () => number;
  latencyRandom: () => number;
  /** Base URL of the running server, for URLs the simulator hands out. */
  url = '';
  /** When each token with a busy schedule made its first inference request (its schedule's origin). */
  private readonly busyOrigins = new Map<string, number>();
  private readonly timers = new Map<NodeJS.Timeout, (completed: boolean) => void>();
  private closed = false;

  constructor(
    public config: SimConfig,
    readonly now: () => number,
  ) {
    this.recorder = new Recorder(config.logLimit);
    this.faultRandom = mulberry32(config.seed);
    this.latencyRandom = mulberry32(config.seed ^ LATENCY_SEED_SALT);
  }

  /** Merge a patch; tokens and orgs it names start over (full credits, empty windows). */
  apply(patch: SimConfigPatch): void {
    this.config = mergeConfig(this.config, patch);
    if (patch.seed !== undefined) {
      this.faultRandom = mulberry32(patch.seed);
      this.latencyRandom = mulberry32(patch.seed ^ LATENCY_SEED_SALT);
    }
    if (patch.logLimit !== undefined) this.recorder.setLimit(patch.logLimit);
    for (const token of Object.keys(patch.tokens ?? {})) {
      const id = secretId(token);
      this.credits.reset(`token:${id}`);
      this.limiters.forget(`token:${id}`);
      this.limiters.forget(`hub:${id}`);
      this.busyOrigins.delete(id);
    }
    for (const org of Object.keys(patch.orgs ?? {})) this.credits.reset(`org:${org}`);
  }

  faultsFor(caller: Caller): FaultConfig {
    return { ...this.config.faults, ...caller.policy.faults };
  }

  latencyFor(caller: Caller): LatencyConfig {
    return { ...this.config.latency, ...caller.policy.latency };
  }

  throttleStyleFor(target: ThrottleTarget, caller: Caller): ThrottleStyle {
    return { ...this.config.throttleStyle[target], ...caller.policy.throttleStyle };
  }

  /** The share of requests a busy provider answers 429 right now for this caller (`busyShare`, `busySchedule`). */
  busyShareFor(caller: Caller): number {
    const { busyShare = 0, busySchedule } = caller.policy;
    if (!busySchedule?.length) return busyShare;
    const now = this.now();
    let origin = this.busyOrigins.get(caller.id);
    if (origin === undefined) {
      origin = now;
      this.busyOrigins.set(caller.id, origin);
    }
    let share = busyShare;
    for (const entry of [...busySchedule].sort((a, b) => a.afterMs - b.afterMs))
      if (now - origin >= entry.afterMs) share = entry.share;
    return share;
  }

  /** Wait `ms`; resolves false instead if the simulator closes first. */
  sleep(ms: number): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    if (ms <= 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        resolve(true);
      }, ms);
      this.timers.set(timer, resolve);
    });
  }

  close(): void {
    this.closed = true;
    for (const [timer, resolve] of this.timers) {
      clearTimeout(timer);
      resolve(false);
    }
    this.timers.clear();
  }
}
