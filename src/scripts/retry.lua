--[[
  retry: put an active job straight back to waiting (a failed attempt retried without
  backoff). Due delayed jobs are promoted first, as in BullMQ.

  KEYS
    1 active        list
    2 wait          list
    3 paused        list (v5 layout only)
    4 job           hash (P .. jobId)
    5 meta          hash
    6 events        stream
    7 delayed       zset
    8 prioritized   zset
    9 pc            string
   10 marker        zset
   11 stalled       set

  ARGV
    1 P             "<prefix>:<queue>:"
    2 now           ms
    3 push command  "LPUSH" (normal) | "RPUSH" (lifo job: runs next)
    4 jobId
    5 token         lock token ("0" = no lock check)
    6 failedReason  plain text
    7 stacktrace    JSON array or "" (left unchanged when "")

  Returns 0.

  Error codes
    -1 job missing, -2 lock missing, -6 lock held by another token, -3 not in active.
]]
--@include rcall, read_meta, emit, wake, enqueue, promote_due, unlock

local q = readMeta({
  prefix = ARGV[1], wait = KEYS[2], active = KEYS[1], prioritized = KEYS[8],
  events = KEYS[6], delayed = KEYS[7], pausedList = KEYS[3], meta = KEYS[5],
  pc = KEYS[9], marker = KEYS[10]
}, true)
local jobKey, jobId = KEYS[4], ARGV[4]

promoteDue(q, tonumber(ARGV[2]))

if rcall("EXISTS", jobKey) == 0 then
  return -1
end
local code = leaveActive(jobKey, ARGV[5], KEYS[11], q.active, jobId)
if code < 0 then
  return code
end

rcall("HSET", jobKey, "failedReason", ARGV[6])
if ARGV[7] ~= "" then
  rcall("HSET", jobKey, "stacktrace", ARGV[7])
end
local pushCmd = "LPUSH"
if ARGV[3] == "RPUSH" then
  pushCmd = "RPUSH"
end
enqueue(q, jobId, tonumber(rcall("HGET", jobKey, "priority")) or 0, pushCmd)
wake(q)
rcall("HINCRBY", jobKey, "atm", 1)
emit(q, "event", "waiting", "jobId", jobId, "prev", "active")
return 0
