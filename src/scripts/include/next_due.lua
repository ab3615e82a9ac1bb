-- nextDue: due time (ms) of the earliest delayed job, 0 when none.
--@include rcall
-- helper: nextDue
-- Due time (ms) of the earliest delayed job, 0 when there is none.
local function nextDue(q)
  local first = rcall("ZRANGE", q.delayed, "0", "0", "WITHSCORES")
  if first[2] then
    return math.floor(tonumber(first[2]) / 4096)
  end
  return 0
end
-- end helper
