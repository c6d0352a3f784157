--[[
  acquirePermit: admit one upstream request of a rate-limit domain, or say how long to wait.
  (congestion-detector.lua is composed in front of this script.)

  Clock: Redis TIME (ms), shared by every worker process on every machine.

  Every key is the domain's (one hash tag). The credit gate and the budget belong to the credit
  scope, another tag: check-credit.lua checks them right before every call of this script,
  reserve and commit alike, so a request reserved before a gate closed is not sent after it closed;
  where the keys may share a script (a standalone Redis, or one tag), the same check runs in front
  of this script instead (acquire-permit-with-credit.lua; docs/redis-cluster.md, 'State shared
  across units').

  Upkeep, once per detector bucket (B = a quarter of the primary window, 50 ms to 15 s) rather
  than per request: the first call of a bucket trims the request logs and refreshes the TTLs of
  the state and the windows (a TTL one bucket longer, so each key still outlives its last write by
  its full TTL; a window that was empty, maybe a new key, gets its TTL at once).

  A request window is a sliding log of committed sends (ZSET, score = send time); a token window
  is a ring of time buckets with a running sum (HASH: `sum`, `head`, `k<i>` bucket number and
  `v<i>` tokens per slot), so a permit costs a bounded number of operations however many sends
  the window holds. A send is admitted when each request window holds fewer than its limit in
  (now - W', now] and each token window has room for the cost, where W' = W * (1 + margin): the
  margin absorbs the variable time between this admission and the request's arrival upstream. A
  token bucket of length g counts its tokens until two bucket lengths after W' from its start, so
  it never counts a send for less than W' + g (a send leaving up to g late stays covered). The
  first request window is the domain's primary window: its limit is the learned rate (field
  `rate`, at most the configured limit or the operator's override), and sends in it are spaced
  W'/limit apart (field `tat`, the next free slot) so admissions do not bunch.

  Reserved slots follow the rate. A reservation is a slot number (field `slotK`, the next one to
  give): slot k is due at tat - (slotK - k) × spacing. When the spacing changes (a raise, a cut,
  an override), the slots not yet due are spread again from now at the new spacing (field `spc`,
  the spacing tat was computed with), so a raise shortens the waits already given out and a cut
  lengthens them at once. A reserved request that waits longer than a recheck period asks again
  (commit with its slot) and learns its slot's time under the spacing then in force; without
  this, the next 3 s of slots (64 requests waiting at 20/s) stayed at the old spacing and every
  step of a climb back waited 3 s before the upstream saw it.

  The learned rate moves here too: a cut under test is judged when its time is up
  (congestion-detector.lua), a blip's cut is undone at its recovery time, and the rate rises after
  a quiet spell, by one step per clean window, or by doubling steps back toward a rate that held.

  KEYS[1]  domain state hash (rate, tat, pausedUntil, lastCutAt, lastRaiseAt, detector fields)
  KEYS[2]  operator's override of the primary limit (string; permanent unless set with `--for`),
           read only while the state holds no copy of it (fields `ovr`, `ovrUntil`)
  KEYS[3]  audit list of admission times (written only when ARGV[7] > 0)
  KEYS[4…] one key per window, in the order of the window arguments

  ARGV[1]  mode: 'reserve' (new request), 'commit@<k>' (the request that reserved slot k asks
           again) or 'commit' (a request that holds no slot: its slot fell in a pause, or the
           primary window is longer than a minute and nothing is spaced)
  ARGV[2]  unique id of this request
  ARGV[3]  margin ratio, e.g. 0.015
  ARGV[4]  longest wait to reserve a slot for (ms); longer waits reserve nothing
  ARGV[5]  additive increase step of the learned rate per clean window (requests)
  ARGV[6]  quiet time after a cut before the rate may rise (ms)
  ARGV[7]  audit list bound (entries; 0 = no audit)   ARGV[8] audit list TTL (ms)
  ARGV[9]  number of windows n, then n groups of 4: kind ('r' | 't'), limit, durationMs, cost

  An operator's override changed by `hfq limit` (DomainLimiter.setOverride: fields `ovrFrom`, the
  override before or '', and `ovrRate`, the learned rate before or '') is reported by the first
  permit that sees it, once for every worker.

  Returns one of
    {1, waitMs, nowMs, primaryLimit, slot, mayRise, changes…}
        waitMs = 0: admitted (committed now); > 0: wait, then commit (reserved when waitMs ≤ ARGV[4],
        else nothing reserved; a slot already held stays held however long its wait has grown);
        slot: the slot number held (reserved now, or still held by a commit that came before its
        time), -1 for none; mayRise: 1 while the learned rate is below the higher of the configured
        limit and the operator's, else 0; changes: the learned rate's changes made by this call, groups of
        reason ('noise' | 'undecided' | 'recover' | 'raise' | 'return' | 'override'), rate before
        and after × 1000, note ('reached' for a raise that reached its target; 'set' | 'cleared'
        for an override; for 'noise' | 'undecided', the noise evidence "429s/sends")
]]
local D, OVERRIDE, AUDIT = KEYS[1], KEYS[2], KEYS[3]
local mode, heldSlot = ARGV[1], nil
do
  local commitOf = string.match(mode, '^commit@(%d+)$')
  if commitOf then mode, heldSlot = 'commit', tonumber(commitOf) end
end
local uid = ARGV[2]
local margin = tonumber(ARGV[3])
local maxReserve = tonumber(ARGV[4])
local step = tonumber(ARGV[5])
local quietMs = tonumber(ARGV[6])
local auditMax = tonumber(ARGV[7])
local n = tonumber(ARGV[9])

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local windows = {}
local primary = nil
for i = 1, n do
  local base = 9 + (i - 1) * 4
  local w = {
    kind = ARGV[base + 1], limit = tonumber(ARGV[base + 2]),
    duration = tonumber(ARGV[base + 3]), cost = tonumber(ARGV[base + 4]), key = KEYS[3 + i],
  }
  w.span = w.duration * (1 + margin)
  if w.kind == 'r' and primary == nil then primary = w end
  windows[i] = w
end
local detDuration = primary and primary.duration or 1000
local B = det_bucket_ms(detDuration)
local sendK, sendB, sendS = det_send_fields(now, B)

local state = redis.call('HMGET', D, 'rate', 'tat', 'pausedUntil', 'lastCutAt', 'lastRaiseAt', 'ckUntil', 'recTo',
  'recAt', 'top', 'topMiss', 'raiseStep', 'calmUntil', sendB, sendS, 'rateSince', 'ovrFrom', 'ovrRate', 'probeMiss',
  'ovr', 'ovrUntil', 'slotK', 'spc', 'measuredCut')
-- The first call of a detector bucket (B ms, a quarter of the primary window) does the upkeep
-- that need not run per request: trimming the logs and refreshing the TTLs (see `upkeep` below).
local upkeep = tonumber(state[13] or '-1') ~= sendK
local pausedUntil = tonumber(state[3] or '0')
local earliest = math.max(now, pausedUntil)
local primaryLimit, primaryW = 0, 0
-- 1 while the learned rate may rise: below its ceiling, or below the configured limit while an
-- operator's lower one is in force (it may be lifted).
local mayRise = 0
local stateWrites = {}

if primary then
  local w = primary
  -- The operator's override, from its copy in the state (fields `ovr`, '' for none, and `ovrUntil`,
  -- when one set with `--for` lapses, 0 for never): setOverride writes both with the key. A state
  -- without the copy (new, expired, or from before it) reads the key once and keeps the copy.
  local override
  if state[19] then
    local ovrUntil = tonumber(state[20] or '0')
    if state[19] ~= '' and (ovrUntil == 0 or now < ovrUntil) then override = tonumber(state[19]) end
  else
    override = tonumber(redis.call('GET', OVERRIDE) or '')
    local ovrTtl = redis.call('PTTL', OVERRIDE)
    stateWrites[#stateWrites + 1] = 'ovr'
    stateWrites[#stateWrites + 1] = override and tostring(override) or ''
    stateWrites[#stateWrites + 1] = 'ovrUntil'
    stateWrites[#stateWrites + 1] = ovrTtl > 0 and now + ovrTtl or 0
  end
  local ceiling = override or w.limit
  -- (An override below the configured limit may be lifted: the rate may rise then too.)
  local riseTo = math.max(ceiling, w.limit)
  local rate = math.min(tonumber(state[1] or '') or ceiling, ceiling)
  local lastCut = tonumber(state[4] or '0')
  local lastRaise = tonumber(state[5] or '0')
  local ckUntil = tonumber(state[6] or '')
  if state[16] then
    -- An operator's override was set or cleared since the last permit: the rate starts from it.
    local oldCeiling = tonumber(state[16]) or w.limit
    local from = math.min(tonumber(state[17] or '') or oldCeiling, oldCeiling)
    det_changed('override', from, rate, override and 'set' or 'cleared', true)
    redis.call('HDEL', D, 'ovrFrom', 'ovrRate')
  end
  -- The rate in force since the domain's first send: it has held once it ran long enough.
  if not state[15] then
    stateWrites[#stateWrites + 1] = 'rateSince'
    stateWrites[#stateWrites + 1] = now
  end
  if ckUntil and now >= ckUntil then
    local before, ended, why, note = rate, nil, nil, nil
    rate, ended, why, note = det_settle(D, now, B, w.duration, w.span, ceiling, rate, false)
    if ended then ckUntil = nil end
    if why then det_changed(why, before, rate, note) end
  end
  local recAt = tonumber(state[8] or '')
  if recAt and now >= recAt then
    -- Fast recovery after a blip: back to the rate that held, unless a cut came since.
    if lastCut <= recAt - DET.RECOVER_WINDOWS * w.duration then
      local before = rate
      rate = math.min(ceiling, tonumber(state[7] or tostring(rate)))
      det_changed('recover', before, rate)
      stateWrites[#stateWrites + 1] = 'rate'
      stateWrites[#stateWrites + 1] = tostring(rate)
      stateWrites[#stateWrites + 1] = 'rateSince'
      stateWrites[#stateWrites + 1] = now - DET.HELD_WINDOWS * w.duration
    end
    redis.call('HDEL', D, 'recTo', 'recAt')
  end
  -- The rate to return to: the highest that held, else the ceiling (configured, or the
  -- operator's), which nothing has proven yet.
  local proven = tonumber(state[9] or '') ~= nil
  local top = tonumber(state[9] or '') or ceiling
  local returning = top > rate
  local quiet = quietMs
  if returning then
    -- Probes back to the rate that held: three quiet windows, six after a failed probe (one
    -- costs a few 429s: at most about 2% of the sends of a limit that stays low), for as long
    -- as the limit stays low, so a limit that lifts is found within six windows. Toward a
    -- ceiling that never held (a hidden limit may be below it for good), the quiet time after a
    -- cut (a probe's 429s under noise are no proof of a miss, so misses are not counted there).
    if proven then
      quiet = DET.RETURN_QUIET_WINDOWS * w.duration * math.min(2, 2 ^ tonumber(state[10] or '0'))
    end
  end
  -- A probe answered with a stated wait paused the whole domain: each such miss in a row doubles
  -- the quiet time (at most 2^STATED_BACKOFF_MAX times), so a low limit is not paid for in pauses.
  -- The time doubled is at least PROBE_SENDS sends at the rate in force: a probe that misses costs
  -- at least one 429 however low the rate, and at 1/s the ten-second quiet time, doubled, was a
  -- 429 and a pause every 20 sends. (At most PROBE_SENDS windows: below one send a window, a rate
  -- cut too far would take longer to find than a probe costs.) A cut that measured the limit (a
  -- stated wait's to what got through, record-429.lua; a congestion confirmed at a few requests a
  -- second, congestion-detector.lua) does as a missed probe does: its first probe waits as long,
  -- undoubled (at 1/s, a probe ten sends after the cut cost a 429 and a pause).
  local probeMiss = tonumber(state[18] or '0')
  if probeMiss > 0 or state[23] == '1' then
    quiet = math.max(quiet, DET.PROBE_SENDS / math.max(rate, 1) * w.duration)
    quiet = quiet * 2 ^ math.min(probeMiss, DET.STATED_BACKOFF_MAX)
  end
  local calmUntil = tonumber(state[12] or '0')
  -- A raise waits until the rate in force was really sent at for a window (slots reserved at the
  -- old spacing go first): a climb must not run ahead of what the upstream has seen.
  if rate < ceiling and not ckUntil and now >= calmUntil and now - lastCut > quiet
      and now - lastRaise >= w.duration and now > pausedUntil
      and redis.call('ZCOUNT', w.key, '(' .. (now - w.span), '+inf') >= 0.9 * math.floor(rate) then
    local raise = step
    -- Each raise that held (no cut since: a cut resets the step) doubles the next. Back toward
    -- the rate that held, the first step is RETURN_FIRST_SHARE of the way; toward a ceiling that
    -- never held, one additive step (a hidden limit just above the rate costs a probe little), so a
    -- limit that lifted is found in a few windows, not one additive step a window (34 to 50/s
    -- took 16 windows).
    local last = tonumber(state[11] or '0')
    if last > 0 then raise = math.max(step, 2 * last)
    elseif returning and proven then raise = math.max(step, DET.RETURN_FIRST_SHARE * (top - rate)) end
    -- A raise after a raise: the last one held, so the missed-probe backoff starts over, once it
    -- held for MIN_SENDS sends. (At a few requests a second a window is a handful: a probe from 3
    -- to 4/s may pass one window under a hidden 3/s, and its next step to 5/s missed with the
    -- count started over, so every probe came after the first miss's quiet time.)
    if lastRaise > lastCut and probeMiss > 0 and (now - lastRaise) * rate >= DET.MIN_SENDS * w.duration then
      stateWrites[#stateWrites + 1] = 'probeMiss'
      stateWrites[#stateWrites + 1] = 0
    end
    local ceilingNow = ceiling
    if returning then ceilingNow = math.min(ceiling, top) end
    -- The first raise after a cut starts a climb: a raise that draws congestion goes back here.
    if lastRaise <= lastCut then
      stateWrites[#stateWrites + 1] = 'probeFrom'
      stateWrites[#stateWrites + 1] = tostring(rate)
      stateWrites[#stateWrites + 1] = 'probeAt'
      stateWrites[#stateWrites + 1] = now
    end
    local before = rate
    rate = math.min(ceilingNow, rate + raise)
    det_changed(returning and 'return' or 'raise', before, rate, rate >= ceilingNow and 'reached' or '')
    stateWrites[#stateWrites + 1] = 'rate'
    stateWrites[#stateWrites + 1] = tostring(rate)
    stateWrites[#stateWrites + 1] = 'lastRaiseAt'
    stateWrites[#stateWrites + 1] = now
    -- A climb that reached the rate that held starts again from one step above it: the ceiling
    -- beyond never held, and a hidden limit may sit just above.
    stateWrites[#stateWrites + 1] = 'raiseStep'
    stateWrites[#stateWrites + 1] = (returning and rate >= ceilingNow and ceilingNow < ceiling) and '0' or tostring(raise)
    stateWrites[#stateWrites + 1] = 'rateSince'
    stateWrites[#stateWrites + 1] = now
  end
  -- A fractional rate is whole sends over a longer window: 2.85/s is 3 sends per 1,053 ms, not
  -- 2 per 1,000 ms (at a few requests a second, rounding down loses a third of the rate). Never
  -- more than ceil(rate) sends in any window of the upstream's length.
  w.limit = math.max(1, math.ceil(rate - 1e-9))
  local stretch = w.duration * (w.limit / math.max(rate, 1e-9) - 1)
  -- At a few requests a window the margin is a few ms, less than the jitter between two sends'
  -- trips to the upstream: keep at least LOW_RATE_MARGIN of the spacing free as well.
  local lowMargin = DET.LOW_RATE_MARGIN * w.duration / w.limit
  if lowMargin > w.span - w.duration then w.span = w.duration + lowMargin end
  if stretch > 0 then w.span = w.span + stretch end
  primaryLimit, primaryW = w.limit, w.span
  if rate < riseTo then mayRise = 1 end
end

-- Token windows: bucket length and ring size.
local function token_geometry(w)
  local g = math.max(50, math.ceil(w.duration / 128))
  local slots = math.ceil(w.span / g) + 4
  return g, slots
end

-- Expire the buckets whose time is up and return the running sum (bounded: at most `slots` steps).
local function token_expire(w)
  local g, slots = token_geometry(w)
  local cutoff = math.floor((now - w.span) / g) - 2
  local meta = redis.call('HMGET', w.key, 'sum', 'head')
  local sum, head = tonumber(meta[1] or '0'), tonumber(meta[2] or '')
  if head == nil or sum <= 0 then
    w.sum, w.head, w.g, w.slots = 0, cutoff + 1, g, slots
    return
  end
  if cutoff - head >= slots then
    -- Idle for longer than the ring: nothing older than the live range counts; sum the live range.
    local fields = {}
    for k = cutoff + 1, math.floor(now / g) do
      local s = k % slots
      fields[#fields + 1] = 'k' .. s
      fields[#fields + 1] = 'v' .. s
    end
    local v = redis.call('HMGET', w.key, unpack(fields))
    sum = 0
    local i = 1
    for k = cutoff + 1, math.floor(now / g) do
      if tonumber(v[i] or '-1') == k then sum = sum + tonumber(v[i + 1] or '0') end
      i = i + 2
    end
    head = cutoff + 1
  elseif head <= cutoff then
    local fields = {}
    for k = head, cutoff do
      local s = k % slots
      fields[#fields + 1] = 'k' .. s
      fields[#fields + 1] = 'v' .. s
    end
    local v = redis.call('HMGET', w.key, unpack(fields))
    local i = 1
    for k = head, cutoff do
      if tonumber(v[i] or '-1') == k then sum = sum - tonumber(v[i + 1] or '0') end
      i = i + 2
    end
    head = cutoff + 1
  end
  w.sum, w.head, w.g, w.slots = math.max(0, sum), head, g, slots
end

-- When enough of the oldest buckets expire for `cost` to fit (at most `slots` buckets read).
local function token_room_at(w)
  local last = math.floor(now / w.g)
  local fields = {}
  for k = w.head, last do
    local s = k % w.slots
    fields[#fields + 1] = 'k' .. s
    fields[#fields + 1] = 'v' .. s
  end
  local v = redis.call('HMGET', w.key, unpack(fields))
  local left = w.sum
  local i = 1
  for k = w.head, last do
    if tonumber(v[i] or '-1') == k then
      left = left - tonumber(v[i + 1] or '0')
      if left + w.cost <= w.limit or left <= 0 then return (k + 2) * w.g + w.span end
    end
    i = i + 2
  end
  return (last + 2) * w.g + w.span
end

-- Trim every request log, expire every token ring, then find the earliest time each window has room.
for _, w in ipairs(windows) do
  if w.kind == 't' then
    token_expire(w)
    if w.sum + w.cost > w.limit and w.sum > 0 then earliest = math.max(earliest, token_room_at(w)) end
  else
    -- Entries older than 2 spans count nowhere (ZCOUNT and the nth newest go by score and rank
    -- from the newest): trimmed once per bucket, they outlive 2 spans by at most a bucket.
    if upkeep then redis.call('ZREMRANGEBYSCORE', w.key, '-inf', now - 2 * w.span) end
    local count = redis.call('ZCOUNT', w.key, '(' .. (now - w.span), '+inf')
    w.count = count
    if count >= w.limit then
      local nth = redis.call('ZREVRANGE', w.key, w.limit - 1, w.limit - 1, 'WITHSCORES')
      earliest = math.max(earliest, tonumber(nth[2]) + w.span)
    end
  end
end

local spacing = 0
if primary and primary.duration <= 60000 then
  spacing = primaryW / primaryLimit
  -- Cold start: the first sends after an idle spell often leave late (new connections, cold
  -- code paths). Spacing them 5% wider keeps the window that ends with them under the limit.
  if primary.count < primaryLimit / 2 then
    spacing = spacing * 1.05
  end
end

-- The reserved slots ahead of now, spread again from now when the spacing changed.
local tat = tonumber(state[2] or '0')
local slotK = tonumber(state[21] or '0')
if spacing > 0 then
  -- (Compared within a tolerance: the stored spacing is the number as text, 14 digits.)
  local spc = tonumber(state[22] or '')
  if not spc or math.abs(spc - spacing) > 1e-6 * spacing then
    if tat > now and spc and spc > 0 then
      tat = now + (tat - now) * spacing / spc
      stateWrites[#stateWrites + 1] = 'tat'
      stateWrites[#stateWrites + 1] = tostring(tat)
    end
    stateWrites[#stateWrites + 1] = 'spc'
    stateWrites[#stateWrites + 1] = tostring(spacing)
  end
end

local function wait_reply(wait, slot)
  if #stateWrites > 0 then
    redis.call('HSET', D, unpack(stateWrites))
    if upkeep then redis.call('PEXPIRE', D, DET.TTL_MS) end
  end
  return det_reply({1, wait, now, primaryLimit, slot, mayRise})
end

if mode == 'commit' and heldSlot and spacing > 0 and heldSlot < slotK then
  -- A reserved request asking again: its slot's time under the spacing in force now. (A slot
  -- time in the past admits, if the windows have room: a raise made it due early.)
  -- (A slot whose time falls in a pause is lost, as it is when it comes: the request reserves anew.)
  local due = tat - (slotK - heldSlot) * spacing
  local early = math.ceil(due - now)
  if early > 2 and due >= pausedUntil then return wait_reply(early, heldSlot) end
end

if mode == 'reserve' and spacing > 0 then
  earliest = math.max(earliest, tat)
end

local wait = math.ceil(earliest - now)
if wait > 0 then
  local slot = -1
  if mode == 'reserve' and spacing > 0 and wait <= maxReserve then
    stateWrites[#stateWrites + 1] = 'tat'
    stateWrites[#stateWrites + 1] = tostring(earliest + spacing)
    stateWrites[#stateWrites + 1] = 'slotK'
    stateWrites[#stateWrites + 1] = slotK + 1
    slot = slotK
  elseif heldSlot and spacing > 0 and heldSlot < slotK and now >= pausedUntil then
    -- A held slot whose time came while a window is still full (sends before a cut): it keeps
    -- its place and waits for room. Only a pause loses it.
    slot = heldSlot
  end
  return wait_reply(wait, slot)
end

-- Admitted: commit the send to every window.
for _, w in ipairs(windows) do
  if w.kind == 't' then
    local k = math.floor(now / w.g)
    local s = k % w.slots
    local cur = redis.call('HMGET', w.key, 'k' .. s, 'v' .. s)
    local v = w.cost
    if tonumber(cur[1] or '-1') == k then v = v + tonumber(cur[2] or '0') end
    redis.call('HSET', w.key, 'k' .. s, k, 'v' .. s, v, 'sum', w.sum + w.cost, 'head', w.head)
    if upkeep or w.sum == 0 then redis.call('PEXPIRE', w.key, math.ceil(w.span + 3 * w.g) + B + 1000) end
  else
    redis.call('ZADD', w.key, now, uid)
    -- An empty log may be a new key: it gets its TTL at once, whatever the bucket.
    if upkeep or w.count == 0 then redis.call('PEXPIRE', w.key, math.ceil(2 * w.span) + B + 1000) end
  end
end
if mode == 'reserve' and spacing > 0 then
  -- Admitted at once: its slot is now, and the next is a spacing later.
  stateWrites[#stateWrites + 1] = 'tat'
  stateWrites[#stateWrites + 1] = tostring(now + spacing)
  stateWrites[#stateWrites + 1] = 'slotK'
  stateWrites[#stateWrites + 1] = slotK + 1
end
-- Count the send for the congestion detector.
local sendCount = 1
if tonumber(state[13] or '-1') == sendK then sendCount = tonumber(state[14] or '0') + 1 end
stateWrites[#stateWrites + 1] = sendB
stateWrites[#stateWrites + 1] = sendK
stateWrites[#stateWrites + 1] = sendS
stateWrites[#stateWrites + 1] = sendCount
if sendCount == 1 then
  stateWrites[#stateWrites + 1] = 't' .. det_slot(sendK)
  stateWrites[#stateWrites + 1] = 0
end
redis.call('HSET', D, unpack(stateWrites))
-- A state without this bucket's send count was new, or is written first in this bucket.
if upkeep then redis.call('PEXPIRE', D, DET.TTL_MS) end
if auditMax > 0 then
  redis.call('RPUSH', AUDIT, now)
  redis.call('LTRIM', AUDIT, -auditMax, -1)
  redis.call('PEXPIRE', AUDIT, tonumber(ARGV[8]))
end
return det_reply({1, 0, now, primaryLimit, -1, mayRise})
