-- markDelayed: points the delay marker at the earliest delayed job unless paused.
--@include rcall, next_due
-- helper: markDelayed
-- Points the delay marker at the earliest delayed job, unless the queue is paused.
local function markDelayed(q)
  local due = nextDue(q)
  if due > 0 and not q.paused then
    rcall("ZADD", q.marker, due, "1")
  end
end
-- end helper
