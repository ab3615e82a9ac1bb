-- isMaxed: whether the queue-wide concurrency is reached.
--@include rcall
-- helper: isMaxed
local function isMaxed(q)
  return q.cap ~= nil and rcall("LLEN", q.active) >= q.cap
end
-- end helper
