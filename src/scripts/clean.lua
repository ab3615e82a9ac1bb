--[[
  clean: remove jobs of one state that are older than a cutoff, at most `limit` per call.

  completed / failed: jobs finished at or before the cutoff (the set's score), oldest first.
  delayed / prioritized: among the first `limit` jobs of the set (all when 0), those whose
  processedOn (delayed only), else timestamp, is at or before the cutoff.
  wait / paused / active: among the `limit` oldest entries of the list (all when 0), those
  whose finishedOn, else processedOn, else timestamp is at or before the cutoff; active jobs
  only when their lock is gone. The pending iteration of a job scheduler is never removed.
  Each job is removed as removeJob describes; event `cleaned` with the count.

  KEYS
    1 source        the state's list or zset
    2 events        stream
    3 repeat        zset (job schedulers)

  ARGV
    1 P             "<prefix>:<queue>:"
    2 cutoff        ms: jobs at or before it are removed
    3 limit         most jobs removed by this call, "0" = no limit
    4 state         "completed" | "failed" | "delayed" | "prioritized" | "wait" | "paused" |
                    "active"

  Returns
    the ids removed, in the source's order (sets by score, lists from the left end).

  Error codes: none.
]]
--@include rcall, remove_job, is_scheduler_job

local key, P = KEYS[1], ARGV[1]
local cutoff, limit, state = tonumber(ARGV[2]), tonumber(ARGV[3]) or 0, ARGV[4]
local deleted = {}

-- The first of the given time fields the job has, as a number (nil when it has none).
local function jobTime(id, fields)
  for _, t in ipairs(rcall("HMGET", P .. id, unpack(fields))) do
    if t then
      return tonumber(t)
    end
  end
end

local function full()
  return limit > 0 and #deleted >= limit
end

if state == "completed" or state == "failed" then
  local ids
  if limit > 0 then
    ids = rcall("ZRANGEBYSCORE", key, 0, cutoff, "LIMIT", 0, limit)
  else
    ids = rcall("ZRANGEBYSCORE", key, 0, cutoff)
  end
  for _, id in ipairs(ids) do
    removeJob(P, id)
    deleted[#deleted + 1] = id
  end
elseif state == "delayed" or state == "prioritized" then
  local fields = {"timestamp"}
  if state == "delayed" then
    fields = {"processedOn", "timestamp"}
  end
  local ids
  if limit > 0 then
    ids = rcall("ZRANGEBYSCORE", key, 0, "+inf", "LIMIT", 0, limit)
  else
    ids = rcall("ZRANGEBYSCORE", key, 0, "+inf")
  end
  for _, id in ipairs(ids) do
    if full() then
      break
    end
    if not isSchedulerJob(KEYS[3], P, id) then
      local t = jobTime(id, fields)
      if not t or t <= cutoff then
        removeJob(P, id)
        deleted[#deleted + 1] = id
      end
    end
  end
else
  -- Lists: the oldest entries are at the right end, so a limited call looks at the right
  -- end. Removed entries are overwritten with a marker and dropped together at the end.
  local ids
  if limit > 0 then
    ids = rcall("LRANGE", key, -limit, -1)
  else
    ids = rcall("LRANGE", key, 0, -1)
  end
  local n = #ids
  local checkLock = state == "active"
  for i = 1, n do
    if full() then
      break
    end
    local id = ids[i]
    if (not checkLock or rcall("EXISTS", P .. id .. ":lock") == 0)
        and not isSchedulerJob(KEYS[3], P, id) then
      local t = jobTime(id, {"finishedOn", "processedOn", "timestamp"})
      if not t or t <= cutoff then
        rcall("LSET", key, i - n - 1, "")
        removeJob(P, id)
        deleted[#deleted + 1] = id
      end
    end
  end
  if #deleted > 0 then
    rcall("LREM", key, 0, "")
  end
end

if #deleted > 0 and (state == "completed" or state == "failed" or state == "delayed"
    or state == "prioritized") then
  for from = 1, #deleted, 1000 do
    rcall("ZREM", key, unpack(deleted, from, math.min(from + 999, #deleted)))
  end
end
rcall("XADD", KEYS[2], "*", "event", "cleaned", "count", #deleted)
return deleted
