import { randomUUID } from 'node:crypto';
import { learnedNoise, withDetector } from './congestion-detector.js';
import type {
  AcquireInput,
  AcquireResult,
  DomainLimiterOptions,
  DomainRef,
  DomainState,
  LimiterOptions,
  OverrideOutcome,
  SetOverrideOptions,
  ThrottleOutcome,
} from './domain-limiter-types.js';
import { primaryOf } from './domain-limiter-types.js';
import { rateChangesOf } from './rate-change.js';
import { isCluster, type RedisClient } from './redis-cluster.js';
import { luaSource, RedisScript, type ScriptArg } from './redis-script.js';
import { redisTimeMs } from './redis-time.js';
import { sleep } from './sleep.js';
import { domainStateKey, hashTagOf } from './state-keys.js';

/**
 * The precise limiter of a rate-limit domain: never more than N requests in any
 * sliding window W, summed over every worker process, with Redis TIME as the clock. It also
 * holds the domain's learned rate and its 429 pause (README, "How the rate limit holds" and "What a 429 means"). The atomic parts
 * are Lua scripts beside this file; see their headers for the contract.
 */

const CREDIT_REFUSAL = luaSource('credit-refusal.lua');
const ACQUIRE = new RedisScript(withDetector('acquire-permit.lua'));
/** The credit check in front of the permit, one script (see acquire-permit-with-credit.lua's header). */
const ACQUIRE_WITH_CREDIT = new RedisScript(
  withDetector('acquire-permit.lua', `${CREDIT_REFUSAL}\n`, luaSource('acquire-permit-with-credit.lua')),
);
const RECORD_429 = new RedisScript(withDetector('record-429.lua'));
const CHECK_CREDIT = new RedisScript(`${CREDIT_REFUSAL}\n${luaSource('check-credit.lua')}`);

/** Every key of a domain but the override expires this long after its last write. */
const STATE_TTL_MS = 30 * 86_400_000;

/** A commit that must wait this little more keeps its slot; a longer wait (a pause) reserves anew. */
const COMMIT_RETRY_MS = 20;
/**
 * A reserved request that waits longer than one primary window (within these bounds) asks its
 * slot's time again halfway: the rate may have changed since, and the slots ahead move with it
 * (acquire-permit.lua, "Reserved slots follow the rate"). Only while the learned rate may rise
 * (below the configured limit or the operator's, whichever is higher); a wait within one window
 * costs no extra call, a wait of ten windows four.
 */
const RECHECK_MIN_MS = 250;
const RECHECK_MAX_MS = 5_000;

/** Sends this close to their permit never need their stamp moved, whatever the window. */
const MIN_LATE_SEND_MS = 3;

export class DomainLimiter {
  /** Any keys may share a script (a standalone Redis): the credit check always runs inside the permit. */
  private readonly oneNode: boolean;
  private readonly options: Required<LimiterOptions> & Pick<DomainLimiterOptions, 'onRateChange'>;

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    options: DomainLimiterOptions = {},
  ) {
    this.options = {
      marginRatio: 0.015,
      maxReserveMs: 10_000,
      increaseRatio: 0.02,
      quietMs: 10_000,
      beta: 0.7,
      random: Math.random,
      audit: false,
      auditMax: 100_000,
      auditTtlMs: 86_400_000,
      ...options,
    };
    this.oneNode = !isCluster(redis);
  }

  /** Additive increase of the learned rate per clean window, in requests. */
  private increaseStep(ceiling: number): number {
    return Math.max(1, ceiling * this.options.increaseRatio);
  }

  /**
   * The domain's keys. All expire (refreshed on every write) except `override`, the operator's
   * `hfq limit`, which is permanent by design.
   */
  keys(domainId: string) {
    const base = domainStateKey(this.prefix, domainId);
    return {
      state: base,
      override: `${base}:override`,
      audit: `${base}:audit`,
      log429: `${base}:429`,
      /** A request window's sliding log (ZSET). */
      window: (i: number) => `${base}:w${i}`,
      /** A token window's bucket ring (HASH). */
      tokenWindow: (i: number) => `${base}:t${i}`,
    };
  }

  /**
   * Take a permit: resolves when the request may be sent now (`admitted`), or when it should
   * not wait inside the worker (`wait`: a long pause), or when the gate or budget says no.
   */
  async acquire(input: AcquireInput): Promise<AcquireResult> {
    const { domain } = input;
    const keys = this.keys(domain.id);
    const uid = randomUUID();
    const primary = primaryOf(domain.windows);
    const step = this.increaseStep(primary.max);
    const windowArgs: (string | number)[] = [];
    for (const w of domain.windows) {
      if ('max' in w) windowArgs.push('r', w.max, w.durationMs, 1);
      else windowArgs.push('t', w.tokens, w.durationMs, Math.max(1, Math.round(input.tokens ?? 1)));
    }
    const windowKeys = domain.windows.map((w, i) => ('max' in w ? keys.window(i) : keys.tokenWindow(i)));
    let mode: 'reserve' | 'commit' = 'reserve';
    /** The slot this request reserved, while it holds one. */
    let slot = -1;
    let waitedMs = 0;
    const maxReserve = input.maxWaitMs ?? this.options.maxReserveMs;
    const recheckMs = Math.min(RECHECK_MAX_MS, Math.max(RECHECK_MIN_MS, primary.durationMs));
    // The credit check runs inside the permit script where its keys may share one with the
    // domain's; on a Redis Cluster with other tags, it is a call of its own right before.
    const folded = this.creditFolds(input, keys.state);
    const budgeted = input.ledgerField !== undefined && input.budgetUsd !== undefined;
    // The ledger only when a budget applies: a key the script does not need must not bind its slot.
    const creditKeys = budgeted ? [input.gateKey, input.ledgerKey] : [input.gateKey];
    const creditArgs = [input.appNowMs, input.ledgerField ?? '', input.budgetUsd ?? ''];
    for (;;) {
      if (!folded) {
        const refused = await this.checkCredit(input);
        if (refused) return refused;
      }
      const permitKeys = [keys.state, keys.override, keys.audit, ...windowKeys];
      const permitArgs: (string | number)[] = [
        mode === 'commit' && slot >= 0 ? `commit@${slot}` : mode,
        uid,
        this.options.marginRatio,
        maxReserve,
        step,
        this.options.quietMs,
        this.options.audit ? this.options.auditMax : 0,
        this.options.auditTtlMs,
        domain.windows.length,
        ...windowArgs,
      ];
      const reply = folded
        ? await ACQUIRE_WITH_CREDIT.run<(string | number)[]>(
            this.redis,
            [...permitKeys, ...creditKeys],
            [...permitArgs, ...creditArgs],
          )
        : await ACQUIRE.run<(string | number)[]>(this.redis, permitKeys, permitArgs);
      const refused = creditRefusal(reply);
      if (refused) return refused;
      this.reportChanges(domain.id, reply, 6);
      const waitMs = Number(reply[1]);
      if (waitMs === 0) {
        return { kind: 'admitted', sentAt: Number(reply[2]), uid, primaryLimit: Number(reply[3]), waitedMs };
      }
      const held = Number(reply[4]);
      // A slot already held is kept even when a cut made its wait longer than `maxReserve`: given
      // up, nobody would use it, and the slots after it could not be reserved until it passed.
      if (waitMs > maxReserve && held < 0) return { kind: 'wait', waitMs, waitedMs };
      // A long wait for a held slot is slept in halves (at least a window): the slot's time moves
      // with the rate, and a raise of up to twice is found before the slot's new time. At the
      // highest limit the rate cannot rise (a cut moves the slot later, found when it comes).
      const mayRise = Number(reply[5]) === 1;
      const sleptMs =
        held >= 0 && mayRise && waitMs > recheckMs ? Math.max(recheckMs, Math.ceil(waitMs / 2)) : waitMs;
      await sleep(sleptMs, input.signal);
      waitedMs += sleptMs;
      // A held slot is committed when it comes (or waits for room in a full window); a slot lost
      // to a pause reserves again, so requests released together keep their spacing.
      if (held >= 0) {
        slot = held;
        mode = 'commit';
      } else {
        slot = -1;
        mode = mode === 'reserve' || waitMs <= COMMIT_RETRY_MS ? 'commit' : 'reserve';
      }
    }
  }

  /**
   * Whether the credit check can run inside the permit script: always on a standalone Redis; on a
   * Redis Cluster when the gate (and the ledger, when a budget applies) carry the domain's tag.
   */
  private creditFolds(input: AcquireInput, stateKey: string): boolean {
    if (this.oneNode) return true;
    const tag = hashTagOf(stateKey);
    const budgeted = input.ledgerField !== undefined && input.budgetUsd !== undefined;
    return hashTagOf(input.gateKey) === tag && (!budgeted || hashTagOf(input.ledgerKey) === tag);
  }

  /**
   * The credit check before each permit attempt where it cannot run inside it (check-credit.lua): the gate and the budget live
   * under the credit scope's hash tag, the permit under the domain's, so they are two steps (see
   * docs/redis-cluster.md, 'State shared across units'). A gate and a ledger of one tag are read
   * in one call; of two tags (a provider key's gate, the account's ledger), in two at once.
   */
  private async checkCredit(input: AcquireInput): Promise<AcquireResult | undefined> {
    const budgeted = input.ledgerField !== undefined && input.budgetUsd !== undefined;
    const args = [input.appNowMs, input.ledgerField ?? '', input.budgetUsd ?? ''];
    const calls =
      budgeted && hashTagOf(input.gateKey) === hashTagOf(input.ledgerKey)
        ? [this.checkCreditScript([input.gateKey, input.ledgerKey], ['gl', ...args])]
        : [
            this.checkCreditScript([input.gateKey], ['g', ...args]),
            ...(budgeted ? [this.checkCreditScript([input.ledgerKey], ['l', ...args])] : []),
          ];
    for (const reply of await Promise.all(calls)) {
      const refused = creditRefusal(reply);
      if (refused) return refused;
    }
    return undefined;
  }

  private checkCreditScript(keys: string[], args: ScriptArg[]): Promise<(string | number)[]> {
    return CHECK_CREDIT.run(this.redis, keys, args);
  }

  /**
   * A 429 reached this domain: let the detector say what it means (`congestion-detector.ts`).
   * A stated wait (`statedDelayMs`) pauses the domain; congestion lowers the rate once per episode.
   */
  async record429(
    domain: DomainRef,
    sentAt: number,
    statedDelayMs: number | undefined,
  ): Promise<ThrottleOutcome> {
    const keys = this.keys(domain.id);
    const primary = primaryOf(domain.windows);
    const primaryIndex = domain.windows.findIndex((w) => 'max' in w);
    const reply = await RECORD_429.run<number[]>(
      this.redis,
      [keys.state, keys.log429, keys.window(Math.max(0, primaryIndex)), keys.override],
      [
        sentAt,
        statedDelayMs ?? -1,
        primary.max,
        primary.durationMs,
        this.options.marginRatio,
        randomUUID(),
        this.increaseStep(primary.max),
        this.options.beta,
      ],
    );
    this.reportChanges(domain.id, reply, 7);
    return {
      verdict: Number(reply[0]) === 1 ? 'congestion' : 'noise',
      pauseMs: Number(reply[1]),
      rate: Number(reply[2]) / 1000,
      episodes: Number(reply[3]),
      newEpisode: Number(reply[4]) === 1,
      noiseLevel: Number(reply[5]) / 1e6,
      noiseEvidenceSends: Number(reply[6]),
    };
  }

  /** The rate changes a script appended to its reply from `from` on, to `onRateChange`. */
  private reportChanges(domainId: string, reply: (string | number)[], from: number): void {
    const report = this.options.onRateChange;
    if (report) for (const change of rateChangesOf(domainId, reply, from)) report(change);
  }

  /**
   * A request left later than its admission (a slow first call, a busy event loop): move its
   * entry in every window log to the real send time, so the requests admitted after it keep
   * their distance from when it really reached the upstream. Token windows need no
   * move: their buckets count every send for a bucket length longer than the window (see
   * acquire-permit.lua).
   */
  async recordLateSend(domain: DomainRef, uid: string, sentAt: number): Promise<void> {
    const keys = this.keys(domain.id);
    // No MULTI: each ZADD XX only moves an entry of its own window and stands alone. Under load a
    // third of sends are late, and an ioredis transaction cost each a Pipeline object (one closure
    // per defined script) and two more commands (bench:load).
    await Promise.all(
      domain.windows.flatMap((w, i) =>
        'max' in w ? [this.redis.zadd(keys.window(i), 'XX', sentAt, uid)] : [],
      ),
    );
  }

  /**
   * How much later than its permit a request may leave before `recordLateSend` must move its
   * stamp: a quarter of the margin of the domain's shortest window (3 ms at least). Every send is
   * at or after its stamp, so sends at most this late fall in any window W of real time only if
   * their stamps fall in W plus this much, which the limiter's span (W plus the whole margin)
   * already counted. The rest of the margin covers what the worker cannot see: the permit's reply
   * reaching it, and the network to the upstream (bench:limits 1b counted 51 in a window at half).
   */
  lateSendToleranceMs(domain: DomainRef): number {
    const shortest = Math.min(...domain.windows.map((w) => w.durationMs));
    return Math.max(MIN_LATE_SEND_MS, Math.floor((shortest * this.options.marginRatio) / 4));
  }

  /** Set the learned rate directly (from upstream rate headers), capped at the ceiling. */
  async setRate(domain: DomainRef, rate: number): Promise<void> {
    const ceiling = primaryOf(domain.windows).max;
    const key = this.keys(domain.id).state;
    await this.redis
      .multi()
      .hset(key, 'rate', String(Math.max(1, Math.min(ceiling, rate))))
      .pexpire(key, STATE_TTL_MS)
      .exec();
  }

  /**
   * Change a domain's primary limit at run time: every worker applies it on its next permit. The
   * override has a key of its own that never expires (an operator's decision outlives any idle
   * spell) unless `forMs` is given: then it lapses by itself after that long and the configured
   * limit is back in force; `limit: undefined` deletes it. What was learned restarts from the new
   * limit (the learned rate, a cut under test, the probes, the noise evidence, the 429 counts), but
   * a running stated wait (`pausedUntil`, a Retry-After) is kept: the upstream said when it will
   * take requests again, and no limit changes that. The permits already reserved are kept too, and
   * move to the new limit's spacing. Says what it did (`OverrideOutcome`).
   */
  async setOverride(domainId: string, options: SetOverrideOptions): Promise<OverrideOutcome> {
    const { limit } = options;
    const keys = this.keys(domainId);
    // What was in force before, for the line the next permit reports (acquire-permit.lua), and
    // the pause to keep; then the new state in one transaction, the pause compared with Redis time.
    const [[, fields], [, oldOverride], [, time]] = (await this.redis
      .multi()
      .hmget(keys.state, 'rate', 'pausedUntil', 'tat', 'slotK', 'spc')
      .get(keys.override)
      .time()
      .exec()) as [[unknown, (string | null)[]], [unknown, string | null], [unknown, [string, string]]];
    const [oldRate, oldPause, tat, slotK, spc] = fields;
    const nowMs = Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000);
    const pausedUntil = Number(oldPause ?? 0) > nowMs ? Number(oldPause) : 0;
    // The permit reads the override from its copy in the state (`ovr`, and `ovrUntil` in Redis
    // time for one that lapses), written here with the key, so a permit costs no GET of it.
    const ovrUntil = limit !== undefined && options.forMs !== undefined ? nowMs + options.forMs : 0;
    const multi = this.redis
      .multi()
      .del(keys.state)
      .hset(keys.state, 'ovrFrom', oldOverride ?? '', 'ovrRate', oldRate ?? '')
      .hset(keys.state, 'ovr', limit === undefined ? '' : String(limit), 'ovrUntil', String(ovrUntil));
    if (pausedUntil > 0) multi.hset(keys.state, 'pausedUntil', String(pausedUntil));
    // The slots already given out keep their numbers and times: the next permit spreads them
    // again at the new limit's spacing (acquire-permit.lua, "Reserved slots follow the rate").
    if (tat && slotK && spc) multi.hset(keys.state, 'tat', tat, 'slotK', slotK, 'spc', spc);
    multi.pexpire(keys.state, STATE_TTL_MS);
    if (limit === undefined) multi.del(keys.override);
    else if (options.forMs !== undefined) multi.set(keys.override, String(limit), 'PX', options.forMs);
    else multi.set(keys.override, String(limit));
    await multi.exec();
    const num = (v: string | null | undefined) => (v == null || v === '' ? undefined : Number(v));
    return {
      previousRate: num(oldRate),
      previousOverride: num(oldOverride),
      keptPausedUntil: pausedUntil,
      cleared: ['learned rate', 'cut under test', 'probes', 'noise evidence', '429 counts'],
    };
  }

  /** Admission times recorded with `audit: true`, in Redis ms (the newest `auditMax`). */
  async auditLog(domainId: string): Promise<number[]> {
    return (await this.redis.lrange(this.keys(domainId).audit, 0, -1)).map(Number);
  }

  async state(domainId: string): Promise<DomainState> {
    const keys = this.keys(domainId);
    // pausedUntil and the 429 log are Redis times: read them against Redis's clock, not this host's.
    const nowMs = await redisTimeMs(this.redis);
    const [[, fields], [, override], [, count], [, overrideTtl]] = (await this.redis
      .multi()
      .hmget(keys.state, 'rate', 'pausedUntil', 'episodes', 'noiseT', 'noiseA', 'noiseAt', 'noiseHl')
      .get(keys.override)
      .zcount(keys.log429, nowMs - 300_000, '+inf')
      .pttl(keys.override)
      .exec()) as [
      [unknown, (string | null)[]],
      [unknown, string | null],
      [unknown, number],
      [unknown, number],
    ];
    const num = (v: string | null | undefined) => (v == null ? undefined : Number(v));
    const noise = learnedNoise(
      { t: num(fields[3]), a: num(fields[4]), at: num(fields[5]), halfLifeMs: num(fields[6]) },
      nowMs,
    );
    return {
      rate: num(fields[0]),
      override: num(override),
      overrideUntilMs: override !== null && overrideTtl > 0 ? Date.now() + overrideTtl : undefined,
      pausedUntil: num(fields[1]) ?? 0,
      pausedForMs: Math.max(0, (num(fields[1]) ?? 0) - nowMs),
      episodes: num(fields[2]) ?? 0,
      noiseShare: noise?.inForce ? noise.share : undefined,
      noise,
      recent429s: count,
    };
  }
}

/** A credit refusal in a script's reply (credit-refusal.lua): 2 the gate is closed, 3 the budget is reached. */
function creditRefusal(reply: (string | number)[]): AcquireResult | undefined {
  const code = Number(reply[0]);
  if (code === 2) return { kind: 'gate', reason: String(reply[1]), untilMs: Number(reply[2]) };
  if (code === 3) return { kind: 'budget', spentUsd: Number(reply[1]) };
  return undefined;
}
