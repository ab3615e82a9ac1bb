--[[
  change_priority: job.changePriority({ priority, lifo }): store the new priority and, if the
  job is waiting (wait or prioritized), queue it again by it: priority 0 onto wait (front with
  lifo), else into prioritized (with lifo: ahead of the jobs of the same priority, no marker).

  KEYS (the list `ENQUEUE_KEYS` of src/engine/surface.rs: the same for promote.lua and move_jobs_to_wait.lua)
    1 wait          list
    2 paused        list (v5 layout)
    3 meta          hash
    4 prioritized   zset
    5 active        list
    6 pc            string
    7 marker        zset
    8 events        stream (unused)
    9 delayed       zset (unused)

  ARGV
    1 P          "<prefix>:<queue>:"
    2 jobId
    3 priority   0 .. 2097152
    4 lifo       "1" | "0"

  Returns 0.

  Error codes
    -1 the job does not exist.
]]
--@include rcall, read_meta, enqueue, wake

local id = ARGV[2]
local jobKey = ARGV[1] .. id
if rcall("EXISTS", jobKey) == 0 then
  return -1
end
local priority = tonumber(ARGV[3])
local lifo = ARGV[4] == "1"
local q = readMeta({
  wait = KEYS[1], pausedList = KEYS[2], meta = KEYS[3], prioritized = KEYS[4], active = KEYS[5],
  pc = KEYS[6], marker = KEYS[7]
}, false)
if rcall("ZREM", KEYS[4], id) > 0 or rcall("LREM", KEYS[1], -1, id) > 0 then
  if priority == 0 then
    rcall(lifo and "RPUSH" or "LPUSH", KEYS[1], id)
    wake(q)
  elseif lifo then
    rcall("ZADD", KEYS[4], priority * 4294967296, id)
  else
    enqueue(q, id, priority, "LPUSH")
    wake(q)
  end
end
rcall("HSET", jobKey, "priority", priority)
return 0
