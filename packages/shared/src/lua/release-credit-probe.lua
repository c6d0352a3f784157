--[[
  releaseCreditProbe: give back a claimed router probe that sent nothing, so the next caller may
  take it at once (see docs/architecture.md, 'What a 402 does').

  KEYS[1]  gate hash of the scope: exhaustedUntil, heldReason, nextProbeAt

  Returns 1 when the probe was given back; 0 when the gate is gone (an operator's reset, or its
  TTL), in which case nothing is written: a gate hash is only ever created with its TTL.
]]
local G = KEYS[1]
if redis.call('EXISTS', G) == 0 then return 0 end
redis.call('HSET', G, 'nextProbeAt', '0')
return 1
