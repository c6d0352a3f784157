--[[
  checkCredit: may a request of this credit scope go out now? Reads the credit gate and compares
  the spend ledger with the budget. Runs right before every permit attempt, reserve and commit
  alike, on the scope's hash tag; the permit itself runs on the domain's tag (acquire-permit.lua).
  See docs/redis-cluster.md, 'State shared across units'.

  The gate and the ledger share a tag when both are the scope's (the router route): one call with
  both. A provider key's own gate carries the key's tag and the ledger the account's scope's: two
  calls, one key each.

  KEYS[1…]  per ARGV[1]: 'gl' → KEYS[1] gate hash, KEYS[2] ledger hash;
            'g' → KEYS[1] gate hash; 'l' → KEYS[1] ledger hash
            gate hash: exhaustedUntil, reason, heldReason; ledger hash: fields per route

  ARGV[1]  which keys: 'gl', 'g' or 'l'
  ARGV[2]  caller's clock in ms (the gate's exhaustedUntil is compared with it, so monthly resets
           can be tested with an injected clock)
  ARGV[3]  ledger field to compare with the budget ('' = no budget)
  ARGV[4]  budget in USD ('' = none)

  Returns one of
    {0}                     open: no gate closed, budget not reached
    {2, reason, untilMs}    the gate is closed: credits exhausted (until untilMs) or held (untilMs 0)
    {3, spentUsd}           the budget is reached for the ledger field
]]
local which = ARGV[1]
local gateKey, ledgerKey
if which == 'gl' then
  gateKey, ledgerKey = KEYS[1], KEYS[2]
elseif which == 'g' then
  gateKey = KEYS[1]
else
  ledgerKey = KEYS[1]
end

if gateKey then
  local gate = redis.call('HMGET', gateKey, 'exhaustedUntil', 'reason', 'heldReason')
  if gate[3] then return {2, gate[3], 0} end
  local exhaustedUntil = tonumber(gate[1] or '0')
  if exhaustedUntil > tonumber(ARGV[2]) then return {2, gate[2] or 'credits exhausted', exhaustedUntil} end
end
if ledgerKey and ARGV[3] ~= '' and ARGV[4] ~= '' then
  local spent = tonumber(redis.call('HGET', ledgerKey, ARGV[3]) or '0')
  if spent >= tonumber(ARGV[4]) then return {3, tostring(spent)} end
end
return {0}
