--[[
  countBatchChild: count a batch child's items once, as ok or failed, before BullMQ records the
  child as finished (a re-delivered child counts nothing twice); nothing when the batch state is
  gone.

  KEYS[1]  batch state hash          KEYS[2]  set of the children already counted
  ARGV[1]  child job id              ARGV[2]  field (`ok` or `failed`)     ARGV[3]  items

  Returns the counters after the count: {total, ok, failed, sealed}, or nil without a batch state.
]]
if redis.call('EXISTS', KEYS[1]) == 0 then return nil end
if redis.call('SADD', KEYS[2], ARGV[1]) == 1 then
  redis.call('HINCRBY', KEYS[1], ARGV[2], ARGV[3])
end
return redis.call('HMGET', KEYS[1], 'total', 'ok', 'failed', 'sealed')
