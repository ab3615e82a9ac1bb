--[[
  add_scheduler: queue.upsertJobScheduler (BullMQ's addJobScheduler): create or replace job
  scheduler `id` and add its next iteration `repeat:<id>:<next>`.

  The scheduler hash `<repeat>:<id>` is rewritten (name, then tz, limit, pattern, startDate,
  endDate, every, offset, opts, data when set, and `ic`, kept from before or 1) and its score in
  `repeat` becomes the next run. An `every` scheduler computes the next run here: from its
  startDate, else aligned to its offset, else now; on a replace, the previous run plus `every`
  (realigned when late), or the previous run itself when the previous iteration was still
  waiting and was removed. The previous iteration is removed if it is still delayed,
  prioritized or waiting. A taken slot moves an `every` scheduler on by `every` (up to 32
  times); a taken slot of a cron scheduler is an error. The iteration is stored like every job
  (fields name, data, opts, timestamp, delay, priority, rjk[, deid]; event `added`) and goes to
  delayed (event `delayed`, delay marker) or, when due, to prioritized / wait (base marker
  unless paused or maxed; event `waiting`); `id` is INCRed.

  KEYS
    1 repeat        zset (scheduler id -> next run); the hash is KEYS[1] .. ":" .. id
    2 delayed       zset
    3 wait          list
    4 paused        list (v5 layout)
    5 meta          hash
    6 prioritized   zset
    7 marker        zset
    8 id            string
    9 events        stream
   10 pc            string
   11 active        list

  ARGV
    1 P                "<prefix>:<queue>:"
    2 jobId            unused ("")
    3 next             ms of the next run of a cron scheduler ("" for every)
    4 scheduler opts   msgpack {name, startDate?, endDate?, tz?, pattern?, every?, limit?, offset?}
    5 scheduler id
    6 template data    JSON text
    7 template opts    msgpack of the template's stored options
    8 iteration opts   msgpack of the iteration's stored options (jobId and delay replaced here)
    9 now              ms

  Returns {jobId, delay}.

  Error codes
    -10 the cron slot is taken by another job, -11 32 consecutive `every` slots are taken.
]]
--@include rcall, read_meta, emit, enqueue, wake, delayed_score, remove_tree, every_next

local P, schedulerId, now = ARGV[1], ARGV[5], tonumber(ARGV[9])
local repeatKey = KEYS[1]
local schedulerKey = repeatKey .. ":" .. schedulerId
local schedulerOpts = cmsgpack.unpack(ARGV[4])
local templateData = ARGV[6]
local templateOpts = cmsgpack.unpack(ARGV[7])
local jobOpts = cmsgpack.unpack(ARGV[8])
local q = readMeta({
  prefix = P, wait = KEYS[3], pausedList = KEYS[4], meta = KEYS[5], prioritized = KEYS[6],
  marker = KEYS[7], events = KEYS[9], pc = KEYS[10], active = KEYS[11], delayed = KEYS[2]
}, true)

local function everyNextMillis(prevMillis, every, offset, startDate)
  offset = tonumber(offset)
  local nextMillis
  if not prevMillis then
    if startDate then
      nextMillis = tonumber(startDate)
      if nextMillis <= now then
        nextMillis = now
      end
    elseif offset and offset > 0 then
      nextMillis = math.floor(now / every) * every + offset
      if nextMillis <= now then
        nextMillis = nextMillis + every
      end
    else
      nextMillis = now
    end
  else
    nextMillis = everyNext(prevMillis, every, now, offset)
  end
  if not offset or offset == 0 then
    offset = nextMillis - math.floor(nextMillis / every) * every
  end
  return math.floor(nextMillis), math.floor(offset)
end

local prevMillis = rcall("ZSCORE", repeatKey, schedulerId)
if prevMillis then
  prevMillis = tonumber(prevMillis)
end
local every = schedulerOpts["every"]
local jobOffset = jobOpts["repeat"] and jobOpts["repeat"]["offset"] or 0
local offset = schedulerOpts["offset"] or jobOffset or 0
local newOffset = offset
local updatedEvery = false
local nextMillis = tonumber(ARGV[3])
if every then
  local millis = prevMillis
  if prevMillis and tonumber(rcall("HGET", schedulerKey, "every")) ~= every then
    millis = nil
    updatedEvery = true
  end
  nextMillis, newOffset = everyNextMillis(millis, every, offset, schedulerOpts["startDate"])
end

-- The previous iteration, if it has not started yet, is replaced.
local removedPrev = false
if prevMillis then
  local prevId = "repeat:" .. schedulerId .. ":" .. prevMillis
  if rcall("EXISTS", schedulerKey .. ":" .. prevMillis) == 1 then
    if rcall("ZSCORE", KEYS[2], prevId) then
      removeHard({prevId}, P)
      rcall("ZREM", KEYS[2], prevId)
      removedPrev = true
    elseif rcall("ZSCORE", KEYS[6], prevId) then
      removeHard({prevId}, P)
      rcall("ZREM", KEYS[6], prevId)
      removedPrev = true
    else
      local list = KEYS[3]
      if rcall("HEXISTS", KEYS[5], "paused") == 1 then
        list = KEYS[4]
      end
      if rcall("LREM", list, 1, prevId) > 0 then
        removeHard({prevId}, P)
        removedPrev = true
      end
    end
  end
end
if removedPrev then
  if every and not updatedEvery then
    nextMillis = prevMillis
  end
else
  schedulerOpts["offset"] = newOffset
end

local jobId = "repeat:" .. schedulerId .. ":" .. nextMillis
local collision = false
if rcall("EXISTS", P .. jobId) == 1 then
  if every then
    local scanned, taken = 0, 1
    repeat
      nextMillis = nextMillis + every
      jobId = "repeat:" .. schedulerId .. ":" .. nextMillis
      scanned = scanned + 1
      taken = rcall("EXISTS", P .. jobId)
    until taken == 0 or scanned >= 32
    if taken == 1 then
      return -11
    end
  else
    collision = true
  end
end
if collision and not removedPrev then
  return -10
end

local delay = nextMillis - now
if delay < 0 then
  delay = 0
end

-- The scheduler hash, rewritten.
rcall("ZADD", repeatKey, nextMillis, schedulerId)
local fields = {}
local function put(k, v)
  fields[#fields + 1] = k
  fields[#fields + 1] = v
end
for _, k in ipairs({"tz", "limit", "pattern", "startDate", "endDate", "every"}) do
  if schedulerOpts[k] then
    put(k, schedulerOpts[k])
  end
end
if schedulerOpts["offset"] then
  put("offset", schedulerOpts["offset"])
else
  local kept = rcall("HGET", schedulerKey, "offset")
  if kept then
    put("offset", tonumber(kept))
  end
end
local templateJson = cjson.encode(templateOpts)
if templateJson and templateJson ~= "{}" then
  put("opts", templateJson)
end
if templateData and templateData ~= "{}" then
  put("data", templateData)
end
put("ic", rcall("HGET", schedulerKey, "ic") or 1)
rcall("DEL", schedulerKey)
rcall("HMSET", schedulerKey, "name", schedulerOpts["name"], unpack(fields))
rcall("INCR", KEYS[8])

-- The iteration.
jobOpts["delay"] = delay
jobOpts["jobId"] = jobId
local jobKey = P .. jobId
local name = schedulerOpts["name"]
local priority = jobOpts["priority"] or 0
local jobFields = {"name", name, "data", templateData, "opts", cjson.encode(jobOpts),
  "timestamp", now, "delay", delay, "priority", priority, "rjk", schedulerId}
local de = jobOpts["de"]
if type(de) == "table" and de["id"] then
  jobFields[#jobFields + 1] = "deid"
  jobFields[#jobFields + 1] = de["id"]
end
rcall("HMSET", jobKey, unpack(jobFields))
rcall("XADD", KEYS[9], "*", "event", "added", "jobId", jobId, "name", name)
if delay ~= 0 then
  local due = now + delay
  rcall("ZADD", KEYS[2], delayedScore(q, due), jobId)
  emit(q, "event", "delayed", "jobId", jobId, "delay", due)
  local first = rcall("ZRANGE", KEYS[2], 0, 0, "WITHSCORES")
  if first[2] then
    rcall("ZADD", KEYS[7], tonumber(first[2]) / 4096, "1")
  end
else
  enqueue(q, jobId, priority, jobOpts["lifo"] and "RPUSH" or "LPUSH")
  wake(q)
  emit(q, "event", "waiting", "jobId", jobId)
end
return {jobId, delay}
