--[[
  requeue: put an active job back to waiting without counting an attempt (the processor hit
  a manual rate limit: `worker.rateLimit(ms)` + RateLimitError). BullMQ's
  moveJobFromActiveToWait.

  The job goes to the end of `wait` that runs next (RPUSH), or, with a priority, to the
  front of its priority class in `prioritized` (score priority * 2^32, no counter). `atm` is
  not touched; `ats` keeps the activation that was counted.

  KEYS
    1 active        list
    2 wait          list
    3 stalled       set
    4 paused        list (v5 layout only)
    5 meta          hash
    6 limiter       string (rate-limit key)
    7 prioritized   zset
    8 marker        zset
    9 events        stream
   10 job           hash (P .. jobId)

  ARGV
    1 jobId
    2 token         lock token ("0" = no lock check)
    3 P             "<prefix>:<queue>:"

  Returns
    the limiter's remaining PTTL in ms (> 0 while the queue is rate limited), else 0.
    Emits `waiting jobId prev=active` and writes the base marker unless the queue is paused
    or maxed.

  Error codes
    -1 job missing, -2 lock missing, -6 lock held by another token, -3 not in active.
]]
--@include rcall, read_meta, emit, wake, enqueue, unlock

local jobKey, jobId = KEYS[10], ARGV[1]

if rcall("EXISTS", jobKey) == 0 then
  return -1
end
local code = unlock(jobKey, ARGV[2], KEYS[3], jobId)
if code < 0 then
  return code
end
if rcall("LREM", KEYS[1], 1, jobId) == 0 then
  return -3
end

local q = readMeta({
  prefix = ARGV[3], wait = KEYS[2], active = KEYS[1], prioritized = KEYS[7],
  pausedList = KEYS[4], meta = KEYS[5], marker = KEYS[8], events = KEYS[9]
}, true)
local priority = tonumber(rcall("HGET", jobKey, "priority")) or 0
if priority > 0 then
  rcall("ZADD", q.prioritized, priority * 4294967296, jobId)
else
  enqueue(q, jobId, 0, "RPUSH")
end
wake(q)
emit(q, "event", "waiting", "jobId", jobId, "prev", "active")

local ttl = rcall("PTTL", KEYS[6])
if ttl > 0 then
  return ttl
end
return 0
