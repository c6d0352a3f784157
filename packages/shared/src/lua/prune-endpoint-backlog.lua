--[[
  pruneEndpointBacklog: look at up to ARGV[1] entries of an Inference Endpoint's backlog index,
  drop the jobs that no longer wait for it, and count the ones that still do.

  The index holds the keys of the jobs an endpoint serves (written by the producer after each add;
  see endpoint-backlog.ts). A job still waits while its hash exists without `finishedOn` (waiting,
  prioritized, delayed, active, or a batch parent whose children run); a finished or removed job
  is dropped. Entries are taken from the head: a finished one is popped, a waiting one moves to
  the tail, so a job that waits long (delayed, held) does not keep the finished ones behind it.

  KEYS[1]  backlog LIST of job keys
  ARGV[1]  most entries to look at in this call

  The job keys are built by BullMQ, not declared: they carry the list's hash tag (the account),
  as BullMQ's own scripts read the job keys they build.

  Returns { waiting seen, entries looked at, length after }.
]]
local max = tonumber(ARGV[1])
local length = redis.call('LLEN', KEYS[1])
local budget = math.min(max, length)
local waiting = 0
for _ = 1, budget do
  local jobKey = redis.call('LPOP', KEYS[1])
  local fields = redis.call('HMGET', jobKey, 'timestamp', 'finishedOn')
  if fields[1] and not fields[2] then
    waiting = waiting + 1
    redis.call('RPUSH', KEYS[1], jobKey)
  end
end
return { waiting, budget, redis.call('LLEN', KEYS[1]) }
