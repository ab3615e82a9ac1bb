--[[
  clean: remove jobs of one state that are older than a cutoff, at most `limit` per call.

  completed / failed: jobs finished at or before the cutoff (the set's score), oldest first.
  delayed / prioritized: among the first `limit` jobs of the set (all when 0), those whose
  processedOn (delayed only), else timestamp, is at or before the cutoff.
  wait / paused / active: among the `limit` oldest entries of the list (all when 0), those
  whose finishedOn, else processedOn, else timestamp is at or before the cutoff; active jobs
  only when their lock is gone. The pending iteration of a job scheduler is never removed.
  Each job is removed as removeJob describes; event `cleaned` with the count.

  KEYS
    1 source        the state's list or zset
    2 events        stream
    3 repeat        zset (job schedulers)

  ARGV
    1 P             "<prefix>:<queue>:"
    2 cutoff        ms: jobs at or before it are removed
    3 limit         most jobs removed by this call, "0" = no limit
    4 state         "completed" | "failed" | "delayed" | "prioritized" | "wait" | "paused" |
                    "active"

  Returns
    the ids removed, in the source's order (sets by score, lists from the left end).

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

-- helper: removeJob
-- Deletes a job that is not active (drain, clean): its deduplication key if it still owns
-- it, its hash and per-job keys, and its place in its parent's dependencies. A parent that
-- thereby has nothing left to wait for leaves waiting-children: removed as well when it is
-- in this queue (the queue is being emptied), else put back to waiting (no event).
local function removeJob(P, id)
  local jobKey = P .. id
  local f = rcall("HMGET", jobKey, "parentKey", "parent", "deid")
  if f[3] then
    local deKey = P .. "de:" .. f[3]
    if rcall("GET", deKey) == id then
      rcall("DEL", deKey, P .. "dn:" .. f[3])
    end
  end
  rcall("DEL", jobKey, jobKey .. ":logs", jobKey .. ":dependencies", jobKey .. ":processed",
    jobKey .. ":failed", jobKey .. ":unsuccessful")
  local parentKey = f[1]
  if not parentKey or parentKey == "" or rcall("EXISTS", parentKey) == 0 then
    return
  end
  if rcall("SREM", parentKey .. ":dependencies", jobKey) == 0
      or rcall("SCARD", parentKey .. ":dependencies") > 0 then
    return
  end
  local parentP, parentId
  if f[2] then
    local ok, parent = pcall(cjson.decode, f[2])
    if ok and type(parent) == "table" and type(parent["queueKey"]) == "string" then
      parentP, parentId = parent["queueKey"] .. ":", tostring(parent["id"])
    end
  end
  if not parentP then
    parentP, parentId = string.match(parentKey, "^(.*:)([^:]+)$")
  end
  if not parentP or rcall("ZREM", parentP .. "waiting-children", parentId) == 0 then
    return
  end
  if parentP == P then
    removeJob(P, parentId)
  else
    local pq = readMeta({
      prefix = parentP, wait = parentP .. "wait", active = parentP .. "active",
      prioritized = parentP .. "prioritized", pausedList = parentP .. "paused",
      meta = parentP .. "meta", pc = parentP .. "pc", marker = parentP .. "marker"
    }, false)
    enqueue(pq, parentId, tonumber(rcall("HGET", parentKey, "priority")) or 0, "RPUSH")
    wake(pq)
  end
end
-- end helper

-- helper: isSchedulerJob
-- True for the pending iteration of a job scheduler (id "repeat:<scheduler>:<millis>" of a
-- scheduler still in `repeat`): removing it would stop the scheduler, so it is kept.
local function isSchedulerJob(repeatKey, P, id)
  local rjk = rcall("HGET", P .. id, "rjk")
  if rjk then
    local millis = rcall("ZSCORE", repeatKey, rjk)
    if millis then
      return id == "repeat:" .. rjk .. ":" .. millis
    end
  end
  return false
end
-- end helper

local key, P = KEYS[1], ARGV[1]
local cutoff, limit, state = tonumber(ARGV[2]), tonumber(ARGV[3]) or 0, ARGV[4]
local deleted = {}

-- The first of the given time fields the job has, as a number (nil when it has none).
local function jobTime(id, fields)
  for _, t in ipairs(rcall("HMGET", P .. id, unpack(fields))) do
    if t then
      return tonumber(t)
    end
  end
end

local function full()
  return limit > 0 and #deleted >= limit
end

if state == "completed" or state == "failed" then
  local ids
  if limit > 0 then
    ids = rcall("ZRANGEBYSCORE", key, 0, cutoff, "LIMIT", 0, limit)
  else
    ids = rcall("ZRANGEBYSCORE", key, 0, cutoff)
  end
  for _, id in ipairs(ids) do
    removeJob(P, id)
    deleted[#deleted + 1] = id
  end
elseif state == "delayed" or state == "prioritized" then
  local fields = {"timestamp"}
  if state == "delayed" then
    fields = {"processedOn", "timestamp"}
  end
  local ids
  if limit > 0 then
    ids = rcall("ZRANGEBYSCORE", key, 0, "+inf", "LIMIT", 0, limit)
  else
    ids = rcall("ZRANGEBYSCORE", key, 0, "+inf")
  end
  for _, id in ipairs(ids) do
    if full() then
      break
    end
    if not isSchedulerJob(KEYS[3], P, id) then
      local t = jobTime(id, fields)
      if not t or t <= cutoff then
        removeJob(P, id)
        deleted[#deleted + 1] = id
      end
    end
  end
else
  -- Lists: the oldest entries are at the right end, so a limited call looks at the right
  -- end. Removed entries are overwritten with a marker and dropped together at the end.
  local ids
  if limit > 0 then
    ids = rcall("LRANGE", key, -limit, -1)
  else
    ids = rcall("LRANGE", key, 0, -1)
  end
  local n = #ids
  local checkLock = state == "active"
  for i = 1, n do
    if full() then
      break
    end
    local id = ids[i]
    if (not checkLock or rcall("EXISTS", P .. id .. ":lock") == 0)
        and not isSchedulerJob(KEYS[3], P, id) then
      local t = jobTime(id, {"finishedOn", "processedOn", "timestamp"})
      if not t or t <= cutoff then
        rcall("LSET", key, i - n - 1, "")
        removeJob(P, id)
        deleted[#deleted + 1] = id
      end
    end
  end
  if #deleted > 0 then
    rcall("LREM", key, 0, "")
  end
end

if #deleted > 0 and (state == "completed" or state == "failed" or state == "delayed"
    or state == "prioritized") then
  for from = 1, #deleted, 1000 do
    rcall("ZREM", key, unpack(deleted, from, math.min(from + 999, #deleted)))
  end
end
rcall("XADD", KEYS[2], "*", "event", "cleaned", "count", #deleted)
return deleted
