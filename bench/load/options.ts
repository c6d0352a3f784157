/** `pnpm bench:load`: its options and the fixed parts of the scenario (see bench/load.ts). */
import { parseArgs } from 'node:util';

export const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    jobs: { type: 'string' },
    processes: { type: 'string', default: '4' },
    concurrency: { type: 'string', default: '32' },
    systems: { type: 'string', default: 'baseline,hfq' },
    chunk: { type: 'string', default: '5000' },
    /** Runs of each system, interleaved (the order flips each round); the median run counts. */
    rounds: { type: 'string' },
    /** Longest a run may take, seconds. */
    cap: { type: 'string' },
    /** Internal: `producer` runs one system's producer (a child of the benchmark). */
    role: { type: 'string' },
  },
});

export type SystemId = 'hfq' | 'baseline';
export const SYSTEM_NAMES: Record<SystemId, string> = { hfq: 'hfq', baseline: 'plain BullMQ' };
export const QUICK = values.quick === true;
export const JOBS = Number(values.jobs ?? (QUICK ? 10_000 : 100_000));
export const PROCESSES = Number(values.processes);
export const CONCURRENCY = Number(values.concurrency);
export const CHUNK = Number(values.chunk);
export const ROUNDS = Number(values.rounds ?? (QUICK ? 3 : 1));
export const CAP_S = Number(values.cap ?? Math.max(300, JOBS / 50));
export const MODEL = 'sentence-transformers/all-MiniLM-L6-v2';
/** hfq's account limit: far above what one machine reaches, so it never binds but is still applied. */
export const ACCOUNT_LIMIT = { max: 100_000, durationMs: 1_000 };
export const ACCOUNT = 'load';
export const BASELINE_QUEUE = 'load';
export const TOKENS: Record<SystemId, string> = {
  hfq: 'hf_bench_load_hfq_0123456789abcdef',
  baseline: 'hf_bench_load_baseline_0123456789ab',
};
export const TARGETS = { throughputRatio: 0.9, commandsRatio: 1.3 };
/** The simulator is called the bottleneck when it used more than this share of one core. */
export const SIM_BUSY_SHARE = 0.8;
export const READY_TIMEOUT_MS = 120_000;
export const POLL_MS = 200;

export const log = (message: string) => process.stderr.write(`${message}\n`);
