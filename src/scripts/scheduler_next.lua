--[[
  scheduler_next: add the next iteration of a job scheduler when one of its iterations is
  activated (BullMQ's worker does this before running the processor; its updateJobScheduler).

  Acts only while the scheduler exists (member of `repeat`) and the activated job is its
  current iteration (`repeat:<id>:<score in repeat>`). The next run time is computed here
  for an `every` scheduler (prev + every, realigned to the scheduler's offset when late),
  and given by the caller for a cron `pattern` scheduler. The new job `repeat:<id>:<next>`
  takes name and data from the scheduler hash and its options from ARGV 7: the msgpack map
  BullMQ's worker would send (built by the engine from the activated job's opts, keys in
  BullMQ's order, so that `cjson.encode` writes the same text); this script sets its `jobId`
  and `delay`. It is delayed by next - now, or waiting when that is <= 0. The scheduler's
  score in `repeat` becomes next and its `ic` is incremented; `id` is INCRed.

  KEYS
    1 repeat        zset (scheduler id -> next run ms); scheduler hash = KEYS[1] .. ":" .. id
    2 delayed       zset
    3 wait          list
    4 paused        list (v5 layout only)
    5 meta          hash
    6 prioritized   zset
    7 marker        zset
    8 id            string (job id counter)
    9 events        stream
   10 pc            string (priority counter)
   11 active        list
   12 job           hash of the activated iteration (P .. producer id)

  ARGV
    1 P             "<prefix>:<queue>:"
    2 now           ms
    3 scheduler id  (the activated job's `rjk`)
    4 producer id   the activated job's id
    5 next          ms of the next run of a cron scheduler, "" for an `every` scheduler
    6 legacy        "1" when the id has the shape of a legacy repeatable key
                    (name:id:endDate:tz:pattern): then act only if the scheduler hash has `ic`
    7 opts          msgpack map of the next iteration's options (with `jobId` and `delay`
                    keys, whose values are replaced here)

  Returns
    the new iteration's job id;
    0  nothing to do (scheduler gone, the job is not its current iteration, no next time);
    1  the next slot is already taken (event `duplicated`);
    2  legacy repeatable key that is not a job scheduler (nothing done).
    Events: `added jobId name`, then `delayed jobId delay=<due ms>` or `waiting jobId`.

  Error codes: none.
]]
--@include rcall, read_meta, emit, place_new, every_next

local repeatKey, schedulerId, producerId = KEYS[1], ARGV[3], ARGV[4]
local prev = rcall("ZSCORE", repeatKey, schedulerId)
if not prev then
  return 0
end
prev = tonumber(prev)
local schedulerKey = repeatKey .. ":" .. schedulerId
if ARGV[6] == "1" and rcall("HEXISTS", schedulerKey, "ic") == 0 then
  return 2
end
if producerId ~= "repeat:" .. schedulerId .. ":" .. prev then
  return 0
end
local attrs = rcall("HMGET", schedulerKey, "name", "data", "every", "offset")

local opts = cmsgpack.unpack(ARGV[7])
local rep = opts["repeat"] or {}

local now = tonumber(ARGV[2])
local nextMillis = tonumber(ARGV[5])
local every = tonumber(attrs[3]) or tonumber(rep["every"])
if every and every > 0 then
  nextMillis = everyNext(prev, every, now, attrs[4] or rep["offset"] or 0)
end
if not nextMillis then
  return 0
end

local q = readMeta({
  prefix = ARGV[1], wait = KEYS[3], active = KEYS[11], prioritized = KEYS[6],
  delayed = KEYS[2], pausedList = KEYS[4], meta = KEYS[5], pc = KEYS[10],
  marker = KEYS[7], events = KEYS[9]
}, true)
local nextId = "repeat:" .. schedulerId .. ":" .. nextMillis
local nextKey = schedulerKey .. ":" .. nextMillis
if rcall("EXISTS", nextKey) == 1 then
  emit(q, "event", "duplicated", "jobId", nextId)
  return 1
end

rcall("ZADD", repeatKey, nextMillis, schedulerId)
rcall("HINCRBY", schedulerKey, "ic", 1)
rcall("INCR", KEYS[8])

local delay = nextMillis - now
if delay < 0 then
  delay = 0
end
opts["delay"] = delay
opts["jobId"] = nextId

local name = attrs[1] or ""
local priority = tonumber(opts["priority"]) or 0
local fields = { "name", name, "data", attrs[2] or "{}", "opts", cjson.encode(opts),
  "timestamp", now, "delay", delay, "priority", priority, "rjk", schedulerId }
if type(opts["de"]) == "table" and opts["de"]["id"] ~= nil then
  fields[#fields + 1] = "deid"
  fields[#fields + 1] = opts["de"]["id"]
end
rcall("HSET", nextKey, unpack(fields))
-- Uncapped, as BullMQ's storeJob adds it.
rcall("XADD", q.events, "*", "event", "added", "jobId", nextId, "name", name)
placeNew(q, nextId, delay > 0 and nextMillis or nil, priority, opts["lifo"])
return nextId
