--[[
  get_state: the state of one job, BullMQ's job.getState() / queue.getJobState().

  KEYS
    1 completed         zset
    2 failed            zset
    3 delayed           zset
    4 active            list
    5 wait              list
    6 paused            list (v5 layout)
    7 waiting-children  zset
    8 prioritized       zset

  ARGV
    1 P       "<prefix>:<queue>:"
    2 jobId

  Returns "completed" | "failed" | "delayed" | "prioritized" | "active" | "waiting" |
  "waiting-children" | "unknown" (checked in that order, as BullMQ does).

  Error codes: none.
]]
local rcall = redis.call
local id = ARGV[2]
if rcall("ZSCORE", KEYS[1], id) then return "completed" end
if rcall("ZSCORE", KEYS[2], id) then return "failed" end
if rcall("ZSCORE", KEYS[3], id) then return "delayed" end
if rcall("ZSCORE", KEYS[8], id) then return "prioritized" end
if rcall("LPOS", KEYS[4], id) then return "active" end
if rcall("LPOS", KEYS[5], id) or rcall("LPOS", KEYS[6], id) then return "waiting" end
if rcall("ZSCORE", KEYS[7], id) then return "waiting-children" end
return "unknown"
