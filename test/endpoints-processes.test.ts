/**
 * Inference Endpoints with real worker processes (see docs/architecture.md, "Dedicated
 * capacity"): the concurrency limit holds across processes, and a killed process's slots come
 * back when their leases lapse.
 */
import type { AccountConfigInput } from '@hfq/shared';
import type { Sim } from '@hfq/sim';
import { describe, expect, it } from 'vitest';
import type { HfqProcess } from './support/processes.js';
import { type Stack, startStack } from './support/stack.js';
import { waitFor } from './support/wait.js';

const HF = 'hf_endpointsprocesses';
const MODEL = 'BAAI/bge-small-en-v1.5';

function account(sim: Sim, concurrency: number): AccountConfigInput {
  return {
    id: 'acme',
    tier: 'pro',
    hfToken: HF,
    routing: 'endpoint-only',
    endpoints: [{ name: 'emb', url: sim.endpointUrl('emb'), models: [MODEL], concurrency }],
  };
}

/** Worker processes on the stack, killed (not drained) when it stops. */
function startWorkers(
  stack: Stack,
  count: number,
  accounts: AccountConfigInput[],
  extra: Record<string, string> = {},
) {
  return stack.startWorkerProcesses(count, { accounts, concurrency: 8, extra, stopSignal: 'SIGKILL' });
}

function jobs(n: number, tag: string) {
  return Array.from({ length: n }, (_, i) => ({
    account: 'acme',
    task: 'feature-extraction' as const,
    model: MODEL,
    inputs: `${tag}${i}`,
  }));
}

describe('endpoint concurrency across worker processes', () => {
  it('two worker processes never hold more than C requests in flight to one endpoint', async () => {
    // The simulated endpoint could take 20 at once: only hfq's limit keeps it at C.
    const stack = await startStack({
      label: 'epp',
      sim: { endpoints: { emb: { model: MODEL, slotsPerReplica: 20, latency: { baseMs: 80 } } } },
    });
    const { sim } = stack;
    const C = 4;
    await startWorkers(stack, 2, [account(sim, C)]);
    const producer = stack.producer;
    const handles = await producer.enqueueMany(jobs(80, 'two'));
    const results = await Promise.all(handles.map((h) => h.result({ timeoutMs: 60_000 })));
    expect(results.every((r) => r.route === 'endpoint' && r.attempts === 1)).toBe(true);
    const stats = sim.endpointStats('emb');
    expect(stats.byStatus).toEqual({ '200': 80 });
    expect(stats.maxInFlight).toBeLessThanOrEqual(C);
    // Both processes' requests overlapped up to the limit (it was reached, not merely respected).
    expect(stats.maxInFlight).toBe(C);
  });

  it('a worker killed mid-request gives its slots back after the lease', async () => {
    const stack = await startStack({
      label: 'epk',
      sim: { endpoints: { emb: { model: MODEL, slotsPerReplica: 10 } } },
    });
    const { sim } = stack;
    const C = 2;
    const accounts = [account(sim, C)];
    const env = {
      HFQ_ENDPOINT_LEASE_MS: '1000',
      HFQ_LOCK_DURATION_MS: '2000',
      HFQ_STALLED_INTERVAL_MS: '1000',
    };
    const [victim] = (await startWorkers(stack, 1, accounts, env)) as [HfqProcess];
    const producer = stack.producer;
    const admin = stack.newAdmin(accounts);
    const inFlight = async () => (await admin.status())[0]?.endpoints[0]?.inFlight ?? -1;

    // One answer first: until the endpoint is known to be up, one request at a time wakes it.
    await (await producer.enqueue(jobs(1, 'warm')[0] as ReturnType<typeof jobs>[number])).result({
      timeoutMs: 30_000,
    });
    sim.setEndpoint('emb', { model: MODEL, slotsPerReplica: 10, latency: { baseMs: 60_000 } });
    const first = await producer.enqueueMany(jobs(C, 'held'));
    await waitFor(() => sim.endpointStats('emb').inFlight === C, 'both slots in use');
    await victim.stop('SIGKILL');
    // The dead process's leases still count: nobody may use its slots yet.
    expect(await inFlight()).toBe(C);
    // A fast endpoint from now on; its requests cut by the kill are gone.
    sim.setEndpoint('emb', { model: MODEL, slotsPerReplica: 10, latency: { baseMs: 20 } });
    await waitFor(async () => (await inFlight()) === 0, 'the leases to lapse', 10_000);

    await startWorkers(stack, 1, accounts, env);
    const more = await producer.enqueueMany(jobs(6, 'after'));
    const results = await Promise.all([...first, ...more].map((h) => h.result({ timeoutMs: 60_000 })));
    expect(results.every((r) => r.route === 'endpoint')).toBe(true);
    expect(sim.endpointStats('emb').maxInFlight).toBeLessThanOrEqual(C);
  });
});
