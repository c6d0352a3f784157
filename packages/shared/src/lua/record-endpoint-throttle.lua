--[[
  recordEndpointThrottle: an Inference Endpoint answered 429 (its serving container's
  concurrent-request limit). Lower the learned concurrency once per episode.

  An episode is the burst of 429s answered to requests admitted before the last cut (or in its
  millisecond): such a 429 lowers nothing. A new episode sets the limit to
  max(1, min(limit - 1, inFlight - 1)), where inFlight counts hfq's live leases (this request's included): the container refused the
  inFlight-th request, so it holds fewer.

  KEYS[1]  slots ZSET (see acquire-endpoint-slot.lua)
  KEYS[2]  limit hash: learned, lastCutAt, lastRaiseAt, episodes

  ARGV[1]  admission time of the throttled request (Redis ms, as acquireEndpointSlot returned it)
  ARGV[2]  configured concurrency
  ARGV[3]  TTL of the limit hash (ms), refreshed on each write

  Returns {newEpisode (0|1), limit, episodes}
]]
local SLOTS, LIMIT = KEYS[1], KEYS[2]
local admittedAt = tonumber(ARGV[1])
local configured = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local fields = redis.call('HMGET', LIMIT, 'learned', 'lastCutAt', 'episodes')
local limit = math.min(configured, tonumber(fields[1] or configured))
local lastCut = tonumber(fields[2] or '0')
local episodes = tonumber(fields[3] or '0')
if admittedAt <= lastCut then return {0, limit, episodes} end

redis.call('ZREMRANGEBYSCORE', SLOTS, '-inf', now)
local inFlight = redis.call('ZCARD', SLOTS)
limit = math.max(1, math.min(limit - 1, inFlight - 1))
episodes = episodes + 1
redis.call('HSET', LIMIT, 'learned', limit, 'lastCutAt', now, 'episodes', episodes)
redis.call('PEXPIRE', LIMIT, ttl)
return {1, limit, episodes}
