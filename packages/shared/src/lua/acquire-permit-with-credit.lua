--[[
  acquirePermitWithCredit: the credit check and the permit in one atomic script, where their keys
  may share one (a standalone Redis, or a Redis Cluster when the gate, the ledger and the domain
  carry one hash tag). Composed at load time: credit-refusal.lua, congestion-detector.lua, this
  prelude, then acquire-permit.lua's body, which reads only the keys and arguments before the
  ones this prelude adds. Saves the separate check-credit.lua call before every attempt (one
  round trip and one command per permit), and no gate can close between the check and the
  admission. See docs/redis-cluster.md, 'State shared across units'.

  KEYS[1 … 3 + n]  those of acquire-permit.lua (state, override, audit, n windows), then
  KEYS[4 + n]      the credit gate hash (exhaustedUntil, reason, heldReason)
  KEYS[5 + n]      the spend ledger hash, only when a budget is given

  ARGV[1 … 9 + 4n] those of acquire-permit.lua, then
  ARGV[10 + 4n]    caller's clock in ms (compared with the gate's exhaustedUntil)
  ARGV[11 + 4n]    ledger field to compare with the budget ('' = no budget)
  ARGV[12 + 4n]    budget in USD ('' = none)

  Returns the credit refusal ({2, reason, untilMs} or {3, spentUsd}, see credit-refusal.lua), or
  acquire-permit.lua's reply ({1, …}).
]]
do
  local windowCount = tonumber(ARGV[9])
  local argBase = 9 + 4 * windowCount
  local refused = credit_refusal(KEYS[4 + windowCount], KEYS[5 + windowCount], ARGV[argBase + 1],
    ARGV[argBase + 2], ARGV[argBase + 3])
  if refused then return refused end
end
