-- unlock: releases a job lock for its owner token (0, -2 missing, -6 other token); leaveActive: that, then off the active list (-3 not there).
--@include rcall
-- helper: unlock
-- Releases the job's lock for its owner: 0 when released (or token "0" = no lock in use),
-- -2 when there is no lock, -6 when another token holds it.
local function unlock(jobKey, token, stalledKey, id)
  if token == "0" then
    return 0
  end
  local held = rcall("GET", jobKey .. ":lock")
  if not held then
    return -2
  end
  if held ~= token then
    return -6
  end
  rcall("DEL", jobKey .. ":lock")
  rcall("SREM", stalledKey, id)
  return 0
end
-- end helper
-- helper: leaveActive
-- The owner's move of a job out of active: `unlock`'s code when it refuses, -3 when the job
-- is not in the active list, else 0 (lock released, job off the list; it is put elsewhere next).
local function leaveActive(jobKey, token, stalledKey, activeKey, id)
  local code = unlock(jobKey, token, stalledKey, id)
  if code < 0 then
    return code
  end
  if rcall("LREM", activeKey, "-1", id) == 0 then
    return -3
  end
  return 0
end
-- end helper
