--[[
  addSpend: add amounts to fields of a month's spend ledger, in one step (no MULTI: one command
  and its writes instead of MULTI, the writes, PEXPIRE and EXEC).

  KEYS[1]  the ledger hash (fields per route: USD and request counts)

  ARGV[1]  '1': refresh the TTL now (the caller asks at most once a minute per key and process);
           '0': only if the key may be new (below)
  ARGV[2]  the TTL, ms
  ARGV[3…] field, amount pairs

  The key may be new when a whole amount (a request count) is now its field's whole value: that
  field was new, so the key may have been; its TTL is then set at once (a new ledger never lives
  without one). A field new in an existing ledger only refreshes the TTL early.

  Returns the fields' new values, in order (strings).
]]
local key = KEYS[1]
local refresh = ARGV[1] == '1'
local values = {}
for i = 3, #ARGV, 2 do
  local amount = tonumber(ARGV[i + 1])
  local value = redis.call('HINCRBYFLOAT', key, ARGV[i], ARGV[i + 1])
  values[#values + 1] = value
  if amount == math.floor(amount) and tonumber(value) == amount then refresh = true end
end
if refresh then redis.call('PEXPIRE', key, tonumber(ARGV[2])) end
return values
