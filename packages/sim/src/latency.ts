import type { LatencyConfig } from './config.js';

/** Delay before answering an admitted request of `items` input items. */
export function latencyMs(latency: LatencyConfig, items: number, random: () => number): number {
  const { minMs, maxMs } = latency;
  const spread =
    minMs !== undefined && maxMs !== undefined
      ? minMs + random() * Math.max(0, maxMs - minMs)
      : latency.baseMs + (latency.jitterMs > 0 ? random() * latency.jitterMs : 0);
  return Math.max(0, spread + latency.perItemMs * items);
}
