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
--@include rcall, read_meta, emit, wake, enqueue, fetch, delayed_score, unlock, mark_delayed, queue_at

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
