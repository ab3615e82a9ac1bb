--[[
  reprocess: send a failed (or completed) job back to waiting, BullMQ 6's `job.retry()`.

  The job leaves the finished set; finishedOn, processedOn and the failedReason (or
  returnvalue) field are deleted, optionally the attempt counters too; it is queued at the
  end of `wait` (LPUSH, or RPUSH when its opts say lifo), or in `prioritized` with a fresh counter
  when it has a priority, with the base marker unless the queue is paused or maxed. A
  child goes back into its parent's dependencies. Event `waiting` with prev = the state.

  KEYS
    1 job           hash (P .. jobId)
    2 events        stream
    3 source        zset: failed | completed
    4 wait          list
    5 meta          hash
    6 active        list
    7 marker        zset
    8 prioritized   zset
    9 pc            string
   10 paused        list (v5 layout only)

  ARGV
    1 jobId
    2 field         "failedReason" | "returnvalue" (deleted)
    3 state         "failed" | "completed" (the `prev` of the event)
    4 reset atm     "1" deletes attemptsMade (`atm`)
    5 reset ats     "1" deletes attemptsStarted (`ats`)

  Returns 0.

  Error codes
    -1 job missing, -3 job not in the source set.
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

local jobKey, jobId, state = KEYS[1], ARGV[1], ARGV[3]
if rcall("EXISTS", jobKey) == 0 then
  return -1
end
if rcall("ZREM", KEYS[3], jobId) == 0 then
  return -3
end

local drop = {"finishedOn", "processedOn", ARGV[2]}
if ARGV[4] == "1" then
  drop[#drop + 1] = "atm"
end
if ARGV[5] == "1" then
  drop[#drop + 1] = "ats"
end
rcall("HDEL", jobKey, unpack(drop))

local q = readMeta({
  prefix = string.sub(jobKey, 1, #jobKey - #jobId), wait = KEYS[4], pausedList = KEYS[10],
  meta = KEYS[5], active = KEYS[6], marker = KEYS[7], prioritized = KEYS[8], pc = KEYS[9],
  events = KEYS[2]
}, true)
local pushCmd = "LPUSH"
local ok, opts = pcall(cjson.decode, rcall("HGET", jobKey, "opts") or "{}")
if ok and type(opts) == "table" and opts["lifo"] == true then
  pushCmd = "RPUSH"
end
enqueue(q, jobId, tonumber(rcall("HGET", jobKey, "priority")) or 0, pushCmd)
wake(q)

-- A retried child is pending again for its parent (a parent that already moved on stays).
local parentKey = rcall("HGET", jobKey, "parentKey")
if parentKey and rcall("EXISTS", parentKey) == 1 then
  local back
  if state == "failed" then
    back = rcall("ZREM", parentKey .. ":unsuccessful", jobKey) == 1
      or rcall("HDEL", parentKey .. ":failed", jobKey) == 1
  else
    back = rcall("HDEL", parentKey .. ":processed", jobKey) == 1
  end
  if back then
    rcall("SADD", parentKey .. ":dependencies", jobKey)
  end
end

emit(q, "event", "waiting", "jobId", jobId, "prev", state)
return 0
