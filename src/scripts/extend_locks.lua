--[[
  extend_locks: renew the locks of several active jobs in one call.

  For each (id, token) pair: when the job's lock still holds that token, it is set again
  with the new duration and the job is unflagged in `stalled`; otherwise the id is
  reported back.

  KEYS
    1 stalled       set

  ARGV
    1 P             "<prefix>:<queue>:"
    2 duration      ms
    3, 4            id1, token1
    5, 6            id2, token2
    ...

  Returns the ids whose lock could NOT be extended (empty = all renewed).

  Error codes: none.
]]
local rcall = redis.call
local prefix, duration = ARGV[1], ARGV[2]
local lost = {}
for i = 3, #ARGV - 1, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local lockKey = prefix .. id .. ":lock"
  if rcall("GET", lockKey) == token then
    rcall("SET", lockKey, token, "PX", duration)
    rcall("SREM", KEYS[1], id)
  else
    lost[#lost + 1] = id
  end
end
return lost
