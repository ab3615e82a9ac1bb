-- promoteDue: moves due delayed jobs to waiting, with events and marker.
--@include rcall, enqueue, emit, wake
-- helper: promoteDue
-- Moves delayed jobs whose time has come (at most 1000 per call) to waiting.
local function promoteDue(q, now)
  local ids = rcall("ZRANGEBYSCORE", q.delayed, "0", string.format("%d", (now + 1) * 4096 - 1),
    "LIMIT", "0", "1000")
  if #ids == 0 then
    return
  end
  rcall("ZREM", q.delayed, unpack(ids))
  for _, id in ipairs(ids) do
    local jobKey = q.prefix .. id
    enqueue(q, id, tonumber(rcall("HGET", jobKey, "priority")) or 0, "LPUSH")
    rcall("HSET", jobKey, "delay", 0)
    emit(q, "event", "waiting", "jobId", id, "prev", "delayed")
  end
  wake(q)
end
-- end helper
