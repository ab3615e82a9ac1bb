--[[
  obliterate: one round of queue.obliterate({ force, count }): delete up to `count` jobs of a
  paused queue (active ones only with force), state by state; once nothing is left, the queue's
  own keys. The facade calls it until it returns 0.

  KEYS
    1 meta     hash
    2 repeat   zset (job schedulers)

  ARGV
    1 P       "<prefix>:<queue>:"
    2 jobId   unused ("")
    3 count   jobs per round
    4 force   "1" removes active jobs too

  Returns 0 when the queue is gone, 1 when another round is needed.

  Error codes
    -1 the queue is not paused, -2 it has active jobs and force is not set.
]]
--@include rcall, remove_tree

local P = ARGV[1]
local left = tonumber(ARGV[3])
if rcall("HEXISTS", KEYS[1], "paused") ~= 1 then
  return -1
end

local function zsetRound(key)
  local ids = rcall("ZRANGE", key, 0, left - 1)
  removeHard(ids, P)
  for i = 1, #ids, 5000 do
    rcall("ZREM", key, unpack(ids, i, math.min(i + 4999, #ids)))
  end
  left = left - #ids
end

local function listRound(key)
  local ids = rcall("LRANGE", key, 0, left - 1)
  removeHard(ids, P)
  rcall("LTRIM", key, #ids, -1)
  left = left - #ids
end

local active = rcall("LRANGE", P .. "active", 0, left - 1)
if #active > 0 and ARGV[4] ~= "1" then
  return -2
end
for _, id in ipairs(active) do
  rcall("DEL", P .. id .. ":lock")
end
removeHard(active, P)
rcall("LTRIM", P .. "active", #active, -1)
left = left - #active
if left <= 0 then return 1 end

zsetRound(P .. "delayed")
if left <= 0 then return 1 end

local schedulers = rcall("ZRANGE", KEYS[2], 0, left - 1)
for _, s in ipairs(schedulers) do
  rcall("DEL", KEYS[2] .. ":" .. s)
end
for i = 1, #schedulers, 5000 do
  rcall("ZREM", KEYS[2], unpack(schedulers, i, math.min(i + 4999, #schedulers)))
end
left = left - #schedulers
if left <= 0 then return 1 end

zsetRound(P .. "completed")
if left <= 0 then return 1 end
listRound(P .. "wait")
if left <= 0 then return 1 end
listRound(P .. "paused")
if left <= 0 then return 1 end
zsetRound(P .. "prioritized")
if left <= 0 then return 1 end
zsetRound(P .. "failed")
if left <= 0 then return 1 end

rcall("DEL", P .. "events", P .. "delay", P .. "stalled-check", P .. "stalled", P .. "id",
  P .. "pc", P .. "marker", P .. "meta", P .. "metrics:completed", P .. "metrics:completed:data",
  P .. "metrics:failed", P .. "metrics:failed:data")
return 0
