--[[
  closeCreditGate: mark a credit scope's credits exhausted until a time, and say whether this
  closed an open gate (so each exhaustion is reported once, every month, not only the first).

  Clock: the caller's (ARGV[1]), so monthly resets and probes are tested with an injected clock.

  KEYS[1]  gate hash of the scope: exhaustedUntil, reason, sinceMs, nextProbeAt
           (heldReason, heldSinceMs belong to holdCreditGate and are left alone)

  ARGV[1]  now, ms
  ARGV[2]  exhaustedUntil, ms (the next monthly reset)
  ARGV[3]  reason (already trimmed and scrubbed)
  ARGV[4]  probe interval, ms: the first router probe is due this long after the gate closes
  ARGV[5]  lifetime of the hash, ms, from now; the hash never expires sooner than it already would

  Returns 1 when the gate was open (exhaustedUntil absent or past) and is now closed, else 0.
]]
local G = KEYS[1]
local now = tonumber(ARGV[1])
local untilMs = tonumber(ARGV[2])
local current = tonumber(redis.call('HGET', G, 'exhaustedUntil') or '0')
local wasOpen = current <= now
if wasOpen then
  redis.call('HSET', G, 'sinceMs', ARGV[1], 'nextProbeAt', tostring(now + tonumber(ARGV[4])))
end
redis.call('HSET', G, 'exhaustedUntil', tostring(math.max(current, untilMs)), 'reason', ARGV[3])
local ttl = redis.call('PTTL', G)
if ttl < tonumber(ARGV[5]) then redis.call('PEXPIRE', G, ARGV[5]) end
if wasOpen then return 1 end
return 0
