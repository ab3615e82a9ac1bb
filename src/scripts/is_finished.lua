--[[
  is_finished: whether a job has finished, and how (job.waitUntilFinished's first look).

  KEYS
    1 completed   zset
    2 failed      zset

  ARGV
    1 P       "<prefix>:<queue>:"
    2 jobId

  Returns {status, value}: status 1 completed (value = the returnvalue JSON), 2 failed
  (value = failedReason), 0 not finished, -1 the job hash does not exist.

  Error codes: none (-1 above is a status).
]]
local rcall = redis.call
local jobKey = ARGV[1] .. ARGV[2]
if rcall("EXISTS", jobKey) == 0 then
  return {-1}
end
if rcall("ZSCORE", KEYS[1], ARGV[2]) then
  return {1, rcall("HGET", jobKey, "returnvalue")}
end
if rcall("ZSCORE", KEYS[2], ARGV[2]) then
  return {2, rcall("HGET", jobKey, "failedReason")}
end
return {0}
