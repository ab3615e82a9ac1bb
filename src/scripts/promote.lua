--[[
  promote: job.promote(): a delayed job becomes waiting now (end of wait, or prioritized with a
  fresh counter when it has a priority; base marker unless paused or maxed), `delay` = 0.
  Event `waiting` (prev = delayed).

  KEYS (the list `ENQUEUE_KEYS` of src/engine/surface.rs: the same for change_priority.lua and move_jobs_to_wait.lua)
    1 wait          list
    2 paused        list (v5 layout)
    3 meta          hash
    4 prioritized   zset
    5 active        list
    6 pc            string
    7 marker        zset
    8 events        stream
    9 delayed       zset

  ARGV
    1 P       "<prefix>:<queue>:"
    2 jobId

  Returns 0.

  Error codes
    -3 the job is not delayed.
]]
--@include rcall, read_meta, enqueue, wake, emit

local id = ARGV[2]
if rcall("ZREM", KEYS[9], id) == 0 then
  return -3
end
local jobKey = ARGV[1] .. id
local q = readMeta({
  wait = KEYS[1], pausedList = KEYS[2], meta = KEYS[3], prioritized = KEYS[4], active = KEYS[5],
  pc = KEYS[6], marker = KEYS[7], events = KEYS[8]
}, false)
-- A v5 delay marker ("0:<ts>") at the head of wait is obsolete once a job is there.
local head = rcall("LINDEX", KEYS[1], 0)
if head and string.sub(head, 1, 2) == "0:" then
  rcall("LPOP", KEYS[1])
end
enqueue(q, id, tonumber(rcall("HGET", jobKey, "priority")) or 0, "LPUSH")
wake(q)
emit(q, "event", "waiting", "jobId", id, "prev", "delayed")
rcall("HSET", jobKey, "delay", 0)
return 0
