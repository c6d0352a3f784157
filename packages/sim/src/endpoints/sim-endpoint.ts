/**
 * One simulated Inference Endpoint: its state machine (running, scaled to zero, initializing,
 * paused, failed), its slots, and the counters tests and benchmarks read. Idle scale-to-zero is
 * evaluated lazily on every access, so a quiet endpoint needs no timer.
 */
import type { EndpointConfig, EndpointState } from './endpoint-config.js';

export interface EndpointStats {
  name: string;
  namespace: string;
  state: EndpointState;
  /** replicas × slots per replica. */
  capacity: number;
  inFlight: number;
  /** Most requests admitted (holding a slot) at once since the last reset. */
  maxInFlight: number;
  /** Requests received, by status answered ('0' when the client left before an answer). */
  byStatus: Record<string, number>;
  requests: number;
  /** Requests that arrived while no replica was ready (each one asks the endpoint to wake). */
  wakeRequests: number;
  /** Most such requests in flight at once (held by `X-Scale-Up-Timeout` or being answered 503). */
  maxWakingInFlight: number;
  /** Every state change since configured, on the simulator's clock. */
  stateChanges: {
    t: number;
    state: EndpointState;
    by: 'config' | 'idle' | 'request' | 'management' | 'ready';
  }[];
  /** Management calls by action: get, resume, pause, scale-to-zero. */
  management: Record<string, number>;
  /** Replica time billed so far (running or initializing), in ms, and its price. */
  replicaMs: number;
  costUsd: number;
}

type ChangeReason = EndpointStats['stateChanges'][number]['by'];

export class SimEndpoint {
  state: EndpointState;
  private inFlight = 0;
  private maxInFlight = 0;
  private waking = 0;
  private maxWaking = 0;
  private wakeRequests = 0;
  private byStatus: Record<string, number> = {};
  private management: Record<string, number> = {};
  private stateChanges: EndpointStats['stateChanges'] = [];
  private lastActivityAt: number;
  private billedSince: number | null = null;
  private billedMs = 0;
  /** Resolves true when the replica started by the current scale-up is ready. */
  private ready: Promise<boolean> | null = null;

  constructor(
    readonly name: string,
    readonly config: EndpointConfig,
    private readonly now: () => number,
    private readonly sleep: (ms: number) => Promise<boolean>,
  ) {
    this.state = config.initialState;
    this.lastActivityAt = now();
    this.change(config.initialState, 'config');
    if (config.initialState === 'initializing') this.scaleUp('config');
  }

  get capacity(): number {
    return this.config.replicas * this.config.slotsPerReplica;
  }

  /** Apply idle scale-to-zero if its time has come; call before reading the state. */
  refresh(): EndpointState {
    const idle = this.config.idleScaleToZeroMs;
    if (
      idle !== null &&
      this.state === 'running' &&
      this.inFlight === 0 &&
      this.now() - this.lastActivityAt >= idle
    ) {
      this.change('scaledToZero', 'idle');
    }
    return this.state;
  }

  /** Start a replica (scaled to zero, paused or failed → initializing → running after the cold start). */
  scaleUp(by: ChangeReason): Promise<boolean> {
    if (this.state === 'running') return Promise.resolve(true);
    if (this.state === 'initializing' && this.ready) return this.ready;
    this.change('initializing', by);
    const ready = this.sleep(this.config.coldStartMs).then((ok) => {
      if (!ok || this.state !== 'initializing' || this.ready !== ready) return this.state === 'running';
      this.lastActivityAt = this.now();
      this.change('running', 'ready');
      return true;
    });
    this.ready = ready;
    return ready;
  }

  pause(): void {
    this.ready = null;
    this.change('paused', 'management');
  }

  scaleToZero(): void {
    this.ready = null;
    if (this.state !== 'paused') this.change('scaledToZero', 'management');
  }

  /** Wait for a ready replica, at most `timeoutMs`. */
  async untilReady(timeoutMs: number): Promise<boolean> {
    const ready = this.scaleUp('request');
    const timedOut = this.sleep(timeoutMs).then(() => false);
    return Promise.race([ready, timedOut]);
  }

  /** A request arrived while no replica was ready; returns the function that ends its count. */
  beginWaking(): () => void {
    this.wakeRequests += 1;
    this.waking += 1;
    this.maxWaking = Math.max(this.maxWaking, this.waking);
    return () => {
      this.waking -= 1;
    };
  }

  /** Take a slot, or null when every slot is busy (the container answers 429). */
  takeSlot(): (() => void) | null {
    if (this.inFlight >= this.capacity) return null;
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    this.lastActivityAt = this.now();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.inFlight -= 1;
      this.lastActivityAt = this.now();
    };
  }

  /** Latency of a request admitted with `othersInFlight` already running. */
  latencyMs(othersInFlight: number, random: () => number): number {
    const { baseMs, perInFlightMs, jitterMs } = this.config.latency;
    return baseMs + perInFlightMs * othersInFlight + (jitterMs > 0 ? random() * jitterMs : 0);
  }

  get busy(): number {
    return this.inFlight;
  }

  countStatus(status: number): void {
    const key = String(status);
    this.byStatus[key] = (this.byStatus[key] ?? 0) + 1;
  }

  countManagement(action: string): void {
    this.management[action] = (this.management[action] ?? 0) + 1;
  }

  resetStats(): void {
    this.maxInFlight = this.inFlight;
    this.maxWaking = this.waking;
    this.wakeRequests = 0;
    this.byStatus = {};
    this.management = {};
  }

  stats(): EndpointStats {
    this.refresh();
    const replicaMs = this.billedMs + (this.billedSince === null ? 0 : this.now() - this.billedSince);
    return {
      name: this.name,
      namespace: this.config.namespace,
      state: this.state,
      capacity: this.capacity,
      inFlight: this.inFlight,
      maxInFlight: this.maxInFlight,
      byStatus: { ...this.byStatus },
      requests: Object.values(this.byStatus).reduce((sum, n) => sum + n, 0),
      wakeRequests: this.wakeRequests,
      maxWakingInFlight: this.maxWaking,
      stateChanges: [...this.stateChanges],
      management: { ...this.management },
      replicaMs,
      costUsd: (replicaMs / 3_600_000) * this.config.hourlyUsd * this.config.replicas,
    };
  }

  private change(state: EndpointState, by: ChangeReason): void {
    const t = this.now();
    const billed = state === 'running' || state === 'initializing';
    if (billed && this.billedSince === null) this.billedSince = t;
    if (!billed && this.billedSince !== null) {
      this.billedMs += t - this.billedSince;
      this.billedSince = null;
    }
    this.state = state;
    this.stateChanges.push({ t, state, by });
  }
}
