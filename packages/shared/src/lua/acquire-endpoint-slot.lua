--[[
  acquireEndpointSlot: admit one request to an Inference Endpoint, or say why not. The endpoint's
  limit is capacity (requests in flight, summed over every worker), not a rate: a slot is a lease
  in a ZSET, scored by its expiry, so a killed worker's slots come back when their leases lapse.

  The effective limit is the learned concurrency (field `learned` of the limit hash, lowered by
  recordEndpointThrottle), at most the configured concurrency; it rises by one slot after each
  `recoverMs` without a cut (so a limit that was lowered by a passing overload comes back).

  The endpoint's status (see endpoint-status.ts) gates admission: `paused` or `failed` admit
  nothing until `until` (Redis ms; 0 = until cleared); `ok` (it answered lately; the mark
  expires) admits up to the limit; `cold`, or no status at all (nothing known: it may have scaled
  to zero), admits one waking request at a time, the holder of the waker key, so a scaled-to-zero
  endpoint is woken by one request and not by every worker at once.

  KEYS[1]  slots ZSET: member = lease id, score = lease expiry (Redis ms)
  KEYS[2]  limit hash: learned, lastCutAt, lastRaiseAt, episodes
  KEYS[3]  status hash: state ('ok' | 'cold' | 'paused' | 'failed'), reason, until
  KEYS[4]  waker key: the lease id of the one request waking a cold endpoint

  ARGV[1]  lease id            ARGV[2]  lease duration (ms)
  ARGV[3]  configured concurrency
  ARGV[4]  recovery step interval (ms)
  ARGV[5]  TTL of the limit hash (ms), refreshed on each write
  ARGV[6]  waker lease (ms): the waker role lapses this long after its last renewal

  Returns one of
    {1, inFlight, limit, nowMs, waker}   admitted (waker = 1 when this request wakes a cold endpoint)
    {0, inFlight, limit}                 every slot is busy
    {2, state, reason}                   paused or failed: route around or hold
    {3, inFlight, limit}                 cold, and another request is waking it
]]
local SLOTS, LIMIT, STATUS, WAKER = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local lease = ARGV[1]
local leaseMs = tonumber(ARGV[2])
local configured = tonumber(ARGV[3])
local recoverMs = tonumber(ARGV[4])
local limitTtl = tonumber(ARGV[5])
local wakerMs = tonumber(ARGV[6])

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

redis.call('ZREMRANGEBYSCORE', SLOTS, '-inf', now)
local inFlight = redis.call('ZCARD', SLOTS)

local fields = redis.call('HMGET', LIMIT, 'learned', 'lastCutAt', 'lastRaiseAt')
local limit = configured
if fields[1] then
  limit = math.min(configured, tonumber(fields[1]))
  local since = math.max(tonumber(fields[2] or '0'), tonumber(fields[3] or '0'))
  if limit < configured and now - since >= recoverMs then
    limit = limit + 1
    redis.call('HSET', LIMIT, 'learned', limit, 'lastRaiseAt', now)
    redis.call('PEXPIRE', LIMIT, limitTtl)
  end
end

local status = redis.call('HMGET', STATUS, 'state', 'reason', 'until')
local state = status[1] or 'cold'
local untilMs = tonumber(status[3] or '0')
if (state == 'paused' or state == 'failed') and (untilMs == 0 or untilMs > now) then
  return {2, state, status[2] or state}
end

if inFlight >= limit then return {0, inFlight, limit} end

local waker = 0
if state ~= 'ok' then
  local holder = redis.call('GET', WAKER)
  if holder and holder ~= lease then return {3, inFlight, limit} end
  redis.call('SET', WAKER, lease, 'PX', wakerMs)
  waker = 1
end

redis.call('ZADD', SLOTS, now + leaseMs, lease)
redis.call('PEXPIRE', SLOTS, leaseMs * 2)
return {1, inFlight + 1, limit, now, waker}
