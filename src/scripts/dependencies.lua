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
              "scan"      -> Queue.getDependencies: ARGV 4 kind ("processed": the processed
                             hash, else the pending set), 5 start, 6 end (-1: to the last),
                             7 cursor, 8 offset (elements walked before this call), 9 "1" to
                             fetch each element's job hash: {cursor, offset, items, total,
                             jobs} (see below)
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
elseif mode == "scan" then
  -- Walk the hash (HSCAN) or set (SSCAN) 100 at a time from the cursor, counting elements
  -- from `offset`, and keep those whose position is in [start, end]; at most five scans per
  -- call (the caller calls again from the returned cursor while its page is not full). This
  -- is the walk BullMQ's Queue.getDependencies does, so both give the same elements in the
  -- same order (SCAN's order: a set or hash has no other).
  local isHash = ARGV[4] == "processed"
  local key = isHash and processed or pending
  local total = rcall(isHash and "HLEN" or "SCARD", key)
  if total == 0 then
    return {"0", 0, {}, 0, {}}
  end
  local first = tonumber(ARGV[5])
  local last = tonumber(ARGV[6])
  if last == -1 then
    last = total
  end
  local cursor, offset, fetch = ARGV[7], tonumber(ARGV[8]), ARGV[9] == "1"
  local items, jobs = {}, {}
  local width = isHash and 2 or 1
  for _ = 1, 5 do
    local reply = rcall(isHash and "HSCAN" or "SSCAN", key, cursor, "COUNT", 100)
    cursor = reply[1]
    local found = reply[2]
    if #found == 0 then
      break
    end
    for i = 1, #found, width do
      if offset > last then
        return {cursor, offset, items, total, jobs}
      end
      if offset >= first then
        if isHash then
          items[#items + 1] = {found[i], found[i + 1]}
        else
          items[#items + 1] = found[i]
        end
        if fetch then
          jobs[#jobs + 1] = rcall("HGETALL", found[i])
        end
      end
      offset = offset + 1
    end
    if cursor == "0" then
      break
    end
  end
  return {cursor, offset, items, total, jobs}
elseif mode == "processed" then
  return rcall("HGETALL", processed)
else
  return rcall("HGETALL", ignored)
end
