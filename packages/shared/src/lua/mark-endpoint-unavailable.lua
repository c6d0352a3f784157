--[[
  markEndpointUnavailable: an Inference Endpoint is paused or failed; admit nothing to it for a
  while, for every worker (acquire-endpoint-slot.lua reads the mark). The writer's clock is never
  used: the mark's end is Redis TIME plus the duration it is given, so a worker whose clock is
  off marks the endpoint for the stated time, not for its skew (see docs/architecture.md,
  'Redis time').

  KEYS[1]  status hash: state, reason, until (Redis ms; 0 = until cleared), since (Redis ms)
  KEYS[2]  waker key: dropped (no request is waking an endpoint that admits nothing)

  ARGV[1]  state: 'paused' or 'failed'
  ARGV[2]  reason (already trimmed and scrubbed)
  ARGV[3]  for how long, ms from now (0 = until cleared)
  ARGV[4]  lifetime of the status hash, ms, refreshed here

  Returns the mark's end in Redis ms (0 = until cleared).
]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local forMs = tonumber(ARGV[3])
local untilMs = 0
if forMs > 0 then untilMs = now + forMs end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'reason', ARGV[2], 'until', untilMs, 'since', now)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('DEL', KEYS[2])
return untilMs
