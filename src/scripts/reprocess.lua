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
--@include rcall, read_meta, emit, wake, enqueue, pending_again

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
pendingAgain(jobKey, state)

emit(q, "event", "waiting", "jobId", jobId, "prev", state)
return 0
