-- isSchedulerJob: whether a job is the pending iteration of a live job scheduler.
--@include rcall
-- helper: isSchedulerJob
-- True for the pending iteration of a job scheduler (id "repeat:<scheduler>:<millis>" of a
-- scheduler still in `repeat`): removing it would stop the scheduler, so it is kept.
local function isSchedulerJob(repeatKey, P, id)
  local rjk = rcall("HGET", P .. id, "rjk")
  if rjk then
    local millis = rcall("ZSCORE", repeatKey, rjk)
    if millis then
      return id == "repeat:" .. rjk .. ":" .. millis
    end
  end
  return false
end
-- end helper
