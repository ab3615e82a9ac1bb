-- fetch (+ limitTtl, popWaiting, stamp): the batched fetch of activate.lua and of finish.lua's fetch-next.
--@include rcall, is_maxed, emit, promote_due, next_due
-- helper: fetch
-- Remaining window (ms) of a reached rate limit, 0 when jobs may start. A key whose window
-- ends in this very millisecond (PTTL 0: a script sees the time it started at, so the key has
-- not expired yet) is deleted, as BullMQ's getRateLimitTTL does: else the jobs taken now
-- would count into the ending window and the next one would start with no count at all.
local function limitTtl(q, max)
  if max and (tonumber(rcall("GET", q.limiter)) or 0) >= max then
    local ttl = rcall("PTTL", q.limiter)
    if ttl > 0 then
      return ttl
    end
    if ttl == 0 then
      rcall("DEL", q.limiter)
    end
  end
  return 0
end

-- Next waiting id moved to active: the wait list first (skipping legacy "0:" markers),
-- then the lowest-scored prioritized job.
local function popWaiting(q)
  local id = rcall("RPOPLPUSH", q.wait, q.active)
  while id and string.sub(id, 1, 2) == "0:" do
    rcall("LREM", q.active, 1, id)
    id = rcall("RPOPLPUSH", q.wait, q.active)
  end
  if id then
    return id
  end
  local top = rcall("ZPOPMIN", q.prioritized)
  if top[1] then
    rcall("LPUSH", q.active, top[1])
    return top[1]
  end
  rcall("DEL", q.pc)
end

-- In a flat HGETALL reply, sets field to value (appended when absent; value nil only
-- reads). Returns the field's previous value.
local function stamp(fields, field, value)
  for i = 1, #fields, 2 do
    if fields[i] == field then
      local old = fields[i + 1]
      if value ~= nil then
        fields[i + 1] = tostring(value)
      end
      return old
    end
  end
  if value ~= nil then
    fields[#fields + 1] = field
    fields[#fields + 1] = tostring(value)
  end
end

-- Promotes due delayed jobs, then activates one job per token while the queue is neither
-- paused, maxed nor rate limited. q must have been through readMeta. Returns the reply
-- {ttl, nextDue, id, fields, ...} and whether the queue had nothing at all to offer (no
-- job, no limit, not paused or maxed, nothing delayed).
-- now: ms as the ARGV text (written as is; a number would be formatted on every write).
local function fetch(q, nowText, lockMs, workerMax, workerWindow, worker, tokens)
  local now = tonumber(nowText)
  promoteDue(q, now)
  local max = q.max or workerMax
  if max and max <= 0 then
    max = nil
  end
  local window = q.duration
  if workerWindow and workerWindow > 0 then
    window = workerWindow
  end
  local reply = {0, 0}
  local ttl = limitTtl(q, max)
  if ttl > 0 then
    reply[1] = ttl
    return reply, false
  end
  if q.paused or isMaxed(q) then
    return reply, false
  end
  for i, token in ipairs(tokens) do
    if i > 1 and (isMaxed(q) or limitTtl(q, max) > 0) then
      break
    end
    local id = popWaiting(q)
    if not id then
      break
    end
    local jobKey = q.prefix .. id
    if max and rcall("HEXISTS", jobKey, "defa") == 0 then
      if rcall("INCR", q.limiter) == 1 and window and window > 0 then
        rcall("PEXPIRE", q.limiter, math.floor(window))
      end
    end
    if token ~= "0" then
      rcall("SET", jobKey .. ":lock", token, "PX", lockMs)
    end
    emit(q, "event", "active", "jobId", id, "prev", "waiting")
    -- One read and one write: the fields are read first, and the reply gets the values
    -- the write stores (the same as incrementing `ats` and reading afterwards).
    local fields = rcall("HGETALL", jobKey)
    local before = stamp(fields, "ats", nil)
    local ats = string.format("%d", (tonumber(before) or 0) + 1)
    stamp(fields, "processedOn", nowText)
    stamp(fields, "ats", ats)
    if worker ~= "" then
      stamp(fields, "pb", worker)
      rcall("HSET", jobKey, "processedOn", nowText, "pb", worker, "ats", ats)
    else
      rcall("HSET", jobKey, "processedOn", nowText, "ats", ats)
    end
    reply[#reply + 1] = id
    reply[#reply + 1] = fields
  end
  if #reply > 2 then
    rcall("ZADD", q.marker, "0", "0")
    return reply, false
  end
  reply[2] = nextDue(q)
  return reply, reply[2] == 0
end
-- end helper
