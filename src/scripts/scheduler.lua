--[[
  scheduler: the Queue's job-scheduler reads and removal (getJobScheduler, getJobSchedulers,
  getJobSchedulersCount, removeJobScheduler).

  KEYS
    1 repeat    zset (scheduler id -> next run); hashes KEYS[1] .. ":" .. id
    2 delayed   zset
    3 events    stream

  ARGV
    1 P        "<prefix>:<queue>:"
    2 jobId    unused ("")
    3 action, then its arguments:
      "get" id                 {hash (flat), next} or {} when there is no such scheduler
      "range" start end asc    {id, next, hash, id, next, hash, ...} (asc "1": soonest first)
      "count"                  the number of schedulers
      "remove" id              0 removed, 1 no such scheduler; its delayed next iteration is
                               deleted (event `removed`, prev = delayed)

  Returns what the action says (above).

  Error codes: none.
]]
--@include rcall

local repeatKey, action = KEYS[1], ARGV[3]
if action == "get" then
  local next = rcall("ZSCORE", repeatKey, ARGV[4])
  if next then
    return {rcall("HGETALL", repeatKey .. ":" .. ARGV[4]), next}
  end
  return {}
elseif action == "range" then
  local ids
  if ARGV[6] == "1" then
    ids = rcall("ZRANGE", repeatKey, ARGV[4], ARGV[5], "WITHSCORES")
  else
    ids = rcall("ZREVRANGE", repeatKey, ARGV[4], ARGV[5], "WITHSCORES")
  end
  local out = {}
  for i = 1, #ids, 2 do
    out[#out + 1] = ids[i]
    out[#out + 1] = ids[i + 1]
    out[#out + 1] = rcall("HGETALL", repeatKey .. ":" .. ids[i])
  end
  return out
elseif action == "count" then
  return rcall("ZCARD", repeatKey)
elseif action == "remove" then
  local id = ARGV[4]
  local millis = rcall("ZSCORE", repeatKey, id)
  if millis then
    local nextId = "repeat:" .. id .. ":" .. millis
    if rcall("ZREM", KEYS[2], nextId) == 1 then
      local jobKey = ARGV[1] .. nextId
      rcall("DEL", jobKey, jobKey .. ":logs", jobKey .. ":dependencies", jobKey .. ":processed",
        jobKey .. ":failed", jobKey .. ":unsuccessful")
      rcall("XADD", KEYS[3], "*", "event", "removed", "jobId", nextId, "prev", "delayed")
    end
  end
  if rcall("ZREM", repeatKey, id) == 1 then
    rcall("DEL", repeatKey .. ":" .. id)
    return 0
  end
  return 1
end
return redis.error_reply("ERR scheduler: unknown action " .. tostring(action))
