import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createProducer } from '@hfq/producer';
import { type AccountConfigInput, createLogger } from '@hfq/shared';
import { type Sim, startSim } from '@hfq/sim';
import { type AccountRunState, createAdmin, createWorker, type HfqWorker } from '@hfq/worker';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { progressNote } from '../packages/cli/src/progress-note.js';
import { chatFor, perJobModels } from './support/faults.js';
import { HfqProcess } from './support/processes.js';
import { adminRedis, expectNoClientsLeft, redisUrl, testPrefix } from './support/redis.js';
import { upstreamOf } from './support/stack.js';
import { waitFor } from './support/wait.js';

/**
 * The progress line of `hfq enqueue --wait` and `hfq demo` says what holds the jobs back, as
 * `hfq status` reads it: held (credits out, a provider key revoked, the token refused), paused
 * for a stated wait, paused by an operator.
 */

const ok = { state: 'ok' } as const;
const state = (over: Partial<AccountRunState>): AccountRunState => ({
  account: 'acme',
  paused: false,
  holdReason: undefined,
  credits: ok,
  keys: [],
  pausedForMs: 0,
  ...over,
});
const exhausted = { state: 'exhausted', reason: '402', untilMs: 0, sinceMs: 0, nextProbeAtMs: 0 } as const;
const refused = { state: 'held', reason: '401', sinceMs: 0 } as const;

describe('progressNote', () => {
  it('says why an account is held, paused, or running on provider keys', () => {
    expect(progressNote([state({})])).toBe('');
    expect(
      progressNote([state({ paused: true, holdReason: 'HF router closed: 402', credits: exhausted })]),
    ).toBe('held: credits out');
    expect(
      progressNote([
        state({
          paused: true,
          holdReason: 'x',
          credits: exhausted,
          keys: [{ provider: 'together', credits: refused }],
        }),
      ]),
    ).toBe('held: credits out, provider key revoked');
    expect(progressNote([state({ paused: true, holdReason: 'x', credits: refused })])).toBe(
      'held: HF token refused',
    );
    expect(
      progressNote([
        state({ paused: true, holdReason: 'estimated HF spend $1.0000 reached the monthly budget $1; more' }),
      ]),
    ).toBe('held: estimated HF spend $1.0000 reached the monthly budget $1');
    expect(progressNote([state({ paused: true })])).toBe('paused');
    expect(progressNote([state({ pausedForMs: 2_400 })])).toBe('paused 3 s (Retry-After)');
    expect(progressNote([state({ credits: exhausted })])).toBe('credits out: via provider keys');
    expect(
      progressNote([
        state({ account: 'a', paused: true, holdReason: 'x', credits: exhausted }),
        state({ account: 'b' }),
        state({ account: 'c', pausedForMs: 1_000 }),
      ]),
    ).toBe('a held: credits out; c paused 1 s (Retry-After)');
  });
});

describe('progress line state, read from Redis as hfq status reads it', () => {
  const prefix = testPrefix('note');
  const tokens = {
    broke: 'hf_note_broke_0123456789abcdef',
    waiter: 'hf_note_waiter_0123456789abcdef',
    revokedKey: 'tg-note-revoked-key',
  };
  const accounts: AccountConfigInput[] = [
    {
      id: 'broke',
      tier: 'pro',
      hfToken: tokens.broke,
      providerKeys: { together: tokens.revokedKey },
      fallbackProviders: ['together'],
    },
    { id: 'waiter', tier: 'pro', hfToken: tokens.waiter },
  ];
  const dir = mkdtempSync(join(tmpdir(), 'hfq-note-'));
  let sim: Sim;
  let worker: HfqWorker;
  let admin: Redis;

  beforeAll(async () => {
    admin = adminRedis();
    sim = await startSim({ latency: { baseMs: 0, jitterMs: 0 } });
    // No HF credits, and a provider key that was revoked: the account is held.
    sim.setToken(tokens.broke, { label: 'broke', credits: { balanceUsd: 0, costPerRequestUsd: 0.001 } });
    sim.setToken(tokens.revokedKey, { label: 'revoked', revoked: true });
    // A 429 saying "retry after 60 s": the router domain pauses.
    sim.setToken(tokens.waiter, { label: 'waiter' });
    sim.script(tokens.waiter, [{ status: 429, retryAfter: 60 }]);
    worker = await createWorker({
      connection: redisUrl(),
      prefix,
      accounts,
      upstream: upstreamOf(sim),
      logger: createLogger({ level: 'silent' }),
      cockpitFlushMs: 60_000,
    });
  });

  afterAll(async () => {
    await worker?.close();
    await sim?.close();
    rmSync(dir, { recursive: true, force: true });
    await expectNoClientsLeft(admin, prefix);
    await admin.quit();
  });

  it('held by credits and a revoked key, paused for a Retry-After: the notes say so', async () => {
    const producer = createProducer({ connection: redisUrl(), prefix });
    // Read-only, as `hfq enqueue` reads it: no local accounts, only what the worker published.
    const ops = createAdmin({ connection: redisUrl(), prefix });
    try {
      const [brokeModel, waiterModel] = [
        perJobModels(sim, 'note-broke', 1)[0],
        perJobModels(sim, 'note-wait', 1)[0],
      ];
      await producer.enqueue(chatFor('broke', brokeModel as string));
      await producer.enqueue(chatFor('waiter', waiterModel as string));
      let note = '';
      await waitFor(async () => {
        note = progressNote(await ops.runStates(['broke', 'waiter']));
        return note.includes('broke held') && note.includes('waiter paused');
      }, 'both accounts held back');
      expect(note).toMatch(
        /^broke held: credits out, provider key revoked; waiter paused (59|60) s \(Retry-After\)$/,
      );
    } finally {
      await producer.close();
      await ops.close();
    }
  });

  it('hfq enqueue --wait shows it on the progress line', async () => {
    const file = join(dir, 'jobs.jsonl');
    const [model] = perJobModels(sim, 'note-cli', 1);
    writeFileSync(file, `${JSON.stringify(chatFor('broke', model as string))}\n`);
    const cli = HfqProcess.start(['enqueue', file, '--wait'], { REDIS_URL: redisUrl(), HFQ_PREFIX: prefix });
    try {
      const line = await cli.waitForLine((l) => l.includes('held: credits out, provider key revoked'));
      expect(line).toMatch(
        /enqueued 1\/1 {2}done 0 {2}failed 0 .* {2}held: credits out, provider key revoked$/,
      );
    } finally {
      await cli.stop('SIGINT');
    }
  });
});
