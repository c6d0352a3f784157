--[[
  credit_refusal: a part composed in front of the scripts that check a credit scope before a
  request (check-credit.lua, acquire-permit-with-credit.lua); no script on its own. Reads the
  credit gate and compares the spend ledger with the budget.

  credit_refusal(gateKey, ledgerKey, appNowMs, ledgerField, budgetUsd)
    gateKey    gate hash (exhaustedUntil, reason, heldReason), or nil: no gate to read
    ledgerKey  ledger hash (fields per route), or nil: no budget to compare
    appNowMs   caller's clock in ms (the gate's exhaustedUntil is compared with it, so monthly
               resets can be tested with an injected clock)
    ledgerField, budgetUsd  the ledger field compared with the budget ('' = no budget)

  Returns nil (open: no gate closed, budget not reached), or the refusal to reply with:
    {2, reason, untilMs}    the gate is closed: credits exhausted (until untilMs) or held (untilMs 0)
    {3, spentUsd}           the budget is reached for the ledger field
]]
local function credit_refusal(gateKey, ledgerKey, appNowMs, ledgerField, budgetUsd)
  if gateKey then
    local gate = redis.call('HMGET', gateKey, 'exhaustedUntil', 'reason', 'heldReason')
    if gate[3] then return {2, gate[3], 0} end
    local exhaustedUntil = tonumber(gate[1] or '0')
    if exhaustedUntil > tonumber(appNowMs) then return {2, gate[2] or 'credits exhausted', exhaustedUntil} end
  end
  if ledgerKey and ledgerField ~= '' and budgetUsd ~= '' then
    local spent = tonumber(redis.call('HGET', ledgerKey, ledgerField) or '0')
    if spent >= tonumber(budgetUsd) then return {3, tostring(spent)} end
  end
  return nil
end
