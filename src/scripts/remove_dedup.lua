--[[
  remove_dedup: job.removeDeduplicationKey() / queue.removeDeduplicationKey(id): release a
  deduplication id.

  KEYS: none (the key is P .. "de:" .. id).

  ARGV
    1 P       "<prefix>:<queue>:"
    2 jobId   release only if this job still owns the id; "" releases it whoever owns it
    3 id      the deduplication id

  Returns the number of keys deleted (0 or 1).

  Error codes: none.
]]
local rcall = redis.call
local deKey = ARGV[1] .. "de:" .. ARGV[3]
if ARGV[2] ~= "" and rcall("GET", deKey) ~= ARGV[2] then
  return 0
end
return rcall("DEL", deKey)
