--[[
  readReusableResult: the result stored for a content id, if it is younger than the TTL (see
  docs/architecture.md, 'Pay once'). Reads only: expired results are dropped by the next store.

  Clock: Redis TIME.

  KEYS[1]  results hash: content id -> result JSON
  KEYS[2]  order sorted set: content id -> time stored, ms

  ARGV[1]  content id
  ARGV[2]  TTL, ms

  Returns the result JSON, or false when there is none or it is older than the TTL.
]]
local stored = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not stored then return false end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if tonumber(stored) <= now - tonumber(ARGV[2]) then return false end
return redis.call('HGET', KEYS[1], ARGV[1])
