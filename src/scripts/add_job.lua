--[[
  add_job: add jobs to a queue (Queue.add, and Queue.addBulk in one call), storing each job
  exactly as BullMQ 6's producer does: same hash fields in the same order, the `opts` field
  as cjson's encoding of the msgpack option map (so its text is byte-identical), the same
  scores, marker and events, and one `INCR id` per add attempt.

  Per job, in order: a parent that does not exist fails the job with -5 (before `INCR id`);
  `INCR id` (the job id unless a custom id is given); a custom id whose job already exists
  is "duplicated" (its parent link is updated, event `duplicated`, the existing id is
  returned; -7 if it belongs to another live parent); a deduplication id that is taken
  returns the owning job's id (event `deduplicated`, nothing stored; a key without TTL
  whose owner is gone is taken over); otherwise the job hash is written (event `added`)
  and the job goes to `delayed` (delay > 0: event `delayed`, delay marker), `prioritized`
  (priority > 0) or `wait` (LPUSH, RPUSH with lifo), with the base marker unless the
  queue is paused or maxed and event `waiting`; finally a child is added to its parent's
  `dependencies` set. A paused queue whose meta names a v5 Queue gets its waiting jobs in
  `paused`, as our other scripts do.

  KEYS
    1 wait          list
    2 paused        list (v5 layout only)
    3 meta          hash
    4 id            string (job id counter)
    5 completed     zset
    6 delayed       zset
    7 active        list
    8 events        stream
    9 marker        zset
   10 prioritized   zset
   11 pc            string (priority counter)

  ARGV
    1 P             "<prefix>:<queue>:"
    then 7 values per job (job n starts at ARGV[2 + 7 * (n - 1)]):
    +0 custom id    "" = take the counter value
    +1 name
    +2 timestamp    ms (`timestamp` field; delayed jobs are due at timestamp + delay)
    +3 data         JSON text, stored as is
    +4 opts         msgpack map of BullMQ's stored option names (attempts, delay, priority,
                    lifo, backoff, de = {id, ttl}, ...), re-encoded with cjson for `opts`
    +5 parent key   "" = no parent, else "<parent prefix>:<parent queue>:<parent id>"
    +6 parent       msgpack map {id, queueKey[, fpof, rdof, idof, cpof]} or ""

  Returns
    one entry per job, in order: the job id (string; the existing id when duplicated or
    deduplicated) or an error code (integer).

  Error codes
    -5 parent job missing, -7 the custom id belongs to a job with another (live) parent.
]]
--@include rcall, read_meta, emit, wake, enqueue, delayed_score, queue_at

-- Points the delay marker at the earliest delayed job (score = its due time, fraction
-- included), paused or not, as BullMQ's producer does.
local function delayMarker(markerKey, delayedKey)
  local first = rcall("ZRANGE", delayedKey, 0, 0, "WITHSCORES")
  if first[2] then
    rcall("ZADD", markerKey, tonumber(first[2]) / 4096, "1")
  end
end

-- A parent waiting for children whose last dependency is gone runs again: delayed by its
-- own delay, else prioritized or at the end of wait that runs next.
local function releaseParent(parentKey, parent, now)
  local P = parent["queueKey"] .. ":"
  local parentId = parent["id"]
  if rcall("ZREM", P .. "waiting-children", parentId) == 0 then
    return
  end
  local pq = queueAt(P)
  local f = rcall("HMGET", parentKey, "priority", "delay")
  local delay = tonumber(f[2]) or 0
  if delay > 0 then
    local due = now + delay
    rcall("ZADD", pq.delayed, due * 4096, parentId)
    rcall("XADD", pq.events, "*", "event", "delayed", "jobId", parentId, "delay", due)
    delayMarker(pq.marker, pq.delayed)
  else
    enqueue(pq, parentId, tonumber(f[1]) or 0, "RPUSH")
    wake(pq)
    rcall("XADD", pq.events, "*", "event", "waiting", "jobId", parentId, "prev",
      "waiting-children")
  end
end

-- A custom id that already exists: link it to the given parent (a finished child counts as
-- processed at once) unless it belongs to another parent that still exists.
local function duplicated(q, jobKey, jobId, parentKey, parent, parentJson, now)
  local existing = rcall("HGET", jobKey, "parentKey")
  if not existing or existing == parentKey or rcall("EXISTS", existing) == 0 then
    if parentKey then
      local deps = parentKey .. ":dependencies"
      if rcall("ZSCORE", q.completed, jobId) then
        rcall("HSET", parentKey .. ":processed", jobKey,
          rcall("HGET", jobKey, "returnvalue") or "null")
        if rcall("SCARD", deps) == 0 then
          releaseParent(parentKey, parent, now)
        end
      else
        rcall("SADD", deps, jobKey)
      end
      rcall("HMSET", jobKey, "parentKey", parentKey, "parent", parentJson)
    end
  elseif parentKey then
    return -7
  end
  emit(q, "event", "duplicated", "jobId", jobId)
  return jobId
end

-- Claims the deduplication id for jobId. Returns the id of the job that already owns it,
-- or nil when jobId may be added.
local function deduplicate(q, de, jobId)
  local dedupId = de["id"]
  local key = q.prefix .. "de:" .. dedupId
  local ttl = tonumber(de["ttl"])
  local claimed
  if ttl and ttl > 0 then
    claimed = rcall("SET", key, jobId, "PX", ttl, "NX")
  else
    claimed = rcall("SET", key, jobId, "NX")
  end
  if claimed then
    return nil
  end
  local owner = rcall("GET", key)
  if owner and rcall("PTTL", key) == -1 and rcall("EXISTS", q.prefix .. owner) == 0 then
    -- The owner is gone without releasing its key (e.g. removed by hand): start afresh.
    rcall("DEL", key, q.prefix .. "dn:" .. dedupId)
    if ttl and ttl > 0 then
      rcall("SET", key, jobId, "PX", ttl)
    else
      rcall("SET", key, jobId)
    end
    return nil
  end
  emit(q, "event", "deduplicated", "jobId", owner, "deduplicationId", dedupId,
    "deduplicatedJobId", jobId)
  return owner
end

local q = readMeta({
  prefix = ARGV[1], wait = KEYS[1], pausedList = KEYS[2], meta = KEYS[3], completed = KEYS[5],
  delayed = KEYS[6], active = KEYS[7], events = KEYS[8], marker = KEYS[9],
  prioritized = KEYS[10], pc = KEYS[11]
}, false)
local capKnown = false

local function addOne(customId, name, timestamp, data, packedOpts, parentKey, packedParent)
  local parent, parentJson
  if parentKey ~= "" then
    if rcall("EXISTS", parentKey) ~= 1 then
      return -5
    end
    parent = cmsgpack.unpack(packedParent)
    parentJson = cjson.encode(parent)
  else
    parentKey = nil
  end

  local counter = rcall("INCR", KEYS[4])
  if not capKnown then
    if rcall("HEXISTS", q.meta, "opts.maxLenEvents") == 0 then
      rcall("HSET", q.meta, "opts.maxLenEvents", 10000)
    end
    capKnown = true
  end

  local jobId = customId
  if jobId == "" then
    jobId = counter .. ""
  end
  local jobKey = q.prefix .. jobId
  if customId ~= "" and rcall("EXISTS", jobKey) == 1 then
    return duplicated(q, jobKey, jobId, parentKey, parent, parentJson, timestamp)
  end

  local opts = cmsgpack.unpack(packedOpts)
  local de = opts["de"]
  if de and de["id"] then
    local owner = deduplicate(q, de, jobId)
    if owner then
      return owner
    end
  end

  local delay = opts["delay"] or 0
  local priority = opts["priority"] or 0
  local fields = {"name", name, "data", data, "opts", cjson.encode(opts), "timestamp", timestamp,
    "delay", delay, "priority", priority}
  if parentKey then
    fields[#fields + 1] = "parentKey"
    fields[#fields + 1] = parentKey
    fields[#fields + 1] = "parent"
    fields[#fields + 1] = parentJson
  end
  if de and de["id"] then
    fields[#fields + 1] = "deid"
    fields[#fields + 1] = de["id"]
  end
  rcall("HMSET", jobKey, unpack(fields))
  rcall("XADD", q.events, "*", "event", "added", "jobId", jobId, "name", name)

  if type(delay) == "number" and delay > 0 then
    local due = timestamp + delay
    rcall("ZADD", q.delayed, delayedScore(q, due), jobId)
    emit(q, "event", "delayed", "jobId", jobId, "delay", due)
    delayMarker(q.marker, q.delayed)
  else
    local pushCmd = "LPUSH"
    if opts["lifo"] then
      pushCmd = "RPUSH"
    end
    if type(priority) ~= "number" then
      priority = 0
    end
    enqueue(q, jobId, priority, pushCmd)
    wake(q)
    emit(q, "event", "waiting", "jobId", jobId)
  end

  if parentKey then
    rcall("SADD", parentKey .. ":dependencies", jobKey)
  end
  return jobId
end

local results = {}
for i = 2, #ARGV, 7 do
  results[#results + 1] = addOne(ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3],
    ARGV[i + 4], ARGV[i + 5], ARGV[i + 6])
end
return results
