--[[
  get_jobs: the jobs of one or more states with their hashes, in BullMQ's getter order,
  read in one step so that a job removed meanwhile is simply left out.

  Lists (wait, paused, active) are read from the right end (oldest first) when ascending,
  else from the left; sets by score, ascending or descending. start / end are 0-based and
  inclusive (end -1 = to the last). Ids whose hash is gone are skipped; for a bounded range
  the following ids fill their place (at most ARGV[5] reads per state).

  KEYS
    1..n            the state keys (list or zset), one per entry of ARGV[6..]

  ARGV
    1 P             "<prefix>:<queue>:"
    2 start
    3 end
    4 asc           "1" ascending | "0" descending
    5 max reads     most reads per state, the first included (e.g. 5)
    6..             one state name per key: "wait" | "paused" | "active" (lists) or any
                    zset state

  Returns
    flat { id1, {field, value, ...}, id2, {...}, ... } over the states in order (an id may
    appear under two states if it moved meanwhile; the caller keeps the first).

  Error codes: none.
]]
local rcall = redis.call
local P = ARGV[1]
local rangeStart, rangeEnd = tonumber(ARGV[2]), tonumber(ARGV[3])
local asc = ARGV[4] == "1"
local maxReads = tonumber(ARGV[5]) or 5
local out = {}

local function isList(state)
  return state == "wait" or state == "paused" or state == "active"
end

-- Ids from index a to b (inclusive, 0-based, -1 = last) in the getter's order.
local function slice(key, list, a, b)
  if not list then
    if asc then
      return rcall("ZRANGE", key, a, b)
    end
    return rcall("ZREVRANGE", key, a, b)
  end
  if not asc then
    return rcall("LRANGE", key, a, b)
  end
  -- Ascending = from the right end: index i counts from the right.
  local len = rcall("LLEN", key)
  if a < 0 then
    a = len + a
  end
  if b < 0 then
    b = len + b
  end
  if a > b or a >= len then
    return {}
  end
  local ids = rcall("LRANGE", key, -(b + 1), -(a + 1))
  local reversed = {}
  for i = #ids, 1, -1 do
    reversed[#reversed + 1] = ids[i]
  end
  return reversed
end

local function append(id)
  local fields = rcall("HGETALL", P .. id)
  if #fields > 0 then
    out[#out + 1] = id
    out[#out + 1] = fields
    return true
  end
  return false
end

for i = 6, #ARGV do
  local key, list = KEYS[i - 5], isList(ARGV[i])
  if rangeStart < 0 or rangeEnd < 0 then
    for _, id in ipairs(slice(key, list, rangeStart, rangeEnd)) do
      append(id)
    end
  else
    local wanted = rangeEnd - rangeStart + 1
    local got, cursor, reads = 0, rangeStart, 0
    while got < wanted and reads < maxReads do
      local ids = slice(key, list, cursor, cursor + (wanted - got) - 1)
      if #ids == 0 then
        break
      end
      for _, id in ipairs(ids) do
        if append(id) then
          got = got + 1
        end
      end
      cursor = cursor + #ids
      reads = reads + 1
    end
  end
end
return out
