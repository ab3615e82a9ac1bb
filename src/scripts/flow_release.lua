--[[
  flow_release: the last step of a flow insert (BullMQ's releaseParentIfNoPendingDependencies):
  a parent that ended up with no pending dependency (e.g. all of its children already existed
  and were completed) leaves waiting-children: delayed by its own delay (event `delayed`),
  else prioritized or at the end of wait (base marker unless paused or maxed; event `waiting`,
  prev = waiting-children). A no-op for a parent that still waits or is not in
  waiting-children.

  KEYS: none (the parent's queue keys are built from its queue key).

  ARGV
    1 P           the parent's "<prefix>:<queue>:"
    2 parentId
    3 now         ms

  Returns 1 when the parent was released, else 0.

  Error codes: none.
]]
--@include rcall, read_meta, enqueue, wake, mark_delayed

local P, id = ARGV[1], ARGV[2]
local parentKey = P .. id
if rcall("SCARD", parentKey .. ":dependencies") > 0 or rcall("ZSCORE", P .. "waiting-children", id) == false then
  return 0
end
rcall("ZREM", P .. "waiting-children", id)
local q = readMeta({
  prefix = P, wait = P .. "wait", active = P .. "active", prioritized = P .. "prioritized",
  pausedList = P .. "paused", meta = P .. "meta", pc = P .. "pc", marker = P .. "marker",
  delayed = P .. "delayed", events = P .. "events"
}, false)
local f = rcall("HMGET", parentKey, "priority", "delay")
local delay = tonumber(f[2]) or 0
if delay > 0 then
  local due = tonumber(ARGV[3]) + delay
  rcall("ZADD", q.delayed, due * 4096, id)
  rcall("XADD", q.events, "*", "event", "delayed", "jobId", id, "delay", due)
  q.paused = false
  markDelayed(q)
else
  enqueue(q, id, tonumber(f[1]) or 0, "RPUSH")
  wake(q)
  rcall("XADD", q.events, "*", "event", "waiting", "jobId", id, "prev", "waiting-children")
end
return 1
