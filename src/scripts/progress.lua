--[[
  progress: store a job's progress and announce it.

  KEYS
    1 job           hash (P .. jobId)
    2 events        stream
    3 meta          hash

  ARGV
    1 jobId
    2 progress      JSON (number or object)

  Returns 0. Emits `progress` jobId data=<json>.

  Error codes
    -1 job missing.
]]
local rcall = redis.call
if rcall("EXISTS", KEYS[1]) == 0 then
  return -1
end
local cap = rcall("HGET", KEYS[3], "opts.maxLenEvents")
if not cap then
  cap = 10000
  rcall("HSET", KEYS[3], "opts.maxLenEvents", cap)
end
rcall("HSET", KEYS[1], "progress", ARGV[2])
rcall("XADD", KEYS[2], "MAXLEN", "~", cap, "*", "event", "progress", "jobId", ARGV[1],
  "data", ARGV[2])
return 0
