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
local rcall = redis.call

-- helper: readMeta
-- Loads the queue flags kept in meta into q. With store, a missing events cap is written
-- back with its default (BullMQ's finishing scripts do the same).
local function readMeta(q, store)
  local m = rcall("HMGET", q.meta, "paused", "concurrency", "max", "duration", "version",
    "opts.maxLenEvents")
  q.paused = m[1] ~= false
  q.cap = tonumber(m[2])
  q.max = tonumber(m[3])
  q.duration = tonumber(m[4])
  q.v5 = type(m[5]) == "string" and string.sub(m[5], 1, 8) == "bullmq:5"
  q.evCap = tonumber(m[6]) or 10000
  if store and not m[6] then
    rcall("HSET", q.meta, "opts.maxLenEvents", 10000)
  end
  return q
end
-- end helper

-- helper: emit
local function emit(q, ...)
  rcall("XADD", q.events, "MAXLEN", "~", q.evCap, "*", ...)
end
-- end helper

-- helper: nextDue
-- Due time (ms) of the earliest delayed job, 0 when there is none.
local function nextDue(q)
  local first = rcall("ZRANGE", q.delayed, 0, 0, "WITHSCORES")
  if first[2] then
    return math.floor(tonumber(first[2]) / 4096)
  end
  return 0
end
-- end helper

-- helper: unlock
-- Releases the job's lock for its owner: 0 when released (or token "0" = no lock in use),
-- -2 when there is no lock, -6 when another token holds it.
local function unlock(jobKey, token, stalledKey, id)
  if token == "0" then
    return 0
  end
  local held = rcall("GET", jobKey .. ":lock")
  if not held then
    return -2
  end
  if held ~= token then
    return -6
  end
  rcall("DEL", jobKey .. ":lock")
  rcall("SREM", stalledKey, id)
  return 0
end
-- end helper

-- helper: delayedScore
-- Score for a job due at `due` ms: due * 4096 plus an insertion sequence within that ms.
local function delayedScore(q, due)
  local low = due * 4096
  local high = low + 4095
  local last = rcall("ZREVRANGEBYSCORE", q.delayed, high, low, "WITHSCORES", "LIMIT", 0, 1)
  if last[2] then
    return math.min(tonumber(last[2]) + 1, high)
  end
  return low
end
-- end helper

-- helper: markDelayed
-- Points the delay marker at the earliest delayed job, unless the queue is paused.
local function markDelayed(q)
  local due = nextDue(q)
  if due > 0 and not q.paused then
    rcall("ZADD", q.marker, due, "1")
  end
end
-- end helper

local q = readMeta({
  prefix = ARGV[1], active = KEYS[2], delayed = KEYS[4], events = KEYS[6], meta = KEYS[7],
  marker = KEYS[1]
}, true)
local jobKey, jobId = KEYS[5], ARGV[3]

if rcall("EXISTS", jobKey) == 0 then
  return -1
end
local code = unlock(jobKey, ARGV[4], KEYS[8], jobId)
if code < 0 then
  return code
end
if rcall("LREM", q.active, -1, jobId) == 0 then
  return -3
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
