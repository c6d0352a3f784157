--[[
  renewEndpointLease: a request to an Inference Endpoint is still running; push its lease's
  expiry out so its slot is not handed to another request while it runs.

  The waker role (see acquire-endpoint-slot.lua) is renewed with the lease of the request that
  holds it, so a waker that died gives the role back as soon as its slot.

  KEYS[1]  slots ZSET (see acquire-endpoint-slot.lua)
  KEYS[2]  waker key
  ARGV[1]  lease id      ARGV[2]  lease duration (ms) from now

  Returns 1 if the lease is still held (renewed), 0 if it had lapsed (nothing renewed: the slot
  may already be someone else's).
]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) <= now then return 0 end
local leaseMs = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], 'XX', now + leaseMs, ARGV[1])
redis.call('PEXPIRE', KEYS[1], leaseMs * 2)
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('PEXPIRE', KEYS[2], leaseMs) end
return 1
