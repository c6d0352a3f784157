--[[
  recordThrottle: a 429 reached a rate-limit domain. Pause the domain and, once per congestion
  episode, lower its learned rate.

  An episode is the burst of 429s answered to requests that were already in flight: a 429 for a
  request sent before the last cut belongs to that cut's episode and lowers nothing. A new episode
  sets the rate to min(rate * beta, sends observed in the primary window before the throttled
  send), so a hidden sliding-window limit is learned in one step and other shapes converge.
  An episode found by probing (the rate was raised since the last cut, so the rate before the
  raise held) steps back just below the edge it found instead: min(rate - step, 0.95 * observed),
  never below rate * beta (the 5% covers upstream latency jitter, which lets a probe run a few
  steps past the edge before the first 429). A second episode without a raise in between cuts by beta again, so a limit
  that fell, or a token bucket that keeps draining, is still followed down quickly.

  KEYS[1]  domain state hash (see acquire-permit.lua)
  KEYS[2]  ZSET of recent 429 times (kept 5 minutes, for status and metrics)
  KEYS[3]  sliding log of the primary window (see acquire-permit.lua)

  ARGV[1]  send time of the throttled request (Redis ms, as acquirePermit returned it)
  ARGV[2]  delay asked by the upstream in ms, or -1 when it gave none
  ARGV[3]  random number in [0, 1) for full-jitter backoff
  ARGV[4]  backoff base (ms)      ARGV[5]  backoff cap (ms)
  ARGV[6]  beta (multiplicative decrease, e.g. 0.7)
  ARGV[7]  ceiling: the configured primary limit
  ARGV[8]  primary window duration (ms)     ARGV[9]  margin ratio
  ARGV[10] unique id of the request
  ARGV[11] additive increase step (requests; see acquire-permit.lua)

  Returns {pauseMs, episodes, rate * 1000, newEpisode (0|1)}
]]
local D, LOG429, PRIMARY = KEYS[1], KEYS[2], KEYS[3]
local sentAt = tonumber(ARGV[1])
local asked = tonumber(ARGV[2])
local random = tonumber(ARGV[3])
local baseMs, capMs = tonumber(ARGV[4]), tonumber(ARGV[5])
local beta, ceiling = tonumber(ARGV[6]), tonumber(ARGV[7])
local duration, margin = tonumber(ARGV[8]), tonumber(ARGV[9])
local step = tonumber(ARGV[11])
local EDGE_BACKOFF = 0.95

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

redis.call('ZADD', LOG429, now, ARGV[10])
redis.call('ZREMRANGEBYSCORE', LOG429, '-inf', now - 300000)
redis.call('PEXPIRE', LOG429, 300000)

local state = redis.call('HMGET', D, 'rate', 'override', 'pausedUntil', 'episodes', 'lastCutAt', 'lastRaiseAt')
local limit = tonumber(state[2] or '') or ceiling
local rate = math.min(tonumber(state[1] or '') or limit, limit)
local pausedUntil = tonumber(state[3] or '0')
local episodes = tonumber(state[4] or '0')
local lastCut = tonumber(state[5] or '0')
local lastRaise = tonumber(state[6] or '0')

local newEpisode = 0
if sentAt > lastCut then
  newEpisode = 1
  episodes = episodes + 1
  local span = duration * (1 + margin)
  local observed = redis.call('ZCOUNT', PRIMARY, '(' .. (sentAt - span), '(' .. sentAt)
  local lowered = rate * beta
  -- The count says what the upstream let through only when no pause cut into that window.
  local clean = sentAt - span >= pausedUntil and observed >= 1
  if clean and observed < lowered then
    lowered = observed
  elseif clean and lastRaise > lastCut then
    lowered = math.max(lowered, math.min(rate - step, EDGE_BACKOFF * observed))
  end
  rate = math.max(1, lowered)
  redis.call('HSET', D, 'rate', tostring(rate), 'episodes', episodes, 'lastCutAt', now, 'lastRaiseAt', now)
end

local pause = asked
if pause < 0 then
  local ceilingMs = math.min(capMs, baseMs * 2 ^ (math.max(1, episodes) - 1))
  pause = math.floor(ceilingMs * random)
end
if now + pause > pausedUntil then
  pausedUntil = now + pause
  redis.call('HSET', D, 'pausedUntil', pausedUntil)
end
redis.call('PEXPIRE', D, 30 * 86400000)
return {pausedUntil - now, episodes, math.floor(rate * 1000), newEpisode}
