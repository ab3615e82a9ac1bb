-- placeNew: puts a just-stored job in delayed (with its event and marker) or in wait (with its wake and event).
--@include rcall, emit, enqueue, wake, delayed_score, mark_delayed
-- helper: placeNew
-- `due` is the delayed job's due time in ms, nil for a job that waits now; each caller keeps
-- its own test for "delayed" (BullMQ's are not the same for a parked add and a scheduler's).
local function placeNew(q, id, due, priority, lifo)
  if due then
    rcall("ZADD", q.delayed, delayedScore(q, due), id)
    emit(q, "event", "delayed", "jobId", id, "delay", due)
    markDelayed(q)
  else
    local pushCmd = "LPUSH"
    if lifo then
      pushCmd = "RPUSH"
    end
    enqueue(q, id, priority, pushCmd)
    wake(q)
    emit(q, "event", "waiting", "jobId", id)
  end
end
-- end helper
