--[[
  retry: put an active job straight back to waiting (a failed attempt retried without
  backoff). Due delayed jobs are promoted first, as in BullMQ.

  KEYS
    1 active        list
    2 wait          list
    3 paused        list (v5 layout only)
    4 job           hash (P .. jobId)
    5 meta          hash
    6 events        stream
    7 delayed       zset
    8 prioritized   zset
    9 pc            string
   10 marker        zset
   11 stalled       set

  ARGV
    1 P             "<prefix>:<queue>:"
    2 now           ms
    3 push command  "LPUSH" (normal) | "RPUSH" (lifo job: runs next)
    4 jobId
    5 token         lock token ("0" = no lock check)
    6 failedReason  plain text
    7 stacktrace    JSON array or "" (left unchanged when "")

  Returns 0.

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

-- helper: promoteDue
-- Moves delayed jobs whose time has come (at most 1000 per call) to waiting.
local function promoteDue(q, now)
  local ids = rcall("ZRANGEBYSCORE", q.delayed, 0, (now + 1) * 4096 - 1, "LIMIT", 0, 1000)
  if #ids == 0 then
    return
  end
  rcall("ZREM", q.delayed, unpack(ids))
  for _, id in ipairs(ids) do
    local jobKey = q.prefix .. id
    enqueue(q, id, tonumber(rcall("HGET", jobKey, "priority")) or 0, "LPUSH")
    rcall("HSET", jobKey, "delay", 0)
    emit(q, "event", "waiting", "jobId", id, "prev", "delayed")
  end
  wake(q)
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

local q = readMeta({
  prefix = ARGV[1], wait = KEYS[2], active = KEYS[1], prioritized = KEYS[8],
  events = KEYS[6], delayed = KEYS[7], pausedList = KEYS[3], meta = KEYS[5],
  pc = KEYS[9], marker = KEYS[10]
}, true)
local jobKey, jobId = KEYS[4], ARGV[4]

promoteDue(q, tonumber(ARGV[2]))

if rcall("EXISTS", jobKey) == 0 then
  return -1
end
local code = unlock(jobKey, ARGV[5], KEYS[11], jobId)
if code < 0 then
  return code
end
if rcall("LREM", q.active, -1, jobId) == 0 then
  return -3
end

rcall("HSET", jobKey, "failedReason", ARGV[6])
if ARGV[7] ~= "" then
  rcall("HSET", jobKey, "stacktrace", ARGV[7])
end
local pushCmd = "LPUSH"
if ARGV[3] == "RPUSH" then
  pushCmd = "RPUSH"
end
enqueue(q, jobId, tonumber(rcall("HGET", jobKey, "priority")) or 0, pushCmd)
wake(q)
rcall("HINCRBY", jobKey, "atm", 1)
emit(q, "event", "waiting", "jobId", jobId, "prev", "active")
return 0
