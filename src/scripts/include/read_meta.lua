-- readMeta: loads the queue flags kept in meta (paused, concurrency, limiter, version, events cap) into q.
--@include rcall
-- helper: readMeta
-- Loads the queue flags kept in meta into q. With store, a missing events cap is written
-- back with its default (BullMQ's finishing scripts do the same).
local function readMeta(q, store)
  local m = rcall("HMGET", q.meta, "paused", "concurrency", "max", "duration", "version",
    "opts.maxLenEvents")
  q.paused = m[1] ~= false
  q.cap = tonumber(m[2])
  q.max = tonumber(m[3])
  q.duration = tonumber(m[4])
  q.v5 = type(m[5]) == "string" and string.sub(m[5], 1, 8) == "bullmq:5"
  -- Kept as the stored text: a number argument to redis.call is formatted on every call.
  local cap = tonumber(m[6])
  if type(m[6]) == "string" and string.match(m[6], "^%d+$") then
    q.evCap = m[6]
  elseif cap then
    q.evCap = tostring(math.floor(cap))
  else
    q.evCap = "10000"
  end
  -- Whether meta holds the cap: a script that must write the default knows without asking.
  q.capStored = m[6] ~= false
  if store and not m[6] then
    rcall("HSET", q.meta, "opts.maxLenEvents", 10000)
  end
  return q
end
-- end helper
