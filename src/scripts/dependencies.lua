--[[
  dependencies: a parent's children, for job.getDependencies, getDependenciesCount,
  getChildrenValues and getIgnoredChildrenFailures (read only).

  KEYS: none (the parent's keys are P .. jobId .. ":processed" | ":dependencies" | ":failed"
  | ":unsuccessful").

  ARGV
    1 P       "<prefix>:<queue>:"
    2 jobId   the parent
    3 mode    "all"       -> {processed (flat hash), unprocessed (members), ignored (flat hash),
                              failed (members)}
              "counts"    -> ARGV 4.. are types (processed | unprocessed | ignored | failed):
                             one count per type
              "page"      -> ARGV 4..7 are "cursor:count" or "" for processed, unprocessed,
                             ignored, failed: {HSCAN reply | false, SSCAN reply | false,
                             HSCAN reply | false, ZRANGE page | false}
              "processed" -> the processed hash (flat)
              "ignored"   -> the ignored-failures hash (flat)

  Returns what the mode says (above).

  Error codes: none.
]]
local rcall = redis.call
local jobKey = ARGV[1] .. ARGV[2]
local processed, pending = jobKey .. ":processed", jobKey .. ":dependencies"
local ignored, failed = jobKey .. ":failed", jobKey .. ":unsuccessful"
local mode = ARGV[3]
if mode == "all" then
  return {rcall("HGETALL", processed), rcall("SMEMBERS", pending), rcall("HGETALL", ignored),
    rcall("ZRANGE", failed, 0, -1)}
elseif mode == "counts" then
  local out = {}
  for i = 4, #ARGV do
    local t = ARGV[i]
    if t == "processed" then
      out[#out + 1] = rcall("HLEN", processed)
    elseif t == "unprocessed" then
      out[#out + 1] = rcall("SCARD", pending)
    elseif t == "ignored" then
      out[#out + 1] = rcall("HLEN", ignored)
    else
      out[#out + 1] = rcall("ZCARD", failed)
    end
  end
  return out
elseif mode == "page" then
  local function page(i)
    local spec = ARGV[i]
    if spec == nil or spec == "" then
      return nil
    end
    local cursor, count = string.match(spec, "^(%d+):(%d+)$")
    return tonumber(cursor), tonumber(count)
  end
  local out = {false, false, false, false}
  local c, n = page(4)
  if c then out[1] = rcall("HSCAN", processed, c, "COUNT", n) end
  c, n = page(5)
  if c then out[2] = rcall("SSCAN", pending, c, "COUNT", n) end
  c, n = page(6)
  if c then out[3] = rcall("HSCAN", ignored, c, "COUNT", n) end
  c, n = page(7)
  if c then out[4] = rcall("ZRANGE", failed, c, n - 1) end
  return out
elseif mode == "processed" then
  return rcall("HGETALL", processed)
else
  return rcall("HGETALL", ignored)
end
