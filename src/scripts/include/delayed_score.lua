-- delayedScore: the delayed-zset score for a due time (due * 4096 + sequence).
--@include rcall
-- helper: delayedScore
-- Score for a job due at `due` ms: due * 4096 plus an insertion sequence within that ms.
local function delayedScore(q, due)
  local low = due * 4096
  local high = low + 4095
  local last = rcall("ZREVRANGEBYSCORE", q.delayed, high, low, "WITHSCORES", "LIMIT", 0, 1)
  if last[2] then
    return math.min(tonumber(last[2]) + 1, high)
  end
  return low
end
-- end helper
