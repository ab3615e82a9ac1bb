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
--@include rcall, read_meta, emit, wake, enqueue, delayed_score, queue_at, job_fields

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

-- Deduplication (BullMQ 6.7's modes). The key `de:<id>` names the job that owns the id;
-- with a TTL it deduplicates until it expires, without one until its job finishes or is
-- removed. keepLastIfActive never gives the key a TTL (its job may run longer than any TTL)
-- and parks the latest add made while the owner is active in `dn:<id>`, from which
-- finish.lua creates the next job.

-- The key now names jobId; a TTL unless keepLastIfActive or none is asked.
local function claimDedup(key, de, jobId)
  local ttl = tonumber(de["ttl"])
  if ttl and ttl > 0 and not de["keepLastIfActive"] then
    rcall("SET", key, jobId, "PX", ttl)
  else
    rcall("SET", key, jobId)
  end
end

-- A key without TTL whose owner is gone (removed by hand, lost in an outage) would block
-- the id for good: jobId takes it over, and any parked next job is dropped with it.
local function takeOverStale(q, key, de, owner, jobId)
  if rcall("PTTL", key) ~= -1 or rcall("EXISTS", q.prefix .. owner) == 1 then
    return false
  end
  rcall("DEL", key, q.prefix .. "dn:" .. de["id"])
  claimDedup(key, de, jobId)
  return true
end

-- keepLastIfActive with an active owner: this add is parked (latest wins) under jobId, to
-- become a job when the owner finishes; the key loses its TTL so that no add slips past
-- while the owner runs.
local function parkNext(q, key, de, owner, jobId, name, data, opts)
  if not de["keepLastIfActive"] then
    return false
  end
  local at = redis.pcall("LPOS", q.active, owner)
  if type(at) == "table" and at.err then
    -- Redis < 6.0.6 has no LPOS.
    at = nil
    for _, id in ipairs(rcall("LRANGE", q.active, 0, -1)) do
      if id == owner then
        at = true
        break
      end
    end
  end
  if not at then
    return false
  end
  local nextKey = q.prefix .. "dn:" .. de["id"]
  rcall("DEL", nextKey)
  rcall("HSET", nextKey, "name", name, "data", data, "opts", cjson.encode(opts), "jid", jobId)
  rcall("PERSIST", key)
  emit(q, "event", "deduplicated", "jobId", owner, "deduplicationId", de["id"],
    "deduplicatedJobId", jobId)
  return true
end

-- replace: a delayed owner is deleted and jobId takes its place (keeping the key's
-- remaining TTL unless extend); an owner in any other state keeps the id.
local function replaceDedup(q, key, de, jobId, name, data, opts)
  local owner = rcall("GET", key)
  if not owner then
    claimDedup(key, de, jobId)
    return nil
  end
  if rcall("ZREM", q.delayed, owner) == 1 then
    local ownerKey = q.prefix .. owner
    rcall("DEL", ownerKey, ownerKey .. ":logs", ownerKey .. ":dependencies",
      ownerKey .. ":processed", ownerKey .. ":failed", ownerKey .. ":unsuccessful")
    rcall("XADD", q.events, "*", "event", "removed", "jobId", owner, "prev", "delayed")
    -- BullMQ names the new job in `jobId` here and the replaced one in `deduplicatedJobId`.
    emit(q, "event", "deduplicated", "jobId", jobId, "deduplicationId", de["id"],
      "deduplicatedJobId", owner)
    rcall("DEL", q.prefix .. "dn:" .. de["id"])
    local ttl = tonumber(de["ttl"])
    if not de["keepLastIfActive"] and not de["extend"] and ttl and ttl > 0 then
      rcall("SET", key, jobId, "KEEPTTL")
    else
      claimDedup(key, de, jobId)
    end
    return nil
  end
  if takeOverStale(q, key, de, owner, jobId) then
    return nil
  end
  -- No `deduplicated` event unless the add was parked (as BullMQ 6.7).
  parkNext(q, key, de, owner, jobId, name, data, opts)
  return owner
end

-- The simple, ttl, extend and keepLastIfActive modes: the id that owns the key keeps it.
local function keepDedup(q, key, de, jobId, name, data, opts)
  local ttl = tonumber(de["ttl"])
  local owner
  if ttl and ttl > 0 and de["extend"] then
    owner = rcall("GET", key)
    if not owner then
      claimDedup(key, de, jobId)
      return nil
    end
    if takeOverStale(q, key, de, owner, jobId) then
      return nil
    end
    if parkNext(q, key, de, owner, jobId, name, data, opts) then
      return owner
    end
    -- Each deduplicated add restarts the window.
    claimDedup(key, de, owner)
  else
    if ttl and ttl > 0 and not de["keepLastIfActive"] then
      if rcall("SET", key, jobId, "PX", ttl, "NX") then
        return nil
      end
    elseif rcall("SET", key, jobId, "NX") then
      return nil
    end
    -- The tail of the path above, after its extend/replace steps: the same two checks.
    owner = rcall("GET", key)
    if takeOverStale(q, key, de, owner, jobId) then
      return nil
    end
    if parkNext(q, key, de, owner, jobId, name, data, opts) then
      return owner
    end
  end
  emit(q, "event", "deduplicated", "jobId", owner, "deduplicationId", de["id"],
    "deduplicatedJobId", jobId)
  return owner
end

-- Returns the id of the job that keeps the deduplication id (the add stores nothing), or
-- nil when jobId is to be added. reschedule: a delayed owner is due again `delay` ms after
-- this add's timestamp.
local function deduplicate(q, de, jobId, name, data, opts, timestamp)
  local key = q.prefix .. "de:" .. de["id"]
  if de["replace"] then
    return replaceDedup(q, key, de, jobId, name, data, opts)
  end
  local owner = keepDedup(q, key, de, jobId, name, data, opts)
  if owner and de["reschedule"] and rcall("ZSCORE", q.delayed, owner) then
    local delay = tonumber(opts["delay"]) or 0
    rcall("HSET", q.prefix .. owner, "delay", delay)
    local due = timestamp + delay
    rcall("ZADD", q.delayed, delayedScore(q, due), owner)
    emit(q, "event", "delayed", "jobId", owner, "delay", due)
    delayMarker(q.marker, q.delayed)
  end
  return owner
end

local q = readMeta({
  prefix = ARGV[1], wait = KEYS[1], pausedList = KEYS[2], meta = KEYS[3], completed = KEYS[5],
  delayed = KEYS[6], active = KEYS[7], events = KEYS[8], marker = KEYS[9],
  prioritized = KEYS[10], pc = KEYS[11]
}, false)
-- The events cap is written once per queue (as BullMQ's producer does); readMeta saw it.
local capKnown = q.capStored

-- timestampText: ARGV's text of timestamp, which is what the hash stores.
local function addOne(customId, name, timestamp, timestampText, data, packedOpts, parentKey,
    packedParent)
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
    local owner = deduplicate(q, de, jobId, name, data, opts, timestamp)
    if owner then
      return owner
    end
  end

  local delay = opts["delay"] or 0
  local priority = opts["priority"] or 0
  local fields = jobFields(name, data, opts, timestampText, parentKey, parentJson)
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
  results[#results + 1] = addOne(ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 2],
    ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], ARGV[i + 6])
end
return results
