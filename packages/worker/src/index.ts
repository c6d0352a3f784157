/**
 * @hfq/worker: run workers for accounts, and operate them (admin, Bull Board and status page,
 * metrics and health, graceful shutdown). The worker's internals that hfq's CLI, tests and
 * benchmarks reach into are `@hfq/worker/internal`, not part of this API.
 */
export {
  type AccountRunState,
  type AccountStatus,
  type Admin,
  type AdminOptions,
  createAdmin,
} from './admin.js';
export type { AccountBatchPlanRow, AccountBatchRow } from './batch-route/batch-status-rows.js';
export { type BoardServer, type BoardServerOptions, createBoardServer } from './board/board-server.js';
export type { AccountForecast } from './cockpit/forecast.js';
export type { HistoryPoint } from './cockpit/history-reader.js';
export type { WorkerHeartbeatInfo } from './cockpit/worker-heartbeat.js';
export { DEFAULT_PRICES, estimateCost, type PriceTable } from './cost.js';
export { createHealthServer, type HealthServer, type HealthServerOptions } from './metrics/health-server.js';
export type { WorkerMetrics } from './metrics/metrics.js';
export { type ShutdownOutcome, shutdownGracefully } from './shutdown.js';
export { createWorker, type HfqWorker, type WorkerOptions } from './worker.js';
export type { WorkerEventMap, WorkerEvents } from './worker-events.js';
