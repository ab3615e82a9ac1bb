-- jobFields: the field list (for HMSET) of a new job's hash, as BullMQ's storeJob writes it.
-- helper: jobFields
-- `opts` is the decoded options table (stored as its JSON); the parent fields only for a child.
local function jobFields(name, data, opts, timestamp, parentKey, parentJson)
  local fields = {"name", name, "data", data, "opts", cjson.encode(opts), "timestamp", timestamp,
    "delay", opts["delay"] or 0, "priority", opts["priority"] or 0}
  if parentKey then
    fields[#fields + 1] = "parentKey"
    fields[#fields + 1] = parentKey
    fields[#fields + 1] = "parent"
    fields[#fields + 1] = parentJson
  end
  return fields
end
-- end helper
