-- requeueDedup: turns the add parked by keepLastIfActive (`dn:<id>`) into a job when its deduplication id's job finishes.
--@include rcall, place_new
-- helper: requeueDedup
-- While a keepLastIfActive job was active, the latest add with its deduplication id was
-- parked in `dn:<id>` (see add_job.lua). Its job finishing creates that job now, as an add
-- at `now` would (event `added`, then `delayed` or `waiting`), under the id the parked add
-- was given (the counter still advances, as BullMQ's does), and makes it the id's owner.
-- The stored options are decoded and encoded again: that is what BullMQ stores, and the
-- same two steps give the same text.
local function requeueDedup(q, deid, now, nowText)
  local nextKey = q.prefix .. "dn:" .. deid
  if rcall("EXISTS", nextKey) == 0 then
    return
  end
  local f = rcall("HMGET", nextKey, "name", "data", "opts", "pk", "pd", "pdk", "rjk", "jid")
  local counter = rcall("INCR", q.prefix .. "id")
  local id = f[8] or (counter .. "")
  local opts = cjson.decode(f[3])
  local de = opts["de"]
  local deKey = q.prefix .. "de:" .. deid
  local ttl = de and tonumber(de["ttl"])
  if de and not de["keepLastIfActive"] and ttl and ttl > 0 then
    rcall("SET", deKey, id, "PX", ttl)
  else
    rcall("SET", deKey, id)
  end

  local delay = opts["delay"] or 0
  local priority = opts["priority"] or 0
  local fields = {"name", f[1], "data", f[2], "opts", cjson.encode(opts), "timestamp", nowText,
    "delay", delay, "priority", priority}
  -- A parent, a scheduler and a deduplication id, in BullMQ's order (our adds never park
  -- the first two: deduplication refuses `parent`, Queue.add refuses `repeat`).
  if f[4] then
    fields[#fields + 1] = "parentKey"
    fields[#fields + 1] = f[4]
    fields[#fields + 1] = "parent"
    fields[#fields + 1] = f[5]
  end
  if f[7] then
    fields[#fields + 1] = "rjk"
    fields[#fields + 1] = f[7]
  end
  if de and de["id"] then
    fields[#fields + 1] = "deid"
    fields[#fields + 1] = de["id"]
  end
  local jobKey = q.prefix .. id
  rcall("HMSET", jobKey, unpack(fields))
  rcall("XADD", q.events, "*", "event", "added", "jobId", id, "name", f[1])

  placeNew(q, id, delay ~= 0 and now + delay or nil, priority, opts["lifo"])
  if f[6] then
    rcall("SADD", f[6], jobKey)
  end
  -- Deleted last, as BullMQ does, so a failed step above leaves the parked add in place.
  rcall("DEL", nextKey)
end
-- end helper
