--[[
  move_jobs_to_wait: one round of queue.retryJobs({ state, count, timestamp }) (failed or
  completed jobs finished up to `timestamp`) or queue.promoteJobs({ count }) (delayed jobs):
  up to `count` of them go to the front end of wait (LPUSH; priorities are not considered, as
  in BullMQ), with finishedOn, processedOn and failedReason / returnvalue deleted; a retried
  child is a pending dependency of its parent again. One `waiting` event per job (prev = the
  state), the base marker unless paused or maxed. The facade calls it until it returns 0.

  KEYS (the list `ENQUEUE_KEYS` of src/engine/surface.rs: the same for promote.lua and change_priority.lua)
    1 wait          list
    2 paused        list (v5 layout, unused)
    3 meta          hash
    4 prioritized   zset (unused)
    5 active        list
    6 pc            string (unused)
    7 marker        zset
    8 events        stream
    9 delayed       zset (unused: the state key is P .. state)

  ARGV
    1 P           "<prefix>:<queue>:"
    2 jobId       unused ("")
    3 state       "failed" | "completed" | "delayed"
    4 count       jobs per round
    5 timestamp   highest score taken ("+inf" for delayed)

  Returns 1 when another round is needed, 0 when done.

  Error codes: none.
]]
--@include rcall, read_meta, wake, emit, pending_again

local P, state = ARGV[1], ARGV[3]
local count = tonumber(ARGV[4])
local ids = rcall("ZRANGEBYSCORE", P .. state, 0, ARGV[5], "LIMIT", 0, count)
if #ids > 0 then
  local q = readMeta({wait = KEYS[1], meta = KEYS[3], active = KEYS[5], marker = KEYS[7],
    events = KEYS[8]}, true)
  local field = state == "failed" and "failedReason" or (state == "completed" and "returnvalue")
  if field then
    for _, id in ipairs(ids) do
      local jobKey = P .. id
      rcall("HDEL", jobKey, "finishedOn", "processedOn", field)
      pendingAgain(jobKey, state)
    end
  end
  for _, id in ipairs(ids) do
    emit(q, "event", "waiting", "jobId", id, "prev", state)
  end
  for i = 1, #ids, 5000 do
    local last = math.min(i + 4999, #ids)
    rcall("ZREM", P .. state, unpack(ids, i, last))
    rcall("LPUSH", KEYS[1], unpack(ids, i, last))
  end
  wake(q)
end
if count - #ids <= 0 then
  return 1
end
return 0
