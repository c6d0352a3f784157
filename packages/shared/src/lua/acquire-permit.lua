--[[
  acquirePermit: admit one upstream request of a rate-limit domain, or say how long to wait.

  Clock: Redis TIME (ms), shared by every worker process on every machine. The credit gate
  alone uses the caller's clock (ARGV[2]) so monthly resets can be tested with an injected clock.

  Every window is a sliding log of committed sends (ZSET, score = send time). A send is admitted
  when each request window holds fewer than its limit in (now - W', now] and each token window
  has room for the cost, where W' = W * (1 + margin): the margin absorbs the variable time
  between this admission and the request's arrival upstream. The first request window is the
  domain's primary window: its limit is the learned rate (field `rate`, at most the configured
  limit or its runtime override `override`), and sends in it are spaced W'/limit apart (field
  `tat`, the next free slot) so admissions do not bunch.

  KEYS[1]  domain state hash: rate, override, tat, pausedUntil, episodes, lastCutAt, lastRaiseAt
  KEYS[2]  gate hash (credit state of the account or organisation): exhaustedUntil, reason, heldReason
  KEYS[3]  spend ledger hash of this month (fields per route); compared with the budget
  KEYS[4…] one sliding-log ZSET per window, in the order of the window arguments

  ARGV[1]  mode: 'reserve' (new request) or 'commit' (a reserved request whose time has come)
  ARGV[2]  caller's clock in ms (credit gate only)
  ARGV[3]  unique id of this request
  ARGV[4]  margin ratio, e.g. 0.015
  ARGV[5]  ledger field to compare with the budget ('' = no budget)
  ARGV[6]  budget in USD ('' = none)
  ARGV[7]  longest wait to reserve a slot for (ms); longer waits reserve nothing
  ARGV[8]  additive increase step of the learned rate per clean window (requests)
  ARGV[9]  quiet time after a cut before the rate may rise (ms)
  ARGV[10] '1' to append each admission's time to the audit list (KEYS[1] .. ':audit'), else ''
  ARGV[11] number of windows n, then n groups of 4: kind ('r' | 't'), limit, durationMs, cost

  Returns one of
    {1, waitMs, nowMs, primaryLimit}  waitMs = 0: admitted (committed now); > 0: wait, then commit
                                      (reserved when waitMs ≤ ARGV[7], else nothing reserved)
    {2, reason, untilMs}              the gate is closed: credits exhausted or account held
    {3, spentUsd}                     the budget is reached for the ledger field
]]
local D, GATE, LEDGER = KEYS[1], KEYS[2], KEYS[3]
local mode = ARGV[1]
local appNow = tonumber(ARGV[2])
local uid = ARGV[3]
local margin = tonumber(ARGV[4])
local maxReserve = tonumber(ARGV[7])
local step = tonumber(ARGV[8])
local quietMs = tonumber(ARGV[9])
local audit = ARGV[10] == '1'
local n = tonumber(ARGV[11])

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

if mode == 'reserve' then
  local gate = redis.call('HMGET', GATE, 'exhaustedUntil', 'reason', 'heldReason')
  if gate[3] then return {2, gate[3], 0} end
  local exhaustedUntil = tonumber(gate[1] or '0')
  if exhaustedUntil > appNow then return {2, gate[2] or 'credits exhausted', exhaustedUntil} end
  if ARGV[5] ~= '' and ARGV[6] ~= '' then
    local spent = tonumber(redis.call('HGET', LEDGER, ARGV[5]) or '0')
    if spent >= tonumber(ARGV[6]) then return {3, tostring(spent)} end
  end
end

local state = redis.call('HMGET', D, 'rate', 'override', 'tat', 'pausedUntil', 'episodes', 'lastCutAt', 'lastRaiseAt')
local pausedUntil = tonumber(state[4] or '0')
local earliest = math.max(now, pausedUntil)
local primary, primaryLimit, primaryW = nil, 0, 0

local windows = {}
for i = 1, n do
  local base = 11 + (i - 1) * 4
  local w = {
    kind = ARGV[base + 1], limit = tonumber(ARGV[base + 2]),
    duration = tonumber(ARGV[base + 3]), cost = tonumber(ARGV[base + 4]), key = KEYS[3 + i],
  }
  w.span = w.duration * (1 + margin)
  if w.kind == 'r' and primary == nil then
    primary = w
    local ceiling = tonumber(state[2] or '') or w.limit
    local rate = tonumber(state[1] or '') or ceiling
    w.limit = math.max(1, math.floor(math.min(rate, ceiling)))
    primaryLimit, primaryW = w.limit, w.span
    -- Additive increase: a clean window after the quiet time raises the learned rate by one step.
    local lastCut = tonumber(state[6] or '0')
    local lastRaise = tonumber(state[7] or '0')
    if rate < ceiling and now - lastCut > quietMs and now - lastRaise >= w.duration and now > pausedUntil then
      rate = math.min(ceiling, rate + step)
      redis.call('HSET', D, 'rate', tostring(rate), 'lastRaiseAt', now)
    end
    local episodes = tonumber(state[5] or '0')
    if episodes > 0 and now - math.max(lastCut, pausedUntil) > 2 * w.duration then
      redis.call('HSET', D, 'episodes', 0)
    end
  end
  windows[i] = w
end

-- Trim every log, then find the earliest time each window has room.
for _, w in ipairs(windows) do
  local cutoff = now - 2 * w.span
  if w.kind == 't' then
    redis.call('ZREMRANGEBYSCORE', w.key, '-inf', cutoff)
    -- tokens in (now - W', now]: walk the recent entries
    local recent = redis.call('ZRANGEBYSCORE', w.key, '(' .. (now - w.span), '+inf', 'WITHSCORES')
    local sum = 0
    for j = 1, #recent, 2 do sum = sum + tonumber(string.match(recent[j], ':(%d+)$') or '0') end
    if sum + w.cost > w.limit and sum > 0 then
      local acc = 0
      for j = 1, #recent, 2 do
        acc = acc + tonumber(string.match(recent[j], ':(%d+)$') or '0')
        if sum - acc + w.cost <= w.limit or sum - acc == 0 then
          earliest = math.max(earliest, tonumber(recent[j + 1]) + w.span)
          break
        end
      end
    end
  else
    redis.call('ZREMRANGEBYSCORE', w.key, '-inf', cutoff)
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
  -- The primary window's count over (now - W', now] was taken just above: no second ZCOUNT.
  if primary.count < primaryLimit / 2 then
    spacing = spacing * 1.05
  end
end

if mode == 'reserve' and spacing > 0 then
  local tat = tonumber(state[3] or '0')
  earliest = math.max(earliest, tat)
end

local wait = math.ceil(earliest - now)
if wait > 0 then
  if mode == 'reserve' and spacing > 0 and wait <= maxReserve then
    redis.call('HSET', D, 'tat', tostring(earliest + spacing))
  end
  return {1, wait, now, primaryLimit}
end

-- Admitted: commit the send to every log.
for _, w in ipairs(windows) do
  if w.kind == 't' then
    redis.call('ZADD', w.key, now, uid .. ':' .. math.floor(w.cost))
  else
    redis.call('ZADD', w.key, now, uid)
  end
  redis.call('PEXPIRE', w.key, math.ceil(2 * w.span) + 1000)
end
if mode == 'reserve' and spacing > 0 then
  redis.call('HSET', D, 'tat', tostring(now + spacing))
end
if audit then redis.call('RPUSH', D .. ':audit', now) end
return {1, 0, now, primaryLimit}
