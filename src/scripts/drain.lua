--[[
  drain: remove every job that is waiting (wait, the legacy paused list, prioritized) and,
  when asked, every delayed job. Active, completed and failed jobs stay. The pending
  iteration of each job scheduler is kept (removing it would stop the scheduler). Removed
  children leave their parents' dependencies (see removeJob).

  KEYS
    1 wait          list
    2 paused        list (legacy v5 layout)
    3 delayed       zset
    4 prioritized   zset
    5 repeat        zset (job schedulers)

  ARGV
    1 P             "<prefix>:<queue>:"
    2 delayed       "1" also removes delayed jobs

  Returns
    the number of jobs removed.

  Error codes: none.
]]
--@include rcall, remove_job, is_scheduler_job

local P = ARGV[1]
local removed = 0

-- The ids to remove from a list or zset (scheduler iterations filtered out).
local function removable(ids)
  local out = {}
  for _, id in ipairs(ids) do
    if not isSchedulerJob(KEYS[5], P, id) then
      out[#out + 1] = id
    end
  end
  return out
end

local function drainList(key)
  local ids = rcall("LRANGE", key, 0, -1)
  local gone = removable(ids)
  for _, id in ipairs(gone) do
    removeJob(P, id)
  end
  if #gone == #ids then
    rcall("DEL", key)
  else
    for _, id in ipairs(gone) do
      rcall("LREM", key, 0, id)
    end
  end
  removed = removed + #gone
end

local function drainZset(key)
  local gone = removable(rcall("ZRANGE", key, 0, -1))
  for _, id in ipairs(gone) do
    removeJob(P, id)
  end
  for from = 1, #gone, 1000 do
    rcall("ZREM", key, unpack(gone, from, math.min(from + 999, #gone)))
  end
  removed = removed + #gone
end

drainList(KEYS[1])
drainList(KEYS[2])
if ARGV[2] == "1" then
  drainZset(KEYS[3])
end
drainZset(KEYS[4])
return removed
