--[[
  update_data: replace a job's data.

  KEYS
    1 job           hash (P .. jobId)

  ARGV
    1 data          JSON

  Returns 0.

  Error codes
    -1 job missing.
]]
if redis.call("EXISTS", KEYS[1]) == 0 then
  return -1
end
redis.call("HSET", KEYS[1], "data", ARGV[1])
return 0
