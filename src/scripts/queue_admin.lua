--[[
  queue_admin: the Queue's small admin reads and writes on its meta, limiter, events and
  deduplication keys (getRateLimitTtl, getCountsPerPriority, trimEvents, global concurrency and
  rate limit, rateLimit, removeRateLimitKey, getMeta, getVersion, getDeduplicationJobId,
  isMaxed).

  KEYS
    1 meta          hash
    2 limiter       string
    3 events        stream
    4 prioritized   zset
    5 marker        zset (unused)
    6 wait          list

  ARGV
    1 P        "<prefix>:<queue>:"
    2 jobId    unused ("")
    3 action, then its arguments:
      "rateLimitTtl" maxJobs   ms left in the rate-limit window when the queue is limited
                               (maxJobs "0": the global limit `max` in meta, else the
                               limiter's PTTL as it is), else 0
      "countsPerPriority" p..  per priority: waiting jobs of it (0: the wait list)
      "trimEvents" n           XTRIM events MAXLEN ~ n; returns the entries deleted
      "setMeta" f v ..         HSET meta
      "metaFields" f ..        HMGET meta
      "delMeta" f ..           HDEL meta
      "getMeta"                HGETALL meta (flat)
      "rateLimit" ms           the queue is rate limited for ms (limiter = a huge count)
      "delLimiter"             DEL limiter
      "dedupJobId" id          the job id that holds deduplication id `id` (or nil)
      "isMaxed"                1 when the global concurrency is reached (active jobs >=
                               meta `concurrency`), else 0

  Returns what the action says (above).

  Error codes: none (an unknown action is a script error).
]]
local rcall = redis.call
local action = ARGV[3]
local args = {}
for i = 4, #ARGV do
  args[#args + 1] = ARGV[i]
end

local function limitedTtl(max)
  if max and max <= (tonumber(rcall("GET", KEYS[2])) or 0) then
    local pttl = rcall("PTTL", KEYS[2])
    if pttl == 0 then
      rcall("DEL", KEYS[2])
    end
    if pttl > 0 then
      return pttl
    end
  end
  return 0
end

if action == "rateLimitTtl" then
  if args[1] ~= "0" then
    return limitedTtl(tonumber(args[1]))
  end
  local max = rcall("HGET", KEYS[1], "max")
  if max then
    return limitedTtl(tonumber(max))
  end
  return rcall("PTTL", KEYS[2])
elseif action == "countsPerPriority" then
  local out = {}
  for _, p in ipairs(args) do
    local priority = tonumber(p)
    if priority == 0 then
      out[#out + 1] = rcall("LLEN", KEYS[6])
    else
      out[#out + 1] = rcall("ZCOUNT", KEYS[4], priority * 4294967296,
        (priority + 1) * 4294967296 - 1)
    end
  end
  return out
elseif action == "trimEvents" then
  return rcall("XTRIM", KEYS[3], "MAXLEN", "~", args[1])
elseif action == "setMeta" then
  return rcall("HSET", KEYS[1], unpack(args))
elseif action == "metaFields" then
  return rcall("HMGET", KEYS[1], unpack(args))
elseif action == "delMeta" then
  return rcall("HDEL", KEYS[1], unpack(args))
elseif action == "getMeta" then
  return rcall("HGETALL", KEYS[1])
elseif action == "rateLimit" then
  rcall("SET", KEYS[2], "9007199254740991", "PX", args[1])
  return 0
elseif action == "delLimiter" then
  return rcall("DEL", KEYS[2])
elseif action == "dedupJobId" then
  return rcall("GET", ARGV[1] .. "de:" .. args[1])
elseif action == "isMaxed" then
  local cap = tonumber(rcall("HGET", KEYS[1], "concurrency"))
  if cap and rcall("LLEN", ARGV[1] .. "active") >= cap then
    return 1
  end
  return 0
end
return redis.error_reply("ERR queue_admin: unknown action " .. tostring(action))
