--[[
  drain: remove every job that is waiting (wait, the legacy paused list, prioritized) and,
  when asked, every delayed job. Active, completed and failed jobs stay. The pending
  iteration of each job scheduler is kept (removing it would stop the scheduler). Removed
  children leave their parents' dependencies (see removeJob).

  KEYS
    1 wait          list
    2 paused        list (legacy v5 layout)
    3 delayed       zset
    4 prioritized   zset
    5 repeat        zset (job schedulers)

  ARGV
    1 P             "<prefix>:<queue>:"
    2 delayed       "1" also removes delayed jobs

  Returns
    the number of jobs removed.

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

local P = ARGV[1]
local removed = 0

-- The ids to remove from a list or zset (scheduler iterations filtered out).
local function removable(ids)
  local out = {}
  for _, id in ipairs(ids) do
    if not isSchedulerJob(KEYS[5], P, id) then
      out[#out + 1] = id
    end
  end
  return out
end

local function drainList(key)
  local ids = rcall("LRANGE", key, 0, -1)
  local gone = removable(ids)
  for _, id in ipairs(gone) do
    removeJob(P, id)
  end
  if #gone == #ids then
    rcall("DEL", key)
  else
    for _, id in ipairs(gone) do
      rcall("LREM", key, 0, id)
    end
  end
  removed = removed + #gone
end

local function drainZset(key)
  local gone = removable(rcall("ZRANGE", key, 0, -1))
  for _, id in ipairs(gone) do
    removeJob(P, id)
  end
  for from = 1, #gone, 1000 do
    rcall("ZREM", key, unpack(gone, from, math.min(from + 999, #gone)))
  end
  removed = removed + #gone
end

drainList(KEYS[1])
drainList(KEYS[2])
if ARGV[2] == "1" then
  drainZset(KEYS[3])
end
drainZset(KEYS[4])
return removed
