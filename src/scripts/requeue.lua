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

-- helper: isMaxed
local function isMaxed(q)
  return q.cap ~= nil and rcall("LLEN", q.active) >= q.cap
end
-- end helper

-- helper: emit
local function emit(q, ...)
  rcall("XADD", q.events, "MAXLEN", "~", q.evCap, "*", ...)
end
-- end helper

-- helper: wake
-- Tells blocked workers that a job can be taken now, unless nobody may take it.
local function wake(q)
  if not (q.paused or isMaxed(q)) then
    rcall("ZADD", q.marker, 0, "0")
  end
end
-- end helper

-- helper: enqueue
-- Makes a job waiting: into `prioritized` when it has a priority, otherwise onto the list
-- waiting jobs live in (`paused` only for a paused queue managed by a v5 Queue).
local function enqueue(q, id, priority, pushCmd)
  if priority > 0 then
    local seq = rcall("INCR", q.pc) % 4294967296
    rcall("ZADD", q.prioritized, priority * 4294967296 + seq, id)
  elseif q.paused and q.v5 then
    rcall(pushCmd, q.pausedList, id)
  else
    rcall(pushCmd, q.wait, id)
  end
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
