--[[
  releaseEndpointSlot: a request to an Inference Endpoint ended; give its slot back.

  KEYS[1]  slots ZSET (see acquire-endpoint-slot.lua)
  ARGV[1]  lease id

  Returns 1 if the lease was held, 0 if it had already lapsed (its slot came back on its own).
]]
return redis.call('ZREM', KEYS[1], ARGV[1])
