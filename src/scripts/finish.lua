--[[
  finish: move active jobs to completed or failed (one or many in one call), then
  optionally fetch the next jobs.

  For each job, in order: it exists (-1); when completing, it has no pending children (-4)
  and no failed children (-9); the lock belongs to the token (-2 / -6), which is then
  released; it is in `active` (-3). A job that fails a check gets its code and is left as
  it was; the others are still finished. Then: the deduplication key the job owns is
  released (and an add parked for it by keepLastIfActive becomes a job: events `added`,
  `waiting` / `delayed`), the parent (possibly in another queue) is updated and released
  when it has nothing left to wait for, `atm` is incremented, the job is kept in the target set (with
  retention trimming) or deleted, and `completed` / `failed` (+ `retries-exhausted`) is
  emitted. With fetch tokens, the next jobs are taken exactly as activate.lua does. When
  nothing could be fetched (or no fetch was asked) and wait, active and prioritized are all
  empty, `drained` is emitted. The events stream is trimmed to its cap first, and this
  call's events are added uncapped (BullMQ's moveToFinished: a cap of 0 keeps them).

  Several jobs per call is how the worker coalesces the completions that arrive while its
  previous call is in flight: the call, the meta read, the delayed check and the marker are
  paid once for the batch.

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
   11 completed     zset
   12 failed        zset
   13 marker        zset
   14 metrics:completed  hash  } only with metrics on (worker option metrics.maxDataPoints);
   15 metrics:failed     hash  } their `:data` lists are derived from them

  ARGV
    1 now           ms (= finishedOn)
    2 P             "<prefix>:<queue>:"
    3 lockDuration  ms (fetch)
    4 limiter max   "0" = none (fetch)
    5 limiter duration ms (fetch)
    6 worker name   "" = none (fetch)
    7 N             jobs to finish
    8 ..            N groups of 9:
                      jobId, outcome ("completed" | "failed"),
                      value (returnvalue JSON | plain failedReason), token ("0" = no lock check),
                      keep count (-1 keep all, 0 delete now, n keep the newest n),
                      keep age (seconds, "0" = none), keep limit (per call, "0" = 1000),
                      attempts (opts.attempts, for `retries-exhausted`),
                      stacktrace (JSON array or "")
    8 + 9N ..       lock tokens for the fetch, one per job wanted (none = do not fetch)
    last            maxDataPoints, only with metrics on (KEYS 14 and 15 given)

  Returns
    { {code1, .., codeN}, rateLimitTtl, nextDelayedDue, id1, {fields}, ... }: code 0 = done;
    the rest is the activate.lua reply ({0, 0} and no jobs when no fetch was asked).

  Error codes (per job)
    -1 job missing, -2 lock missing, -6 lock held by another token, -3 not in active,
    -4 pending dependencies, -9 failed children.
]]
--@include rcall, read_meta, emit, wake, enqueue, fetch, delayed_score, unlock, mark_delayed, queue_at, requeue_dedup

-- A parent that has just left waiting-children runs again: after its own delay if it has
-- one, else from wait (RPUSH: it runs next) or prioritized.
local function placeParent(pq, parentKey, parentId, now)
  pq.plainEvents = true
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
local function detachFromParent(jobKey, now, parentKey)
  if parentKey == nil then
    parentKey = rcall("HGET", jobKey, "parentKey")
  end
  if parentKey and rcall("SREM", parentKey .. ":dependencies", jobKey) == 1
      and rcall("SCARD", parentKey .. ":dependencies") == 0 then
    local key, id, pq = parentOf(parentKey, nil)
    if key then
      releaseIfWaiting(pq, key, id, now)
    end
  end
end

-- parentKey: the job's, when already read (false = it has none), nil = read it here.
local function deleteJob(jobKey, now, parentKey)
  detachFromParent(jobKey, now, parentKey)
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
  -- The tolerant decode of parentOf above, for the job's opts.
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

-- One job of the batch: 0 when finished, else the code of the check it failed. `now` is
-- also passed as its ARGV text, which is what gets written (a number argument to redis.call
-- is formatted on every call).
local function finishOne(q, now, nowText, a)
  local jobId, outcome, value, token = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  local prefix = q.prefix
  local jobKey = prefix .. jobId
  local completed = outcome == "completed"

  -- `timestamp` is written by every add, so its presence proves the job exists without a
  -- second call; a hash without it (an old or hand-written producer) is still a job, and a
  -- job that exists must reach a final state, else it loops through the stalled check.
  local job = rcall("HMGET", jobKey, "timestamp", "parentKey", "parent", "deid", "atm")
  if not job[1] and rcall("EXISTS", jobKey) == 0 then
    return -1
  end
  -- Empty sets do not exist: one EXISTS answers both questions for the usual job.
  if completed and rcall("EXISTS", jobKey .. ":dependencies", jobKey .. ":unsuccessful") > 0 then
    if rcall("EXISTS", jobKey .. ":dependencies") == 1 then
      return -4
    end
    return -9
  end
  local code = leaveActive(jobKey, token, q.stalled, q.active, jobId)
  if code < 0 then
    return code
  end

  -- The deduplication id stops deduplicating once its job is done (a key with a TTL keeps
  -- deduplicating until it expires).
  if job[4] then
    local deKey = prefix .. "de:" .. job[4]
    if rcall("PTTL", deKey) == -1 and rcall("GET", deKey) == jobId then
      rcall("DEL", deKey)
    end
    -- keepLastIfActive: the add parked while this job ran becomes the next job.
    requeueDedup(q, job[4], now, nowText)
  end

  if job[2] or job[3] then
    local parentKey, parentId, pq, info = parentOf(job[2] or nil, job[3] or nil)
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

  local attemptsMade = (tonumber(job[5]) or 0) + 1
  local atm = string.format("%d", attemptsMade)
  local keepCount = tonumber(ARGV[a + 4])
  if keepCount == 0 then
    deleteJob(jobKey, now, job[2])
  else
    local target = completed and q.completed or q.failed
    rcall("ZADD", target, nowText, jobId)
    local mine
    if keepCount > 0 then
      -- This call's jobs in `target`, in the order they finished (see the trim below).
      q.kept = q.kept or {}
      mine = q.kept[target]
      if not mine then
        mine = {ids = {}, at = {}, first = 1}
        q.kept[target] = mine
      end
      mine.ids[#mine.ids + 1] = jobId
      mine.at[jobId] = true
    end
    if completed then
      rcall("HSET", jobKey, "returnvalue", value, "finishedOn", nowText, "atm", atm)
    else
      if ARGV[a + 8] ~= "" then
        rcall("HSET", jobKey, "failedReason", value, "finishedOn", nowText, "atm", atm,
          "stacktrace", ARGV[a + 8])
      else
        rcall("HSET", jobKey, "failedReason", value, "finishedOn", nowText, "atm", atm)
      end
      rcall("HDEL", jobKey, "defa")
    end
    local age = tonumber(ARGV[a + 5]) or 0
    if age > 0 then
      local limit = tonumber(ARGV[a + 6]) or 0
      if limit <= 0 then
        limit = 1000
      end
      local old = rcall("ZREVRANGEBYSCORE", target, now - age * 1000, "-inf", "LIMIT", 0, limit)
      removeFromSet(target, old, prefix, now)
    end
    if keepCount > 0 then
      -- Keep the newest n. The jobs of this call share one score (`now`), and Redis orders
      -- equal scores by member, not by age: when the trim reaches this call's own jobs
      -- (more finished in it than are kept), the ones that finished first in it go first, as
      -- they would with one call per job (BullMQ). Older members always rank below them.
      local over = rcall("ZREVRANGE", target, ARGV[a + 4], "-1")
      local drop, own = {}, 0
      for _, id in ipairs(over) do
        if mine.at[id] then
          own = own + 1
        else
          drop[#drop + 1] = id
        end
      end
      local i = mine.first
      while own > 0 and i <= #mine.ids do
        local id = mine.ids[i]
        if mine.at[id] then
          drop[#drop + 1] = id
          mine.at[id] = nil
          own = own - 1
        end
        i = i + 1
      end
      mine.first = i
      removeFromSet(target, drop, prefix, now)
    end
  end

  if completed then
    emit(q, "event", "completed", "jobId", jobId, "returnvalue", value, "prev", "active")
  else
    emit(q, "event", "failed", "jobId", jobId, "failedReason", value, "prev", "active")
    if attemptsMade >= (tonumber(ARGV[a + 7]) or 0) then
      emit(q, "event", "retries-exhausted", "jobId", jobId, "attemptsMade", atm)
    end
  end
  return 0
end

-- BullMQ's per-minute job metrics (its worker option `metrics.maxDataPoints`), for the n jobs
-- of one kind this call finished. `count` counts every finished job. The first job ever only
-- starts the clock (`prevTS`). A job finishing in a later minute than `prevTS` closes the
-- minutes in between: the jobs counted since (`count` before it minus `prevCount`) become one
-- data point, each minute after it a zero point, newest at the head, and the list keeps
-- maxPoints entries. The minutes are whole minutes of the clock (floor of ms / 60000). All n
-- jobs finish at the same `now`, so only the first can close a minute: the others only
-- count, and BullMQ's n calls reduce to one HINCRBY by n.
local function recordMetrics(key, n, maxPoints, now, nowText)
  local before = rcall("HINCRBY", key, "count", n) - n
  local prevTS = rcall("HGET", key, "prevTS")
  if not prevTS then
    rcall("HSET", key, "prevTS", nowText, "prevCount", 0)
    return
  end
  local minutes = math.min(math.floor(now / 60000) - math.floor(tonumber(prevTS) / 60000), maxPoints)
  if minutes < 1 then
    return
  end
  local points = { before - tonumber(rcall("HGET", key, "prevCount") or 0) }
  for i = 2, minutes do
    points[i] = 0
  end
  local list = key .. ":data"
  -- One LPUSH per chunk (unpack's stack limit); pushing them in order leaves the zeros at
  -- the head, the closed minute's count behind them.
  for from = 1, minutes, 5000 do
    rcall("LPUSH", list, unpack(points, from, math.min(from + 4999, minutes)))
  end
  rcall("LTRIM", list, 0, maxPoints - 1)
  rcall("HSET", key, "prevCount", before, "prevTS", nowText)
end

local now = tonumber(ARGV[1])
local q = readMeta({
  prefix = ARGV[2], wait = KEYS[1], active = KEYS[2], prioritized = KEYS[3],
  events = KEYS[4], stalled = KEYS[5], limiter = KEYS[6], delayed = KEYS[7],
  pausedList = KEYS[8], meta = KEYS[9], pc = KEYS[10], completed = KEYS[11],
  failed = KEYS[12], marker = KEYS[13]
}, true)
-- As BullMQ's moveToFinished: trimmed first, so this call's own events all stay.
trimEvents(q)

local n = tonumber(ARGV[7])
local codes = {}
for i = 1, n do
  codes[i] = finishOne(q, now, ARGV[1], 8 + (i - 1) * 9)
end

-- Metrics on: KEYS 14 / 15 are given and the last argument is maxDataPoints (off, nothing
-- of this runs).
local lastToken = #ARGV
if #KEYS >= 15 then
  local maxPoints = tonumber(ARGV[lastToken])
  lastToken = lastToken - 1
  local done, failed = 0, 0
  for i = 1, n do
    if codes[i] == 0 then
      if ARGV[9 + (i - 1) * 9] == "completed" then
        done = done + 1
      else
        failed = failed + 1
      end
    end
  end
  if done > 0 then
    recordMetrics(KEYS[14], done, maxPoints, now, ARGV[1])
  end
  if failed > 0 then
    recordMetrics(KEYS[15], failed, maxPoints, now, ARGV[1])
  end
end

local reply, nothing = {0, 0}, true
local first = 8 + n * 9
if lastToken >= first then
  local tokens = {}
  for i = first, lastToken do
    tokens[#tokens + 1] = ARGV[i]
  end
  reply, nothing = fetch(q, ARGV[1], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6], tokens)
end
if nothing and rcall("LLEN", q.wait) == 0 and rcall("LLEN", q.active) == 0
    and rcall("ZCARD", q.prioritized) == 0 then
  emit(q, "event", "drained")
end
table.insert(reply, 1, codes)
return reply
