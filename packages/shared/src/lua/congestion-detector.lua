--[[
  What a 429 means: congestion (hfq's own rate caused it) or noise (the provider is busy, a stray
  refusal). Shared part, composed at load time in front of acquire-permit.lua and record-429.lua;
  it touches only the domain state hash (KEYS[1] of both) and, from record-429.lua, the logs
  passed in. See congestion-detector.ts for the rule in words, and docs in README ("What a 429
  means").

  State in the domain state hash D (fields):
    b<i> s<i> t<i>   a ring of DET.RING time buckets (bucket number, sends admitted, 429s answered
                     to sends of that bucket), by send time, bucket = a quarter of the primary window
    noiseT noiseA noiseAt noiseHl   the evidence behind the domain's noise level (429s and sends, decayed
                     to noiseAt, capped; noiseHl its half-life in ms): the level in force is noiseT / noiseA once the
                     evidence, decayed to now, reaches DET.NOISE_MIN_SENDS (det_noise_at)
    calmUntil        429s of requests sent before this belong to the last cut's episode
    ckFrom ckTo ckAt ckUntil ckK ckA ckT   a cut under test: rate before and after, when, when the
                     test ends, the 429s / sends that caused it, the limit estimate it cut to
    recTo recAt      fast recovery: go back to recTo at recAt if no cut came in between
    blipAt blipRate  the last blip (an episode at a small 429 share): a second one is tested
    chainFrom        the rate before the first cut of a chain (a test that ended by cutting again)
    ckLast           the figures of the last test's end (for an operator reading the hash)
    top topMiss      the highest rate that held (none: the ceiling is the target of probes back),
                     and how many probes back failed
    probeMiss        missed probes in a row (answered with a stated wait, or, at a few requests a
                     second, past every rate that held): each doubles the quiet time
    measuredCut      1 when the last cut measured the limit (its first probe waits PROBE_SENDS
                     sends): a stated wait's to what got through, or a test that confirmed
                     congestion at a few requests a second toward a ceiling that never held
    probeFrom probeAt   the rate a climb started from and when: a probe that finds the edge goes
                     back to it, and its 429s are compared with the share before the climb
    rateSince        when the rate last changed; raiseStep: the last raise (doubles toward top)
]]
local DET = {
  -- Ten windows: the lookback before a cut and the longest test after it.
  RING = 40,
  -- The congestion test looks at the last 2 windows (8 buckets) of sends.
  LOOKBACK = 8,
  -- Noise share assumed before any was measured, and when what was measured is forgotten.
  PRIOR = 0.002,
  -- Noise evidence halves every NOISE_HALF_LIFE_WINDOWS windows, is capped at NOISE_CAP_SENDS
  -- sends, and sets the level only from NOISE_MIN_SENDS on. The cap is twice the minimum, so a
  -- level is forgotten within one half-life after its last evidence, however much there was: a
  -- busy spell cannot hide the congestion of the next regime for longer. Thirty windows (30 s
  -- at 1-s windows) are several tests long, so a steady noise is measured again (one test, a few
  -- windows at a lower rate) at most about once a half-life.
  NOISE_HALF_LIFE_WINDOWS = 30,
  NOISE_MIN_SENDS = 40,
  NOISE_CAP_SENDS = 80,
  -- A climb's 429 share is above the share before it when a one-sided Fisher exact test gives
  -- less than this (noise does not depend on the rate: the climb found the edge).
  PROBE_P = 0.01,
  -- Above this many sends in both periods the test is the normal approximation (see det_rose).
  PROBE_EXACT_MAX = 1000,
  -- A share this many standard deviations above a learned noise level over RETEST_LOOKBACK buckets,
  -- at a steady or falling admitted rate (at most RETEST_GROWTH times the sends of the lookback
  -- before), is tested again: the level was learned in another regime.
  RETEST_Z = 2,
  RETEST_LOOKBACK = 16,
  RETEST_GROWTH = 1.1,
  -- A cut from a window full of history and of sends at the rate may go below FLOOR, to what
  -- the upstream let through, but never below DEEP_FLOOR of the rate.
  DEEP_FLOOR = 0.2,
  -- 429s more than Z standard deviations above the noise level are congestion (with at least
  -- MIN_SENDS sends in the lookback, or a wall).
  Z = 3,
  MIN_SENDS = 10,
  -- A run of 429s with nothing let through, this unlikely under the noise level, is a wall.
  WALL_P = 0.001,
  -- A cut under test lowers the rate to the upstream's estimated limit, within these shares.
  FLOOR = 0.4,
  CEIL = 0.9,
  -- The shallowest tested cut, for a small share (under half of BLIP_SHARE).
  SMALL_CUT = 0.95,
  -- The test measures at least EVAL_WINDOWS after the settle span (one window plus margin), at
  -- most MAX_EVAL_WINDOWS after the cut.
  EVAL_WINDOWS = 1,
  MAX_EVAL_WINDOWS = 8,
  -- A test decides when one prediction explains the 429s this much better (log-likelihood, e^1.5 = 4.5x).
  DECIDE_LLR = 1.5,
  -- An episode whose 429 share was below this is a blip near the limit: recover fast.
  BLIP_SHARE = 0.1,
  RECOVER_WINDOWS = 2,
  REPEAT_MS = 60000,
  -- A rate in force this many windows without a cut held; probes back to it start after
  -- RETURN_QUIET windows (twice that after a failed probe, never giving up), the first step
  -- RETURN_FIRST_SHARE of the way back, then doubling steps.
  HELD_WINDOWS = 5,
  RETURN_QUIET_WINDOWS = 3,
  RETURN_FIRST_SHARE = 0.15,
  -- After a probe answered with a stated wait, the next is at least this many sends away at the
  -- rate in force (then doubled per such miss in a row): a missed probe costs at least a 429.
  PROBE_SENDS = 50,
  -- Each probe in a row answered with a stated wait doubles the quiet time, up to 2^this times.
  STATED_BACKOFF_MAX = 3,
  -- The primary window's margin is at least this share of the spacing between sends (a limit of
  -- 3 per second keeps 33 ms free; from 7 per second on, the margin ratio is larger anyway).
  LOW_RATE_MARGIN = 0.1,
  TTL_MS = 30 * 86400000,
}

-- Changes of the learned rate this call made, for the caller's log: groups of reason, rate before
-- and after (× 1000, whole numbers), and a note. Appended to the script's reply (det_reply).
local DET_CHANGES = {}

-- Record a change (`force`: even when the rate stayed, as an operator's override does).
local function det_changed(reason, from, to, note, force)
  if from == to and not force then return end
  DET_CHANGES[#DET_CHANGES + 1] = reason
  DET_CHANGES[#DET_CHANGES + 1] = math.floor(from * 1000)
  DET_CHANGES[#DET_CHANGES + 1] = math.floor(to * 1000)
  DET_CHANGES[#DET_CHANGES + 1] = note or ''
end

-- The script's reply with the changes appended.
local function det_reply(reply)
  for _, v in ipairs(DET_CHANGES) do reply[#reply + 1] = v end
  return reply
end

local function det_bucket_ms(durationMs)
  return math.max(50, math.floor(math.min(durationMs, 60000) / 4))
end

local function det_slot(k)
  return k % DET.RING
end

-- Sends, 429s, buckets with sends, and the most sends in one bucket over buckets [fromK, toK]
-- (at most DET.RING of them).
local function det_sum(D, fromK, toK)
  if toK < fromK then return 0, 0, 0 end
  if toK - fromK >= DET.RING then fromK = toK - DET.RING + 1 end
  local fields = {}
  for k = fromK, toK do
    local s = det_slot(k)
    fields[#fields + 1] = 'b' .. s
    fields[#fields + 1] = 's' .. s
    fields[#fields + 1] = 't' .. s
  end
  local v = redis.call('HMGET', D, unpack(fields))
  local A, T, used, peak = 0, 0, 0, 0
  local i = 1
  for k = fromK, toK do
    if tonumber(v[i] or '-1') == k then
      local sends = tonumber(v[i + 1] or '0')
      A = A + sends
      T = T + tonumber(v[i + 2] or '0')
      if sends > 0 then used = used + 1 end
      if sends > peak then peak = sends end
    end
    i = i + 3
  end
  return A, T, used, peak
end

-- log C(n, r)
local function det_lchoose(n, r)
  if r < 0 or r > n then return -math.huge end
  r = math.min(r, n - r)
  local v = 0
  for i = 1, r do v = v + math.log(n - r + i) - math.log(i) end
  return v
end

-- Did the share rise from T0 429s in A0 sends to T1 in A1, beyond chance if both came from one
-- share? One-sided Fisher exact test (the chance of T1 or more of the T0 + T1 429s falling among
-- the A1 later sends), below DET.PROBE_P.
local function det_rose(A0, T0, A1, T1)
  A0, T0, A1, T1 = math.floor(A0), math.floor(T0), math.floor(A1), math.floor(T1)
  -- (More 429s than sends in a period is no share: a 429 counted twice.)
  if T1 < 2 or A0 < 1 or A1 < 1 or T0 > A0 or T1 > A1 then return false end
  local N, K = A0 + A1, T0 + T1
  if N > DET.PROBE_EXACT_MAX then
    -- Large counts: the two-proportion z-test (one-sided 1% is 2.33 standard errors), so a
    -- script at a thousand sends a second does not loop over them.
    local pooled = K / N
    local se = math.sqrt(math.max(pooled * (1 - pooled) * (1 / A0 + 1 / A1), 1e-12))
    return T1 / A1 - T0 / A0 > 2.33 * se
  end
  -- P(X = T1), then each next term by the ratio of neighbours (one pass, whatever the counts).
  local px = math.exp(det_lchoose(K, T1) + det_lchoose(N - K, A1 - T1) - det_lchoose(N, A1))
  local p = 0
  for x = T1, math.min(K, A1) do
    p = p + px
    px = px * (K - x) * (A1 - x) / ((x + 1) * (N - K - A1 + x + 1))
  end
  return p < DET.PROBE_P
end

-- The log-likelihood ratio one send adds, on average, to the test between 429 shares p and q
-- (Poisson), under whichever of the two is true that tells them apart sooner.
local function det_kl(p, q)
  p, q = math.max(p, 1e-6), math.max(q, 1e-6)
  return math.max(p * math.log(p / q) - (p - q), q * math.log(q / p) - (q - p))
end

-- Is T 429s out of A sends more than chance allows at noise share b?
-- A few requests a second: fewer than MIN_SENDS sends a window at `rate`, where a window's counts
-- are a handful and the rules for probes and tests that assume more do not hold.
local function det_low_rate(rate)
  return rate < DET.MIN_SENDS
end

local function det_significant(A, T, b)
  if T < 2 then return false end
  local mean = A * b
  local sd = math.sqrt(math.max(A * b * (1 - b), 1e-9))
  return (T - 0.5 - mean) > DET.Z * sd
end

-- The domain's noise evidence decayed to `now`: 429s, sends (0, 0 when none was learned).
local function det_noise_evidence(D, now, durationMs)
  local v = redis.call('HMGET', D, 'noiseT', 'noiseA', 'noiseAt')
  local at = tonumber(v[3] or '')
  if not at then return 0, 0 end
  local f = 2 ^ (-math.max(0, now - at) / (DET.NOISE_HALF_LIFE_WINDOWS * durationMs))
  return tonumber(v[1] or '0') * f, tonumber(v[2] or '0') * f
end

-- The noise level a share of T 429s in A sends of evidence sets: the prior below the minimum.
local function det_noise_level(T, A)
  if A < DET.NOISE_MIN_SENDS then return DET.PRIOR end
  return math.max(DET.PRIOR, T / A)
end

-- The noise level in force at `now`, and the sends of evidence behind it (0: the prior).
local function det_noise_at(D, now, durationMs)
  local T, A = det_noise_evidence(D, now, durationMs)
  if A < DET.NOISE_MIN_SENDS then return DET.PRIOR, 0 end
  return det_noise_level(T, A), A
end

-- Add T 429s in A sends to the noise evidence (decayed first, then capped). Returns the note a
-- rate change reports: the level's 429s and sends ("12.0/80.0"), what a log line says it rests on.
local function det_learn_noise(D, now, durationMs, T, A)
  local oldT, oldA = det_noise_evidence(D, now, durationMs)
  local nT, nA = oldT + T, oldA + A
  if nA > DET.NOISE_CAP_SENDS then nT, nA = nT * DET.NOISE_CAP_SENDS / nA, DET.NOISE_CAP_SENDS end
  redis.call('HSET', D, 'noiseT', string.format('%.3f', nT), 'noiseA', string.format('%.3f', nA), 'noiseAt', now,
    'noiseHl', DET.NOISE_HALF_LIFE_WINDOWS * durationMs)
  return string.format('%.1f/%.1f', nT, nA)
end

-- Scale the noise evidence down (a regime change put the level in question).
local function det_doubt_noise(D, now, durationMs, factor)
  local T, A = det_noise_evidence(D, now, durationMs)
  if A <= 0 then return end
  redis.call('HSET', D, 'noiseT', string.format('%.3f', T * factor), 'noiseA', string.format('%.3f', A * factor),
    'noiseAt', now, 'noiseHl', DET.NOISE_HALF_LIFE_WINDOWS * durationMs)
end

-- Fields the counting of a send needs (read with the rest of the state by the caller).
local function det_send_fields(nowMs, B)
  local k = math.floor(nowMs / B)
  local s = det_slot(k)
  return k, 'b' .. s, 's' .. s, 't' .. s
end

--[[
  The end of a cut under test: did the 429 share follow the rate, as congestion does, or stay
  where it was, as noise does? Measured on the sends after the settle span (one window plus
  margin after the cut), against the share before the cut (counted again now that the 429s of
  its sends have all come back).
  - The share fell: congestion, the cut stays, unless the share before was small (a blip): the
    test was triggered by the very 429s that made that share look high, and noise falls back
    too, so the rate returns to the old one after RECOVER_WINDOWS and the counts add to the
    domain's noise level.
  - The share rose, beyond the noise level: the limit fell again during the test; congestion, and
    the next 429 cuts again (as does `early`, below).
  - The share held: the Poisson log-likelihood ratio of the 429 count under noise (the share
    stays) against congestion (the upstream lets through, per window, what it let through in the
    window before the cut) decides once it passes DECIDE_LLR either way. Noise: the rate goes back
    to what it was before the cut and the measured share becomes the domain's noise level.
    Neither yet: the test goes on for another window, up to MAX_EVAL_WINDOWS (at a small share,
    only while the sends that longest test would hold can still tell the two apart on average:
    det_kl); then, or at once when they cannot, the cut is undone (congestion was not shown) and
    the counts add to the noise level.
  Too little evidence yet (fewer sends than make three 429s likely under noise): another window.
  `early`: called on a 429 before the test's end; it ends the test only when the share already
  moved and is still above the noise level (the cut was not deep enough, or the limit fell
  again: congestion, cut again).
  Returns the rate in force after the test, whether the test ended, why the rate went back when
  it did ('noise', or 'undecided' when the longest test could not tell), and then the evidence
  the noise level now rests on (det_learn_noise's note).
]]
local function det_settle(D, now, B, durationMs, span, ceiling, rate, early)
  local ck = redis.call('HMGET', D, 'ckFrom', 'ckTo', 'ckAt', 'ckK', 'ckA', 'ckT', 'noiseT', 'noiseA',
    'noiseAt', 'blipAt', 'blipRate', 'ckProbe', 'top')
  local ckFrom, ckAt = tonumber(ck[1] or '0'), tonumber(ck[3] or '0')
  -- The share before the cut, counted again now that the 429s of its sends have all come back.
  local ckK = tonumber(ck[4] or '0')
  local ckA, ckT, ckUsed = det_sum(D, ckK - DET.LOOKBACK + 1, ckK)
  local b, learned = det_noise_at(D, now, durationMs)
  local fromK = math.floor((ckAt + span) / B) + 1
  local toK = math.floor(now / B) - (early and 0 or 1)
  local A, T, used = det_sum(D, fromK, toK)
  local sb = ckA > 0 and ckT / ckA or 0
  local sa = A > 0 and T / A or 0
  local pooled = (ckT + T) / math.max(1, ckA + A)
  local se = math.sqrt(math.max(pooled * (1 - pooled) * (1 / math.max(ckA, 1) + 1 / math.max(A, 1)), 1e-9))
  local fell = sb - sa > 2 * se
  -- A share that rose at the lower rate fits neither prediction: the limit fell again during
  -- the test (a moving limit). Congestion: the cut stays and the next 429 cuts again.
  local rose = sa - sb > 2 * se
  local above = det_significant(A, T, b)
  if early then
    -- Checked on every 429 while the test runs, so it asks for stronger evidence (3 standard
    -- errors, 20 sends) than the test's end does.
    if not (A >= 20 and math.abs(sb - sa) > 3 * se and above) then return rate, false end
    redis.call('HSET', D, 'chainFrom', tostring(ckFrom))
  elseif A * math.max(sb, 0.01) < 3 and now - ckAt < DET.MAX_EVAL_WINDOWS * durationMs + span then
    redis.call('HSET', D, 'ckUntil', now + durationMs, 'calmUntil', now + durationMs)
    return rate, false
  end
  redis.call('HDEL', D, 'ckFrom', 'ckTo', 'ckAt', 'ckK', 'ckUntil', 'ckA', 'ckT', 'ckProbe')
  if not early then redis.call('HDEL', D, 'chainFrom') end
  redis.call('HSET', D, 'ckLast', string.format('%s sb=%.3f(%d/%d) sa=%.3f(%d/%d) fell=%s rose=%s',
    early and 'early' or 'end', sb, ckT, ckA, sa, T, A, tostring(fell), tostring(rose)))
  if A < 5 or ckA < 1 or used < 1 or ckUsed < 1 then return rate, true end
  -- A share that went up at the lower rate, beyond chance under a noise level measured before:
  -- noise predicts the share stays, so the cut was not deep enough. (The share before the cut is
  -- no level to hold it to when the limit fell inside its lookback: the sends before the fall
  -- dilute it, and the window before the cut still let the old rate through.)
  -- (Only against a level really measured, above the prior, and on 20 sends or more.)
  local higher = learned > 0 and b > DET.PRIOR and A >= 20 and sa > sb and above
  if early or (rose and above) or higher then
    -- The cut was not deep enough, or the limit fell again: congestion, and the next 429 cuts again.
    redis.call('HSET', D, 'chainFrom', tostring(ckFrom))
    -- A level the share went beyond did not explain this regime's 429s (as below, when confirmed).
    if higher then det_doubt_noise(D, now, durationMs, 0.45) end
    return rate, true
  end
  if not fell then
    -- The share did not fall with the rate. Which prediction explains the 429s counted at the new
    -- rate: noise (the share stays) or congestion, which predicts that the upstream lets through,
    -- per window, what it let through in the window before the cut (a count: a young window at a
    -- cold start let a burst through, which is not a rate)? Poisson log-likelihood ratio.
    local perWindow = math.max(1, math.floor(durationMs / B + 0.5))
    local wA, wT = det_sum(D, ckK - perWindow + 1, ckK)
    -- (The sends a window at the new rate, from the buckets that had sends; at a few requests a
    -- second (under MIN_SENDS a window) never above the rate in force: there one bucket in four
    -- has none by chance, and counted as a pause it made 3/s look like 4/s; congestion then
    -- predicted half the sends refused where a third were, one 429 of thirteen read as noise,
    -- and the cut was undone back into the limit. Higher, sends above the rate are real: slots
    -- reserved at the old spacing.)
    local sendsPerWindow = A / used * perWindow
    if det_low_rate(rate) then sendsPerWindow = math.min(sendsPerWindow, math.max(rate, 1)) end
    local congestion = math.min(1, math.max(b, 1 - (wA - wT) / sendsPerWindow))
    local muN = math.max(0.05, A * math.max(b, sb))
    local muC = math.max(0.05, A * congestion)
    local llr = T * math.log(muN / muC) - (muN - muC)
    if llr >= DET.DECIDE_LLR then
      -- Noise: the rate goes back, and the measured share adds to the domain's noise evidence.
      local note = det_learn_noise(D, now, durationMs, ckT + T, ckA + A)
      local restored = math.min(ceiling, ckFrom)
      redis.call('HSET', D, 'rate', tostring(restored), 'rateSince', now - DET.HELD_WINDOWS * durationMs)
      return restored, true, 'noise', note
    end
    if llr > -DET.DECIDE_LLR then
      -- (Another window only while the longest test can still decide: when the two predictions
      -- are about the same small share, as when a cut for a little noise went to about what the
      -- upstream let through, the test would hold the rate down, and every raise back, for eight
      -- windows to no end.)
      -- (The sends to come at the rate of the buckets that had sends: a pause, or a worker
      -- restart, is no lower rate.)
      local endK = math.floor((ckAt + DET.MAX_EVAL_WINDOWS * durationMs + span) / B) - 1
      local reach = A + A / math.max(1, used) * math.max(0, endK - toK)
      -- (Only at small shares, where undoing a cut that was needed costs a few percent of 429s:
      -- at a large share a young test's two predictions may meet by chance, and the cut stays
      -- under test.)
      if now - ckAt < DET.MAX_EVAL_WINDOWS * durationMs + span
          and (math.max(muN, muC) >= DET.BLIP_SHARE * A or reach * det_kl(muN / A, muC / A) >= DET.DECIDE_LLR) then
        -- Neither explains the count clearly better yet: measure another window.
        redis.call('HSET', D, 'ckFrom', tostring(ckFrom), 'ckTo', ck[2] or tostring(rate), 'ckAt', ckAt, 'ckK', ckK,
          'ckProbe', ck[12] or '0', 'ckUntil', now + durationMs, 'calmUntil', now + durationMs)
        return rate, false
      end
      -- Still undecided after the longest test: congestion was not shown, so undo the cut, and
      -- count what was measured toward the noise level (else the same share draws the same test
      -- again); a congestion that is real will still draw the next verdict.
      local note = det_learn_noise(D, now, durationMs, ckT + T, ckA + A)
      local restored = math.min(ceiling, ckFrom)
      redis.call('HSET', D, 'rate', tostring(restored))
      return restored, true, 'undecided', note
    end
  end
  -- Congestion: the share fell with the rate (or congestion explains it far better). The cut stays.
  if sb < DET.BLIP_SHARE and ck[12] ~= '1' then
    -- A small share that fell: the test was triggered by the very 429s that made the share look
    -- high, so a share that falls back is what noise does too (regression to the mean). The rate
    -- goes back RECOVER_WINDOWS later, and the counts add to the noise level, so the same small
    -- share stops drawing tests. A limit just below the rate costs a few percent of 429s, retried.
    det_learn_noise(D, now, durationMs, ckT + T, ckA + A)
    redis.call('HSET', D, 'blipAt', now, 'blipRate', tostring(ckFrom), 'recTo', tostring(ckFrom),
      'recAt', now + DET.RECOVER_WINDOWS * durationMs)
  else
    -- Congestion confirmed: the noise level did not explain this regime's 429s. Its evidence drops
    -- below the minimum (even from the cap), so a level learned in another regime (a busy spell
    -- before the limit fell) is out of force until a test measures it again, and the 429s left
    -- after the cut are judged against the prior.
    det_doubt_noise(D, now, durationMs, 0.45)
    -- At a few requests a second (fewer than MIN_SENDS a window), below a ceiling that never held,
    -- the confirmed cut measured the limit as a stated wait's does: the first probe past it waits
    -- PROBE_SENDS sends (acquire-permit.lua). (A Free account's hidden 3/s under the tier's 5/s,
    -- no headers: a probe ten seconds after the cold start's cut cost two 429s of about thirty
    -- sends.) (Not below a rate that held: a limit that fell is probed back on schedule.)
    if det_low_rate(rate) and tonumber(ck[13] or '0') <= rate then
      redis.call('HSET', D, 'measuredCut', 1)
    end
  end
  return rate, true
end

--[[
  Cut the rate for a congestion verdict. `accepted` is what the upstream let through in the
  primary window before the throttled send, `young` says that window was not yet full of history
  (so a count is not yet a rate), `wall` that nothing got through since the first 429, `share`
  the 429 share that triggered the verdict, `deep` that the window was full of sends at the rate
  (so `accepted` measures the upstream, not a slow start): the cut may then go below FLOOR.
  `probeFloor`: the lowest a probe's cut goes (default beta of the probe).
  Returns the new rate and whether the cut is put under test (every cut but a probe's, which the
  raise it followed already tested).
]]
local function det_cut(rate, step, beta, accepted, young, share, wall, probing, deep, probeFloor)
  if probing then
    return math.max(1, math.max(probeFloor or rate * beta, math.min(rate - step, 0.95 * accepted))), false
  end
  local lowered
  if wall and not young then
    -- A window full of history walled off: the limit fell below it. Sure, so not tested.
    return math.max(1, rate * beta), false
  elseif wall then
    -- A young window says where the limit is (or, at a cold start, a run of noise: tested).
    lowered = accepted
  elseif young then
    -- A young window's count is no rate (and its 429s are still coming back): cut by the share.
    lowered = rate * (1 - 2 * share)
  else
    -- A small share is a small overshoot (or noise): a small cut tells them apart as well.
    lowered = math.max(accepted, rate * (1 - 2 * share))
  end
  local floor = rate * DET.FLOOR
  if deep then floor = math.max(rate * DET.DEEP_FLOOR, math.min(floor, accepted)) end
  -- A share under half a blip's cuts less (down to SMALL_CUT): an overshoot that small is gone
  -- after a 5% cut, and a noise that small (the commonest case) costs half as much while it is
  -- tested.
  local ceil = DET.CEIL
  if share < DET.BLIP_SHARE / 2 then ceil = math.max(DET.CEIL, math.min(DET.SMALL_CUT, 1 - 2 * share)) end
  return math.max(1, math.min(rate * ceil, math.max(floor, lowered))), true
end
