-- queueAt: readMeta of the queue whose key prefix is P (a parent may live in another queue).
--@include read_meta
-- helper: queueAt
local function queueAt(P)
  return readMeta({
    prefix = P, wait = P .. "wait", active = P .. "active", prioritized = P .. "prioritized",
    events = P .. "events", delayed = P .. "delayed", pausedList = P .. "paused",
    meta = P .. "meta", pc = P .. "pc", marker = P .. "marker"
  }, false)
end
-- end helper
