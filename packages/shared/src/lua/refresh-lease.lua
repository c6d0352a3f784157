--[[
  refreshLease: extend a lease key's lifetime only if the caller still holds it (its token is the
  value), so a lease that expired and was taken by another process is never extended by the first.

  KEYS[1]  lease key
  ARGV[1]  the holder's token      ARGV[2]  new lifetime (ms)

  Returns 1 when the lease was extended, 0 when the caller no longer held it.
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
