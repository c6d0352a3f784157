--[[
  takeCreditProbe: claim the one router probe of a closed credit gate that is due now, for every
  worker together (see docs/architecture.md, 'What a 402 does').

  Clock: the caller's (ARGV[1]).

  KEYS[1]  gate hash of the scope: exhaustedUntil, heldReason, nextProbeAt

  ARGV[1]  now, ms
  ARGV[2]  probe interval, ms: the next probe is due this long after this one

  Returns 1 when the caller holds the probe (the gate is exhausted, not held, and a probe was due;
  nextProbeAt moves one interval on), else 0.
]]
local G = KEYS[1]
local now = tonumber(ARGV[1])
local gate = redis.call('HMGET', G, 'exhaustedUntil', 'heldReason', 'nextProbeAt')
if gate[2] then return 0 end
if tonumber(gate[1] or '0') <= now then return 0 end
if tonumber(gate[3] or '0') > now then return 0 end
redis.call('HSET', G, 'nextProbeAt', tostring(now + tonumber(ARGV[2])))
return 1
