--[[
  finish: move an active job to completed or failed, then optionally fetch the next jobs.

  Checks, in order: the job exists (-1); when completing, it has no pending children (-4)
  and no failed children (-9); the lock belongs to the token (-2 / -6), which is then
  released; the job is in `active` (-3). Then: events are trimmed, the deduplication key
  the job owns is released, the parent (possibly in another queue) is updated and released
  when it has nothing left to wait for, `atm` is incremented, the job is kept in the target
  set (with retention trimming) or deleted, and `completed` / `failed` (+ `retries-exhausted`)
  is emitted. With fetch tokens, the next jobs are taken exactly as activate.lua does.
  When nothing could be fetched (or no fetch was asked) and wait, active and prioritized
  are all empty, `drained` is emitted.

  KEYS
    1 wait          list
    2 active        list
    3 prioritized   zset
    4 events        stream
    5 stalled       set
    6 limiter       string
    7 delayed       zset
    8 paused        list (v5 layout only)
    9 meta          hash
   10 pc            string
   11 target        zset: completed or failed
   12 job           hash (P .. jobId)
   13 marker        zset

  ARGV
    1 jobId
    2 now           ms (= finishedOn)
    3 outcome       "completed" | "failed"
    4 value         returnvalue JSON (completed) | plain failedReason (failed)
    5 token         lock token ("0" = no lock check)
    6 keep count    -1 keep all, 0 delete the job now, n keep the newest n
    7 keep age      seconds, "0" = no age limit
    8 keep limit    max jobs removed by age per call, "0" = 1000
    9 attempts      the job's opts.attempts (for `retries-exhausted`)
   10 stacktrace    JSON array or "" (failed only)
   11 P             "<prefix>:<queue>:"
   12 lockDuration  ms (fetch)
   13 limiter max   "0" = none (fetch)
   14 limiter duration ms (fetch)
   15 worker name   "" = none (fetch)
   16..             lock tokens for the fetch, one per job wanted (none = do not fetch)

  Returns
    the activate.lua reply { rateLimitTtl, nextDelayedDue, id1, {fields}, ... };
    {0, 0} when no fetch was asked.

  Error codes
    -1 job missing, -2 lock missing, -6 lock held by another token, -3 not in active,
    -4 pending dependencies, -9 failed children.
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

-- Keys of the queue whose key prefix is P (used for a parent in any queue).
local function queueAt(P)
  return readMeta({
    prefix = P, wait = P .. "wait", active = P .. "active", prioritized = P .. "prioritized",
    events = P .. "events", delayed = P .. "delayed", pausedList = P .. "paused",
    meta = P .. "meta", pc = P .. "pc", marker = P .. "marker"
  }, false)
end

-- A parent that has just left waiting-children runs again: after its own delay if it has
-- one, else from wait (RPUSH: it runs next) or prioritized.
local function placeParent(pq, parentKey, parentId, now)
  local f = rcall("HMGET", parentKey, "priority", "delay")
  local delay = tonumber(f[2]) or 0
  if delay > 0 then
    local due = now + delay
    rcall("ZADD", pq.delayed, delayedScore(pq, due), parentId)
    emit(pq, "event", "delayed", "jobId", parentId, "delay", due)
    markDelayed(pq)
  else
    enqueue(pq, parentId, tonumber(f[1]) or 0, "RPUSH")
    wake(pq)
    emit(pq, "event", "waiting", "jobId", parentId, "prev", "waiting-children")
  end
end

local function releaseIfWaiting(pq, parentKey, parentId, now)
  if rcall("EXISTS", parentKey) == 1
      and rcall("ZREM", pq.prefix .. "waiting-children", parentId) == 1 then
    placeParent(pq, parentKey, parentId, now)
  end
end

-- Where the parent of a job lives: its key, id and queue (from the `parent` JSON when
-- present, else from `parentKey`), plus the decoded `parent` JSON.
local function parentOf(parentKey, parentJson)
  local info = {}
  if parentJson then
    local ok, decoded = pcall(cjson.decode, parentJson)
    if ok and type(decoded) == "table" then
      info = decoded
    end
  end
  local qk, id = info.queueKey, info.id
  if type(qk) ~= "string" or type(id) ~= "string" then
    if not parentKey then
      return nil
    end
    qk, id = string.match(parentKey, "^(.*):([^:]+)$")
    if not qk then
      return nil
    end
  end
  return parentKey or (qk .. ":" .. id), id, queueAt(qk .. ":"), info
end

-- A job being deleted must not keep its parent waiting for it.
local function detachFromParent(jobKey, now)
  local parentKey = rcall("HGET", jobKey, "parentKey")
  if parentKey and rcall("SREM", parentKey .. ":dependencies", jobKey) == 1
      and rcall("SCARD", parentKey .. ":dependencies") == 0 then
    local key, id, pq = parentOf(parentKey, nil)
    if key then
      releaseIfWaiting(pq, key, id, now)
    end
  end
end

local function deleteJob(jobKey, now)
  detachFromParent(jobKey, now)
  rcall("DEL", jobKey, jobKey .. ":logs", jobKey .. ":dependencies", jobKey .. ":processed",
    jobKey .. ":failed", jobKey .. ":unsuccessful")
end

local function removeFromSet(setKey, ids, prefix, now)
  for _, id in ipairs(ids) do
    deleteJob(prefix .. id, now)
  end
  for from = 1, #ids, 7000 do
    rcall("ZREM", setKey, unpack(ids, from, math.min(from + 6999, #ids)))
  end
end

-- The child's final failure, as the parent asked for it (flags of the `parent` JSON, or of
-- the child's `opts`).
local function childFailed(jobKey, parentKey, parentId, pq, info, reason, now)
  local opts = {}
  local raw = rcall("HGET", jobKey, "opts")
  if raw then
    local ok, decoded = pcall(cjson.decode, raw)
    if ok and type(decoded) == "table" then
      opts = decoded
    end
  end
  local function flag(name)
    return info[name] == true or opts[name] == true
  end
  local deps = parentKey .. ":dependencies"
  if flag("fpof") then
    if rcall("SREM", deps, jobKey) == 1 then
      rcall("ZADD", parentKey .. ":unsuccessful", now, jobKey)
      if rcall("EXISTS", parentKey) == 1 then
        local why = "child " .. jobKey .. " failed"
        if rcall("ZREM", pq.prefix .. "waiting-children", parentId) == 1 then
          rcall("HSET", parentKey, "defa", why)
          placeParent(pq, parentKey, parentId, now)
        elseif rcall("ZREM", pq.delayed, parentId) == 1 then
          rcall("HSET", parentKey, "delay", 0, "defa", why)
          placeParent(pq, parentKey, parentId, now)
        elseif not rcall("ZSCORE", pq.prefix .. "failed", parentId) then
          rcall("HSET", parentKey, "defa", why)
        end
      end
    end
  elseif flag("cpof") then
    if rcall("SREM", deps, jobKey) == 1 then
      rcall("HSET", parentKey .. ":failed", jobKey, reason)
      releaseIfWaiting(pq, parentKey, parentId, now)
    end
  elseif flag("idof") or flag("rdof") then
    if rcall("SREM", deps, jobKey) == 1 then
      if flag("idof") then
        rcall("HSET", parentKey .. ":failed", jobKey, reason)
      end
      if rcall("SCARD", deps) == 0 then
        releaseIfWaiting(pq, parentKey, parentId, now)
      end
    end
  end
end

local jobId, now, outcome, value, prefix = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[11]
local jobKey = KEYS[12]
local completed = outcome == "completed"

if rcall("EXISTS", jobKey) == 0 then
  return -1
end
if completed then
  if rcall("SCARD", jobKey .. ":dependencies") > 0 then
    return -4
  end
  if rcall("ZCARD", jobKey .. ":unsuccessful") > 0 then
    return -9
  end
end
local code = unlock(jobKey, ARGV[5], KEYS[5], jobId)
if code < 0 then
  return code
end
if rcall("LREM", KEYS[2], -1, jobId) == 0 then
  return -3
end

local q = readMeta({
  prefix = prefix, wait = KEYS[1], active = KEYS[2], prioritized = KEYS[3],
  events = KEYS[4], limiter = KEYS[6], delayed = KEYS[7], pausedList = KEYS[8],
  meta = KEYS[9], pc = KEYS[10], marker = KEYS[13]
}, true)
rcall("XTRIM", q.events, "MAXLEN", "~", q.evCap)

local job = rcall("HMGET", jobKey, "parentKey", "parent", "deid")

-- The deduplication id stops deduplicating once its job is done (a key with a TTL keeps
-- deduplicating until it expires).
if job[3] then
  local deKey = prefix .. "de:" .. job[3]
  if rcall("PTTL", deKey) == -1 and rcall("GET", deKey) == jobId then
    rcall("DEL", deKey)
  end
end

if job[1] or job[2] then
  local parentKey, parentId, pq, info = parentOf(job[1] or nil, job[2] or nil)
  if parentKey then
    if completed then
      local deps = parentKey .. ":dependencies"
      if rcall("SREM", deps, jobKey) == 1 then
        rcall("HSET", parentKey .. ":processed", jobKey, value)
        if rcall("SCARD", deps) == 0 then
          releaseIfWaiting(pq, parentKey, parentId, now)
        end
      end
    else
      childFailed(jobKey, parentKey, parentId, pq, info, value, now)
    end
  end
end

local attemptsMade = rcall("HINCRBY", jobKey, "atm", 1)

local keepCount = tonumber(ARGV[6])
if keepCount == 0 then
  deleteJob(jobKey, now)
else
  local target = KEYS[11]
  rcall("ZADD", target, now, jobId)
  if completed then
    rcall("HSET", jobKey, "returnvalue", value, "finishedOn", now)
  else
    rcall("HSET", jobKey, "failedReason", value, "finishedOn", now)
    if ARGV[10] ~= "" then
      rcall("HSET", jobKey, "stacktrace", ARGV[10])
    end
    rcall("HDEL", jobKey, "defa")
  end
  local age = tonumber(ARGV[7]) or 0
  if age > 0 then
    local limit = tonumber(ARGV[8]) or 0
    if limit <= 0 then
      limit = 1000
    end
    local old = rcall("ZREVRANGEBYSCORE", target, now - age * 1000, "-inf", "LIMIT", 0, limit)
    removeFromSet(target, old, prefix, now)
  end
  if keepCount > 0 then
    removeFromSet(target, rcall("ZREVRANGE", target, keepCount, -1), prefix, now)
  end
end

if completed then
  emit(q, "event", "completed", "jobId", jobId, "returnvalue", value, "prev", "active")
else
  emit(q, "event", "failed", "jobId", jobId, "failedReason", value, "prev", "active")
  if attemptsMade >= (tonumber(ARGV[9]) or 0) then
    emit(q, "event", "retries-exhausted", "jobId", jobId, "attemptsMade", attemptsMade)
  end
end

local reply, nothing = {0, 0}, true
if #ARGV >= 16 then
  local tokens = {}
  for i = 16, #ARGV do
    tokens[#tokens + 1] = ARGV[i]
  end
  reply, nothing = fetch(q, now, ARGV[12], tonumber(ARGV[13]), tonumber(ARGV[14]), ARGV[15],
    tokens)
end
if nothing and rcall("LLEN", q.wait) == 0 and rcall("LLEN", q.active) == 0
    and rcall("ZCARD", q.prioritized) == 0 then
  emit(q, "event", "drained")
end
return reply
