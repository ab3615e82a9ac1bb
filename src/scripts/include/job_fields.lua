-- jobFields: the field list (for HMSET) of a new job's hash, as BullMQ's storeJob writes it.
-- helper: jobFields
-- `opts` is the decoded options table (stored as its JSON); the parent fields only for a child.
-- `timestamp` may be the ARGV text: a number argument to redis.call is formatted on every call
-- (about 3.7k instructions each), so the usual zero delay and priority go as text too.
local function jobFields(name, data, opts, timestamp, parentKey, parentJson)
  local delay, priority = opts["delay"] or "0", opts["priority"] or "0"
  if delay == 0 then
    delay = "0"
  end
  if priority == 0 then
    priority = "0"
  end
  local fields = {"name", name, "data", data, "opts", cjson.encode(opts), "timestamp", timestamp,
    "delay", delay, "priority", priority}
  if parentKey then
    fields[#fields + 1] = "parentKey"
    fields[#fields + 1] = parentKey
    fields[#fields + 1] = "parent"
    fields[#fields + 1] = parentJson
  end
  return fields
end
-- end helper
