--[[
  extend_lock: job.extendLock(token, duration) for one job held by `token`; the job leaves the
  stalled set (it is demonstrably alive).

  KEYS
    1 stalled   set

  ARGV
    1 P          "<prefix>:<queue>:"
    2 jobId
    3 token
    4 duration   ms

  Returns 1 when extended, 0 when the lock is missing or held by another token.

  Error codes: none.
]]
local rcall = redis.call
local lockKey = ARGV[1] .. ARGV[2] .. ":lock"
if rcall("GET", lockKey) ~= ARGV[3] then
  return 0
end
rcall("SET", lockKey, ARGV[3], "PX", ARGV[4])
rcall("SREM", KEYS[1], ARGV[2])
return 1
