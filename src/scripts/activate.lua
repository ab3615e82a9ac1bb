--[[
  activate: take up to N waiting jobs and make them active (batched fetch).

  Before taking anything, delayed jobs that are due are promoted to waiting. Jobs are
  taken from the right end of `wait` first, then from `prioritized` (lowest score first).
  Every taken job is locked with its own token, gets `processedOn`/`pb`/`ats` and an
  `active` event; the base marker is re-added afterwards so the next blocked worker wakes.

  KEYS
    1 wait          list
    2 active        list
    3 prioritized   zset
    4 events        stream
    5 stalled       set   (unused here; kept so every fetching script has the same keys)
    6 limiter       string (rate-limit window counter)
    7 delayed       zset
    8 paused        list  (v5 layout only)
    9 meta          hash
   10 pc            string (priority counter)
   11 marker        zset

  ARGV
    1 P             "<prefix>:<queue>:"
    2 now           ms
    3 lockDuration  ms
    4 limiter max   "0" = the worker has no limiter
    5 limiter duration ms
    6 worker name   "" = none (else stored as `pb`)
    7..             one lock token per job wanted ("0" = take without a lock)

  Returns
    { rateLimitTtl, nextDelayedDue, id1, {field, value, ...}, id2, {...}, ... }
    rateLimitTtl   > 0 only when nothing was taken because the rate limit is reached
    nextDelayedDue floor(lowest delayed score / 4096) when nothing was taken, else 0

  Error codes: none.
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

-- helper: fetch
-- Remaining window (ms) of a reached rate limit, 0 when jobs may start.
local function limitTtl(q, max)
  if max and (tonumber(rcall("GET", q.limiter)) or 0) >= max then
    local ttl = rcall("PTTL", q.limiter)
    if ttl > 0 then
      return ttl
    end
  end
  return 0
end

-- Next waiting id moved to active: the wait list first (skipping legacy "0:" markers),
-- then the lowest-scored prioritized job.
local function popWaiting(q)
  local id = rcall("RPOPLPUSH", q.wait, q.active)
  while id and string.sub(id, 1, 2) == "0:" do
    rcall("LREM", q.active, 1, id)
    id = rcall("RPOPLPUSH", q.wait, q.active)
  end
  if id then
    return id
  end
  local top = rcall("ZPOPMIN", q.prioritized)
  if top[1] then
    rcall("LPUSH", q.active, top[1])
    return top[1]
  end
  rcall("DEL", q.pc)
end

-- Promotes due delayed jobs, then activates one job per token while the queue is neither
-- paused, maxed nor rate limited. q must have been through readMeta. Returns the reply
-- {ttl, nextDue, id, fields, ...} and whether the queue had nothing at all to offer (no
-- job, no limit, not paused or maxed, nothing delayed).
local function fetch(q, now, lockMs, workerMax, workerWindow, worker, tokens)
  promoteDue(q, now)
  local max = q.max or workerMax
  if max and max <= 0 then
    max = nil
  end
  local window = q.duration
  if workerWindow and workerWindow > 0 then
    window = workerWindow
  end
  local reply = {0, 0}
  local ttl = limitTtl(q, max)
  if ttl > 0 then
    reply[1] = ttl
    return reply, false
  end
  if q.paused or isMaxed(q) then
    return reply, false
  end
  for i, token in ipairs(tokens) do
    if i > 1 and (isMaxed(q) or limitTtl(q, max) > 0) then
      break
    end
    local id = popWaiting(q)
    if not id then
      break
    end
    local jobKey = q.prefix .. id
    if max and rcall("HEXISTS", jobKey, "defa") == 0 then
      if rcall("INCR", q.limiter) == 1 and window and window > 0 then
        rcall("PEXPIRE", q.limiter, math.floor(window))
      end
    end
    if token ~= "0" then
      rcall("SET", jobKey .. ":lock", token, "PX", lockMs)
    end
    emit(q, "event", "active", "jobId", id, "prev", "waiting")
    if worker ~= "" then
      rcall("HSET", jobKey, "processedOn", now, "pb", worker)
    else
      rcall("HSET", jobKey, "processedOn", now)
    end
    rcall("HINCRBY", jobKey, "ats", 1)
    reply[#reply + 1] = id
    reply[#reply + 1] = rcall("HGETALL", jobKey)
  end
  if #reply > 2 then
    rcall("ZADD", q.marker, 0, "0")
    return reply, false
  end
  reply[2] = nextDue(q)
  return reply, reply[2] == 0
end
-- end helper

local q = readMeta({
  prefix = ARGV[1], wait = KEYS[1], active = KEYS[2], prioritized = KEYS[3],
  events = KEYS[4], limiter = KEYS[6], delayed = KEYS[7], pausedList = KEYS[8],
  meta = KEYS[9], pc = KEYS[10], marker = KEYS[11]
}, false)

local tokens = {}
for i = 7, #ARGV do
  tokens[#tokens + 1] = ARGV[i]
end

local reply = fetch(q, tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]),
  ARGV[6], tokens)
return reply
