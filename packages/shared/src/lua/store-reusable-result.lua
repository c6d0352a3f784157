--[[
  storeReusableResult: keep one completed result in an account's result ledger, within the
  ledger's TTL and memory bound, evicting the oldest results first (see docs/architecture.md,
  'Pay once'). hfq bounds the ledger itself: it never relies on maxmemory eviction.

  Clock: Redis TIME.

  KEYS[1]  results hash: content id -> result JSON
  KEYS[2]  order sorted set: content id -> time stored, ms
  KEYS[3]  size string: bytes of the results in the hash (their JSON lengths)

  ARGV[1]  content id
  ARGV[2]  result JSON
  ARGV[3]  TTL, ms: results older than this are dropped; every write sets it on all three keys
  ARGV[4]  memory bound, bytes of result JSON

  Returns the number of results evicted (expired or over the bound), or -1 when the result alone
  is larger than the bound (nothing stored).
]]
local H, O, S = KEYS[1], KEYS[2], KEYS[3]
local id, value = ARGV[1], ARGV[2]
local ttl, maxBytes = tonumber(ARGV[3]), tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if #value > maxBytes then return -1 end

local size = tonumber(redis.call('GET', S) or '0')
local evicted = 0
local function drop(member)
  size = size - redis.call('HSTRLEN', H, member)
  redis.call('HDEL', H, member)
  redis.call('ZREM', O, member)
end

-- Expired results first (bounded per call; the next store takes the rest).
for _, member in ipairs(redis.call('ZRANGEBYSCORE', O, '-inf', now - ttl, 'LIMIT', 0, 100)) do
  drop(member)
  evicted = evicted + 1
end
if redis.call('HEXISTS', H, id) == 1 then drop(id) end

redis.call('HSET', H, id, value)
redis.call('ZADD', O, now, id)
size = size + #value
-- Oldest first until the ledger is within its bound.
while size > maxBytes do
  local oldest = redis.call('ZRANGE', O, 0, 0)[1]
  if not oldest then break end
  drop(oldest)
  evicted = evicted + 1
end
if size < 0 then size = 0 end
redis.call('SET', S, size, 'PX', ttl)
redis.call('PEXPIRE', H, ttl)
redis.call('PEXPIRE', O, ttl)
return evicted
