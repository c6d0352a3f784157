--[[
  checkCredit: may a request of this credit scope go out now? Reads the credit gate and compares
  the spend ledger with the budget (credit-refusal.lua is composed in front of this script). Runs
  right before every permit attempt, reserve and commit alike, on the scope's hash tag, when the
  permit runs on another tag (a Redis Cluster); where the keys may share a script, the check runs
  inside the permit instead (acquire-permit-with-credit.lua). See docs/redis-cluster.md, 'State
  shared across units'.

  The gate and the ledger share a tag when both are the scope's (the router route): one call with
  both. A provider key's own gate carries the key's tag and the ledger the account's scope's: two
  calls, one key each.

  KEYS[1…]  per ARGV[1]: 'gl' → KEYS[1] gate hash, KEYS[2] ledger hash;
            'g' → KEYS[1] gate hash; 'l' → KEYS[1] ledger hash
            gate hash: exhaustedUntil, reason, heldReason; ledger hash: fields per route

  ARGV[1]  which keys: 'gl', 'g' or 'l'
  ARGV[2]  caller's clock in ms (compared with the gate's exhaustedUntil)
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
return credit_refusal(gateKey, ledgerKey, ARGV[2], ARGV[3], ARGV[4]) or {0}
