--[[
  releaseLease: delete a lease key only if the caller still holds it (its token is the value), so
  a lease that expired and was taken by another process is never released by the first.

  KEYS[1]  lease key
  ARGV[1]  the holder's token

  Returns 1 when the lease was released, 0 when the caller no longer held it.
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
