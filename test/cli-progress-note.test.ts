import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AccountConfigInput } from '@hfq/shared';
import type { AccountRunState } from '@hfq/worker';
import { beforeEach, describe, expect, it } from 'vitest';
import { progressNote } from '../packages/cli/src/progress-note.js';
import { chatFor, perJobModels } from './support/faults.js';
import { HfqProcess } from './support/processes.js';
import { redisUrl } from './support/redis.js';
import { type Stack, startStack } from './support/stack.js';
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
  it("names a held or paused lane other than the router's, with its reason", () => {
    const lane = (over: Record<string, unknown>) => ({
      lane: 'router',
      paused: false,
      holdReason: undefined,
      pausedForMs: 0,
      ...over,
    });
    expect(
      progressNote([
        state({
          lanes: [
            lane({}),
            lane({
              lane: 'endpoint.emb',
              paused: true,
              holdReason: 'endpoint emb unavailable (routing endpoint-only): paused; retry later',
            }),
            lane({ lane: 'router.together', pausedForMs: 2_500 }),
          ],
        }),
      ]),
    ).toBe(
      'lane endpoint.emb held: endpoint emb unavailable (routing endpoint-only): paused; lane router.together paused 3 s (Retry-After)',
    );
    expect(progressNote([state({ lanes: [lane({})] })])).toBe('');
  });

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
    expect(progressNote([state({ paused: true })])).toBe('paused (hfq queue resume acme)');
    expect(progressNote([state({})], ['acme'])).toBe(
      'no live worker serves acme (a mistyped account? see hfq status)',
    );
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
  let stack: Stack;

  beforeEach(async () => {
    stack = await startStack({
      label: 'note',
      sim: { latency: { baseMs: 0, jitterMs: 0 } },
      tokens: {
        // No HF credits, and a provider key that was revoked: the account is held.
        [tokens.broke]: { label: 'broke', credits: { balanceUsd: 0, costPerRequestUsd: 0.001 } },
        [tokens.revokedKey]: { label: 'revoked', revoked: true },
        [tokens.waiter]: { label: 'waiter' },
      },
      accounts,
    });
    // A 429 saying "retry after 60 s": the router domain pauses.
    stack.sim.script(tokens.waiter, [{ status: 429, retryAfter: 60 }]);
    await stack.startWorker({ cockpitFlushMs: 60_000 });
  });

  it('held by credits and a revoked key, paused for a Retry-After: the notes say so', async () => {
    const { sim } = stack;
    const producer = stack.producer;
    // Read-only, as `hfq enqueue` reads it: no local accounts, only what the worker published.
    const ops = stack.newAdmin([]);
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
  });

  it('hfq enqueue --wait shows it on the progress line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hfq-note-'));
    stack.defer(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'jobs.jsonl');
    const [model] = perJobModels(stack.sim, 'note-cli', 1);
    writeFileSync(file, `${JSON.stringify(chatFor('broke', model as string))}\n`);
    const cli = HfqProcess.start(['enqueue', file, '--wait'], {
      REDIS_URL: redisUrl(),
      HFQ_PREFIX: stack.prefix,
    });
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
