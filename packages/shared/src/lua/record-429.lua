--[[
  record429: a 429 reached a rate-limit domain. Decide what it means (congestion-detector.lua,
  composed in front of this script) and act on it: a stated wait pauses the domain; congestion
  lowers the learned rate once per episode; noise changes nothing shared.

  KEYS[1]  domain state hash (see acquire-permit.lua and congestion-detector.lua)
  KEYS[2]  ZSET of recent 429s by send time (kept 5 minutes: status, metrics, and what the
           upstream let through)
  KEYS[3]  sliding log of the primary window (see acquire-permit.lua)
  KEYS[4]  operator's override of the primary limit (read only)

  ARGV[1]  send time of the throttled request (Redis ms, as acquirePermit returned it)
  ARGV[2]  wait stated by the upstream in ms, or -1 when it stated none
  ARGV[3]  primary limit as configured (the ceiling), without the operator's override
  ARGV[4]  primary window duration (ms)       ARGV[5]  margin ratio
  ARGV[6]  unique id of the request
  ARGV[7]  additive increase step (requests)   ARGV[8]  beta (decrease for a wall in a full window)

  Returns {verdict (0 noise, 1 congestion), pauseMs, rate * 1000, episodes, newEpisode (0|1),
  noise level judged against × 1e6, sends of evidence behind it (0: the prior), changes…}
  changes: the learned rate's changes made by this call (see acquire-permit.lua), with reason 'cut'
  (note 'tested' | 'wall' | 'probe' | 'stated' | '') only when the rate really went down
]]
local D, LOG429, PRIMARY = KEYS[1], KEYS[2], KEYS[3]
local sentAt = tonumber(ARGV[1])
local asked = tonumber(ARGV[2])
local duration, margin = tonumber(ARGV[4]), tonumber(ARGV[5])
local step, beta = tonumber(ARGV[7]), tonumber(ARGV[8])
local ceiling = tonumber(redis.call('GET', KEYS[4]) or '') or tonumber(ARGV[3])
local span = duration * (1 + margin)
local B = det_bucket_ms(duration)

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

redis.call('ZADD', LOG429, sentAt, ARGV[6])
redis.call('ZREMRANGEBYSCORE', LOG429, '-inf', now - 300000)
redis.call('PEXPIRE', LOG429, 300000)

-- Count the 429 against the bucket of its send.
local k = math.floor(sentAt / B)
local slot = det_slot(k)
local st = redis.call('HMGET', D, 'rate', 'pausedUntil', 'episodes', 'lastCutAt', 'lastRaiseAt', 'calmUntil',
  'ckUntil', 'noiseAt', 'rateSince', 'top', 'topMiss', 'b' .. slot, 'recTo', 'probeFrom', 'probeAt')
-- (A 429 that came back after its send's bucket left the ring is counted nowhere.)
local counted = tonumber(st[12] or '-1') == k
if counted then redis.call('HINCRBY', D, 't' .. slot, 1) end

local rate = math.min(tonumber(st[1] or '') or ceiling, ceiling)
local pausedUntil = tonumber(st[2] or '0')
local episodes = tonumber(st[3] or '0')
local lastCut = tonumber(st[4] or '0')
local lastRaise = tonumber(st[5] or '0')
local calmUntil = tonumber(st[6] or '0')
local ckUntil = tonumber(st[7] or '')
local b = det_noise_at(D, now, duration)

local pause = 0
if asked >= 0 then
  if now + asked > pausedUntil then
    pausedUntil = now + asked
    redis.call('HSET', D, 'pausedUntil', pausedUntil)
  end
  pause = pausedUntil - now
end

if ckUntil and now >= ckUntil then
  local before, ended, why, note = rate, nil, nil, nil
  rate, ended, why, note = det_settle(D, now, B, duration, span, ceiling, rate, false)
  if ended then ckUntil, calmUntil = nil, 0 end
  if why then det_changed(why, before, rate, note) end
elseif ckUntil then
  local ckAt = tonumber(redis.call('HGET', D, 'ckAt') or '0')
  if now >= ckAt + span + B then
    local before, ended, why, note = rate, nil, nil, nil
    rate, ended, why, note = det_settle(D, now, B, duration, span, ceiling, rate, true)
    if ended then ckUntil, calmUntil = nil, 0 end
    if why then det_changed(why, before, rate, note) end
  end
end

local verdict, newEpisode = 0, 0
if sentAt >= calmUntil and not ckUntil then
  -- (A test that just ended may have learned a noise level.)
  local evidence
  b, evidence = det_noise_at(D, now, duration)
  local stated = asked >= 0
  -- A stated wait pauses the domain, so the last two windows hold few sends (at a few requests a
  -- second, a handful): 429s that state a wait are counted over the whole ring (ten windows).
  local A, T, used, peak = det_sum(D, k - (stated and DET.RING or DET.LOOKBACK) + 1, k)
  -- A learned noise level is tested again when the share rises well above it while the admitted
  -- rate holds or falls (noise that does not depend on the rate would not rise): the level was
  -- learned in another regime. The longer lookback gives the comparison its power.
  local retest = false
  local rA, rT = 0, 0
  if evidence > 0 then rA, rT = det_sum(D, k - DET.RETEST_LOOKBACK + 1, k) end
  -- A level the same lookback contradicts the other way (far fewer 429s than it predicts: the
  -- busy spell is over) is out of force: this 429 is judged against the prior. (Else a limit that
  -- fell after the spell is probed past with the spell's share of 429s taken for noise.)
  -- (Only on counts that can say so: the 429's own bucket counted, the minimum of evidence, and
  -- at least three 429s predicted, without which no count is far below.)
  if evidence > 0 and counted and rA >= DET.NOISE_MIN_SENDS and rA * b >= 3
      and rA * b - rT + 0.5 > DET.Z * math.sqrt(rA * b * (1 - b)) then
    det_doubt_noise(D, now, duration, 0.45)
    b, evidence = DET.PRIOR, 0
  end
  if evidence > 0 and not det_significant(A, T, b) then
    local pA = det_sum(D, k - 2 * DET.RETEST_LOOKBACK + 1, k - DET.RETEST_LOOKBACK)
    local sd = math.sqrt(math.max(rA * b * (1 - b), 1e-9))
    if rT >= 3 and rA >= DET.MIN_SENDS and rT - 0.5 - rA * b > DET.RETEST_Z * sd
        and rA <= DET.RETEST_GROWTH * pA then
      retest = true
      -- The level is in question: the test that follows measures it again.
      det_doubt_noise(D, now, duration, 0.45)
      b = DET.PRIOR
    end
  end
  -- A 429 that states a wait paused the domain: the 429 shares before and after a cut then
  -- measure the pauses, not the rate, so its congestion is cut without a test (to what the
  -- upstream let through) and probes find the way back.
  -- A cut soon after a raise is a probe that found the edge (a rate that held since is not).
  local probing = lastRaise > lastCut and now - lastRaise < DET.HELD_WINDOWS * duration
  -- A climb's 429s (since its last raise) are compared with the share before it started, when a
  -- noise level is in force: noise does not depend on the rate, so a share that rose with the
  -- climb (beyond chance, det_rose) found the edge, whatever a busy spell before taught the
  -- level, and that level did not explain this regime's 429s (put in question, as a confirmed
  -- congestion puts it). Else a climb past a limit that fell after the spell drew its 15–40% of
  -- 429s as noise for as long as the spell's level stayed in force.
  local probeEdge = false
  -- (The two windows before the climb leave the ring ten windows after it started: a longer
  -- climb is judged against the level alone again.)
  if probing and evidence > 0 and counted and not det_significant(A, T, b) then
    local kp = math.floor((tonumber(st[15] or '') or lastRaise) / B)
    local bA, bT = det_sum(D, kp - DET.LOOKBACK, kp - 1)
    -- (From the last raise: a climb's early steps below the limit would dilute the share.)
    local pA, pT = det_sum(D, math.floor(lastRaise / B), k)
    probeEdge = det_rose(bA, bT, pA, pT)
    if probeEdge then det_doubt_noise(D, now, duration, 0.45) end
  end
  -- A probe answered with a stated wait found the edge: one such 429 is enough (a rate left above
  -- the limit would draw a pause every window).
  -- (Two 429s that state a wait are enough evidence: at a few requests a second the lookback never
  -- holds MIN_SENDS sends, and a third would cost a third pause. So are two in a climb's first
  -- windows: a rate that held drew none, and a probe's cut only goes back to it.)
  if retest or (stated and probing) or probeEdge
      or (det_significant(A, T, b) and (A >= DET.MIN_SENDS or T >= 3 or ((stated or probing) and T >= 2))) then
    verdict, newEpisode = 1, 1
    local sends = redis.call('ZCOUNT', PRIMARY, '(' .. (sentAt - span), '(' .. sentAt)
    local refused = redis.call('ZCOUNT', LOG429, '(' .. (sentAt - span), '(' .. sentAt)
    local accepted = math.max(0, sends - refused)
    -- (The log keeps 2 spans; entries past that wait for the permit's trim once per bucket.)
    local oldest = redis.call('ZRANGEBYSCORE', PRIMARY, now - 2 * span, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
    local young = tonumber(oldest[2] or tostring(sentAt)) > sentAt - span
    -- A wall: since the first 429 in the window, the upstream let (almost) nothing through.
    local first = redis.call('ZRANGEBYSCORE', LOG429, '(' .. (sentAt - span), '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
    local firstAt = tonumber(first[2] or tostring(sentAt))
    local sinceSends = redis.call('ZCOUNT', PRIMARY, firstAt, sentAt)
    local sinceRefused = redis.call('ZCOUNT', LOG429, firstAt, sentAt)
    local wallRun = math.max(3, math.ceil(math.log(DET.WALL_P) / math.log(math.min(0.9, math.max(b, 1e-6)))))
    local wall = sinceRefused >= wallRun and sinceSends - sinceRefused <= 1
    -- A wall is a run of refusals the learned noise level gives less than WALL_P: the level did
    -- not explain this regime's 429s, so it is put in question as a test that confirms
    -- congestion puts it (a drop's overshoot may later draw a share close to the old level).
    if wall and evidence > 0 then det_doubt_noise(D, now, duration, 0.45) end
    -- Cut from what was really sent: a learned rate far above the sends (too few jobs, a busy
    -- machine) would take a cut that changes nothing the upstream sees.
    local sentRate = A / math.max(used, 1) * duration / B
    -- (At the busiest bucket: a ramp at a cold start is not the rate the upstream saw.)
    local from = math.min(rate, math.max(peak * duration / B, 1))
    -- (A window full of history and of sends at the rate: what got through measures the upstream.)
    local deep = not young and sends >= 0.75 * math.floor(from)
    -- A raise drew congestion: back toward the rate the climb started from, which held.
    local probeFrom = probing and tonumber(st[14] or '') or nil
    if probeFrom and probeFrom >= rate then probeFrom = nil end
    -- A probe past the limit found it between the rate that held and the probe: the cut goes to
    -- what got through, at least where the climb started, not to beta of the probe (at a few
    -- requests a second one step is a large share: 1 → 2/s cut to 1.4/s drew a second 429 and a
    -- second pause per probe with a stated wait; a Free account's hidden 3/s with no headers, 3 →
    -- 5/s cut to 3.5/s, drew a second episode and a tested cut per probe: 12% of its requests).
    local lowered, tested = det_cut(from, step, beta, accepted, young, T / math.max(A, 1), wall, probing, deep,
      probeFrom)
    if probing then
      if probeFrom then lowered = math.max(lowered, probeFrom) end
    elseif stated then
      -- (What got through in the span is at least the upstream's limit per window when the 429
      -- is the limit's: a window the upstream refused held that many. So the cut goes down to it,
      -- to DEEP_FLOOR of the rate. When nothing got through, the span measured no limit: FLOOR.)
      local floor = accepted > 0 and DET.DEEP_FLOOR or DET.FLOOR
      lowered, tested = math.min(from * DET.CEIL, math.max(accepted, rate * floor)), false
    end
    -- A first blip (a small 429 share: arrival jitter at the limit, or the first of a noise that
    -- is not known yet) dips the rate without a test and gives it back RECOVER_WINDOWS after the
    -- cut's settle span unless another cut comes; a second blip within REPEAT_MS
    -- (at any rate) is tested as any other cut, from the rate before the dip.
    local dip = false
    if tested and not wall and T / math.max(A, 1) < DET.BLIP_SHARE and not redis.call('HGET', D, 'chainFrom') then
      if now - tonumber(redis.call('HGET', D, 'blipAt') or '0') >= DET.REPEAT_MS then
        dip, tested = true, false
      end
    end
    -- One cut never takes the learned rate below FLOOR of itself (a slow start, few sends), unless
    -- a window full of sends at the rate measured what the upstream let through (a limit that
    -- fell far): then down to that, but never below DEEP_FLOOR.
    if tested or wall then
      local floor = rate * DET.FLOOR
      if deep then floor = math.max(rate * DET.DEEP_FLOOR, math.min(floor, accepted)) end
      lowered = math.max(lowered, floor)
    end
    lowered = math.min(lowered, rate)
    episodes = episodes + 1
    -- The rate in force until now held if it ran long enough: probes come back to it.
    local since = tonumber(st[9] or tostring(now))
    local top = tonumber(st[10] or '0')
    local topMiss = tonumber(st[11] or '0')
    -- (It held only if it was really sent at: a rate the sends never reached proved nothing.)
    if now - since >= DET.HELD_WINDOWS * duration and rate >= top and sentRate >= 0.8 * rate then
      top, topMiss = rate, 0
      redis.call('HSET', D, 'top', tostring(top), 'topMiss', 0)
    elseif probing and top >= rate then
      -- (The rate that held is kept: probes back to it go on, further apart; see acquire-permit.lua.)
      redis.call('HSET', D, 'topMiss', math.min(topMiss + 1, 16))
    end
    -- A missed probe spaces the next (acquire-permit.lua): one answered with a stated wait, and, at
    -- a few requests a second (a probe of fewer than MIN_SENDS sends a window), one past every rate
    -- that held, toward a ceiling that never held (a hidden limit below the tier's estimate: at 3/s
    -- with no headers, a probe every ten seconds cost 3 of every 33 requests). (Not a probe back
    -- toward a rate that held: a limit that fell is found again on schedule. Not at higher rates,
    -- where ten seconds hold hundreds of sends: counted there, a noisy spell's probe cuts held 16/s
    -- for 20 s after the spell, bench:limits 7 at 0.52.) (The probe's rate, not the sends in the
    -- lookback: at 3 to 4/s the lookback holds 8 to 11, so one miss in two went uncounted.)
    if probing and (stated or (top < rate and det_low_rate(rate))) then
      redis.call('HINCRBY', D, 'probeMiss', 1)
    end
    if tested then
      local untilMs = now + span + DET.EVAL_WINDOWS * duration + B
      -- A test that ended early (the cut was not deep enough) hands on the rate it started from,
      -- as does a blip's dip that is not given back yet.
      local origin = tonumber(redis.call('HGET', D, 'chainFrom') or '') or tonumber(st[13] or '') or rate
      redis.call('HDEL', D, 'chainFrom')
      redis.call('HSET', D, 'ckFrom', tostring(origin), 'ckTo', tostring(lowered), 'ckAt', now, 'ckUntil', untilMs,
        'ckK', k, 'ckA', A, 'ckT', T, 'ckProbe', '0', 'calmUntil', untilMs)
    else
      redis.call('HSET', D, 'calmUntil', now + span)
      redis.call('HDEL', D, 'chainFrom')
    end
    det_changed('cut', rate, lowered, (tested and 'tested') or (dip and 'blip') or (wall and 'wall')
      or (probing and 'probe') or (stated and 'stated') or '')
    local before = rate
    rate = lowered
    -- A stated cut to what got through measured the limit: the first probe past it waits as a
    -- missed probe's does (acquire-permit.lua). (Not a cut a floor held above that count: a wall's,
    -- a fifth of the rate, or 40% when nothing got through.)
    local measured = stated and not probing and lowered <= accepted and lowered < before
    redis.call('HSET', D, 'rate', tostring(rate), 'episodes', episodes, 'lastCutAt', now, 'lastRaiseAt', now,
      'rateSince', now, 'raiseStep', 0, 'measuredCut', measured and 1 or 0)
    if dip then
      redis.call('HSET', D, 'blipAt', now, 'blipRate', tostring(before), 'recTo', tostring(before),
        'recAt', now + span + DET.RECOVER_WINDOWS * duration)
    else
      redis.call('HDEL', D, 'recTo', 'recAt')
    end
  end
end
redis.call('PEXPIRE', D, DET.TTL_MS)
-- The noise level the verdict was judged against, and the sends of evidence behind it (0: the prior).
local _, evidenceNow = det_noise_at(D, now, duration)
if b <= DET.PRIOR then evidenceNow = 0 end
return det_reply({verdict, pause, math.floor(rate * 1000), episodes, newEpisode, math.floor(b * 1e6),
  math.floor(evidenceNow)})
