--[[
  stalled: the periodic stalled-jobs check (at most once per interval across all workers).

  If the `stalled-check` guard exists, nothing happens. Otherwise the guard is set for the
  interval, events are trimmed, and every job flagged in `stalled` by the previous check
  whose lock is gone and that is still in `active` goes back to waiting (RPUSH: it runs
  next), with `stc` incremented and, past maxStalledCount, `defa` set so that the next
  worker fails it instead of running it (not for job-scheduler iterations). Finally every
  job now in `active` is flagged for the next check.

  KEYS
    1 stalled       set
    2 wait          list
    3 active        list
    4 stalled-check string (guard)
    5 meta          hash
    6 paused        list (v5 layout only)
    7 marker        zset
    8 events        stream

  ARGV
    1 maxStalledCount
    2 P             "<prefix>:<queue>:"
    3 now           ms (guard value)
    4 stalledInterval ms (guard expiry)

  Returns the ids moved back to waiting (events `waiting` prev=active, then `stalled`).

  Error codes: none.
]]
--@include rcall, read_meta, emit, wake, enqueue

if rcall("EXISTS", KEYS[4]) == 1 then
  return {}
end
rcall("SET", KEYS[4], ARGV[3], "PX", ARGV[4])

local prefix = ARGV[2]
local q = readMeta({
  prefix = prefix, wait = KEYS[2], active = KEYS[3], pausedList = KEYS[6], meta = KEYS[5],
  marker = KEYS[7], events = KEYS[8]
}, true)
trimEvents(q)

local maxStalled = tonumber(ARGV[1]) or 0
local moved = {}
local flagged = rcall("SMEMBERS", KEYS[1])
if #flagged > 0 then
  rcall("DEL", KEYS[1])
end
for _, id in ipairs(flagged) do
  if string.sub(id, 1, 2) == "0:" then
    rcall("LREM", q.active, 1, id)
  else
    local jobKey = prefix .. id
    if rcall("EXISTS", jobKey .. ":lock") == 0 and rcall("LREM", q.active, 1, id) > 0 then
      local stalls = rcall("HINCRBY", jobKey, "stc", 1)
      if stalls > maxStalled then
        -- A scheduler iteration is never failed for stalling: its scheduler must go on.
        local scheduler = rcall("HGET", jobKey, "rjk")
        local fromScheduler = scheduler and (rcall("EXISTS", prefix .. "repeat:" .. scheduler) == 1
          or rcall("ZSCORE", prefix .. "repeat", scheduler) ~= false)
        if not fromScheduler then
          rcall("HSET", jobKey, "defa", "job stalled more than allowable limit")
        end
      end
      enqueue(q, id, 0, "RPUSH")
      wake(q)
      emit(q, "event", "waiting", "jobId", id, "prev", "active")
      emit(q, "event", "stalled", "jobId", id)
      moved[#moved + 1] = id
    end
  end
end

local active = rcall("LRANGE", q.active, 0, -1)
for from = 1, #active, 7000 do
  rcall("SADD", KEYS[1], unpack(active, from, math.min(from + 6999, #active)))
end
return moved
