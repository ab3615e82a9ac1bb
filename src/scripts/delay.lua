--[[
  delay: move an active job to delayed, due at now + delay. Used for a retry with backoff
  (skipAttempt "0": the failed attempt counts) and for the processor's own moveToDelayed
  (skipAttempt "1").

  KEYS
    1 marker        zset
    2 active        list
    3 prioritized   zset (unused; same keys as BullMQ's moveToDelayed)
    4 delayed       zset
    5 job           hash (P .. jobId)
    6 events        stream
    7 meta          hash
    8 stalled       set
    9 wait          list (unused)
   10 limiter       string (unused)
   11 pc            string (unused)

  ARGV
    1 P             "<prefix>:<queue>:"
    2 now           ms
    3 jobId
    4 token         lock token ("0" = no lock check)
    5 delay         ms
    6 skipAttempt   "1" | "0"
    7 failedReason  plain text, or "" to leave it unchanged
    8 stacktrace    JSON array, or "" to leave it unchanged

  Returns 0. Emits `delayed` with delay = the due timestamp (ms) and, unless the queue is
  paused, points the delay marker ("1") at the earliest delayed job.

  Error codes
    -1 job missing, -2 lock missing, -6 lock held by another token, -3 not in active.
]]
--@include rcall, read_meta, emit, delayed_score, unlock, mark_delayed

local q = readMeta({
  prefix = ARGV[1], active = KEYS[2], delayed = KEYS[4], events = KEYS[6], meta = KEYS[7],
  marker = KEYS[1]
}, true)
local jobKey, jobId = KEYS[5], ARGV[3]

-- The same existence check and leaveActive as retry.lua: each script stands alone in Redis.

if rcall("EXISTS", jobKey) == 0 then
  return -1
end
local code = leaveActive(jobKey, ARGV[4], KEYS[8], q.active, jobId)
if code < 0 then
  return code
end

if ARGV[7] ~= "" then
  rcall("HSET", jobKey, "failedReason", ARGV[7])
end
if ARGV[8] ~= "" then
  rcall("HSET", jobKey, "stacktrace", ARGV[8])
end
local delay = tonumber(ARGV[5]) or 0
local due = tonumber(ARGV[2])
if delay > 0 then
  due = due + delay
end
if ARGV[6] ~= "1" then
  rcall("HINCRBY", jobKey, "atm", 1)
end
rcall("HSET", jobKey, "delay", ARGV[5])
rcall("ZADD", q.delayed, delayedScore(q, due), jobId)
emit(q, "event", "delayed", "jobId", jobId, "delay", due)
markDelayed(q)
return 0
