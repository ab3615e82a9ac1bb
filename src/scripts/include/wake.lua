-- wake: adds the base marker so blocked workers take a job, unless paused or maxed.
--@include rcall, is_maxed
-- helper: wake
-- Tells blocked workers that a job can be taken now, unless nobody may take it.
local function wake(q)
  if not (q.paused or isMaxed(q)) then
    rcall("ZADD", q.marker, "0", "0")
  end
end
-- end helper
