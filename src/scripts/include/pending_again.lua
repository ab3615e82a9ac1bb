-- pendingAgain: a finished child moved back to wait becomes a pending dependency of its parent again.
--@include rcall
-- helper: pendingAgain
-- `state` is where the child was ("failed" or "completed"). A parent that is gone, or that
-- no longer counts the child among its finished ones (it already moved on), stays as it is.
local function pendingAgain(jobKey, state)
  local parentKey = rcall("HGET", jobKey, "parentKey")
  if not parentKey or rcall("EXISTS", parentKey) ~= 1 then
    return
  end
  local back
  if state == "failed" then
    back = rcall("ZREM", parentKey .. ":unsuccessful", jobKey) == 1
      or rcall("HDEL", parentKey .. ":failed", jobKey) == 1
  else
    back = rcall("HDEL", parentKey .. ":processed", jobKey) == 1
  end
  if back then
    rcall("SADD", parentKey .. ":dependencies", jobKey)
  end
end
-- end helper
