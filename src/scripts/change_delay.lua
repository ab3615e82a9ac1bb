--[[
  change_delay: job.changeDelay(delay): a delayed job is rescheduled to now + delay; `delay`
  field updated; the delay marker points at the earliest delayed job. Event `delayed` (delay =
  the new due time).

  KEYS
    1 delayed   zset
    2 meta      hash
    3 marker    zset
    4 events    stream

  ARGV
    1 P       "<prefix>:<queue>:"
    2 jobId
    3 delay   ms from now (>= 0)
    4 now     ms

  Returns 0.

  Error codes
    -1 the job does not exist, -3 it is not delayed.
]]
--@include rcall, read_meta, delayed_score, mark_delayed, emit

local id = ARGV[2]
local jobKey = ARGV[1] .. id
-- The same opening as change_priority.lua and promote.lua (a job that must exist).
if rcall("EXISTS", jobKey) == 0 then
  return -1
end
local delay = tonumber(ARGV[3])
local due = tonumber(ARGV[4])
if delay > 0 then
  due = due + delay
end
if rcall("ZREM", KEYS[1], id) == 0 then
  return -3
end
local q = readMeta({delayed = KEYS[1], meta = KEYS[2], marker = KEYS[3], events = KEYS[4]}, true)
rcall("HSET", jobKey, "delay", delay)
rcall("ZADD", KEYS[1], delayedScore(q, due), id)
emit(q, "event", "delayed", "jobId", id, "delay", due)
-- The marker is moved even for a paused queue, as BullMQ does.
q.paused = false
markDelayed(q)
return 0
