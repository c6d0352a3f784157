/** `pnpm bench:limits`: its options and the fixed parts of every run (see bench/limits.ts). */
import { parseArgs } from 'node:util';

export const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    jobs: { type: 'string' },
    scenarios: { type: 'string' },
    systems: { type: 'string' },
    cap: { type: 'string' },
    'hfq-cap': { type: 'string', default: '4' },
    processes: { type: 'string', default: '4' },
    concurrency: { type: 'string', default: '16' },
    'min-ms': { type: 'string', default: '20' },
    'max-ms': { type: 'string', default: '200' },
    trace: { type: 'boolean', default: false },
    runs: { type: 'string', default: '1' },
  },
});
/** `--trace`: hfq's domain state (rate and detector fields), every 250 ms, to `.bench-out/trace-<scenario>.jsonl` (`trace-<scenario>-run<n>.jsonl` with `--runs`). */
export const TRACE = values.trace === true;
export const QUICK = values.quick === true;
/** `--runs N`: hfq runs each scenario N times (the baselines once); the report gives the median and the minimum. */
export const RUNS = Math.max(1, Number(values.runs));
export const JOBS = Number(values.jobs ?? (QUICK ? 300 : 1_500));
export const PROCESSES = Number(values.processes);
export const CONCURRENCY = Number(values.concurrency);
export const LATENCY = { minMs: Number(values['min-ms']), maxMs: Number(values['max-ms']) };
/**
 * A run may take at most this many times the ideal time (jobs ÷ true rate). The baselines' tail of
 * backoffs can run long; 1.5× keeps the full run under 15 minutes and `--quick` under 3 on two
 * cores (`--cap`).
 */
export const BASELINE_CAP = Number(values.cap ?? 1.5);
export const HFQ_CAP = Number(values['hfq-cap']);
export const MODEL = 'sentence-transformers/all-MiniLM-L6-v2';
export const RATE_SHARE_TARGET = 0.85;
export const WORKER_READY_TIMEOUT_MS = 90_000;

export const log = (message: string) => process.stderr.write(`${message}\n`);
