-- removeTree: BullMQ's job removal (job.remove, queue.remove, obliterate): a job's keys, its place in its parent, optionally its children.
--@include rcall, read_meta, enqueue, wake
-- helper: removeTree
-- Job keys are "<prefix>:<queue>:<id>"; like BullMQ, the id is what follows the last ':'.
local function keyId(jobKey)
  return string.match(jobKey, ".*:(.*)")
end

local function keyPrefix(jobKey, id)
  return string.sub(jobKey, 1, #jobKey - #id)
end

local function delJobKeys(jobKey)
  return rcall("DEL", jobKey, jobKey .. ":logs", jobKey .. ":dependencies",
    jobKey .. ":processed", jobKey .. ":failed", jobKey .. ":unsuccessful")
end

-- A parent whose last pending child went away goes back to waiting (end of wait, base
-- marker unless paused or maxed), with a `waiting` event when asked.
local function parentToWait(parentP, parentId, withEvent)
  local pq = readMeta({
    prefix = parentP, wait = parentP .. "wait", active = parentP .. "active",
    prioritized = parentP .. "prioritized", pausedList = parentP .. "paused",
    meta = parentP .. "meta", pc = parentP .. "pc", marker = parentP .. "marker"
  }, false)
  enqueue(pq, parentId, 0, "RPUSH")
  wake(pq)
  if withEvent then
    rcall("XADD", parentP .. "events", "*", "event", "waiting", "jobId", parentId,
      "prev", "waiting-children")
  end
end

-- Take jobKey out of its parent's pending dependencies (parentKey, or the job's own
-- parentKey field when nil). hard: a parent left with nothing to wait for is deleted when it
-- lives under baseKey (the queue is being emptied), else it goes back to waiting. Returns
-- true when the job was a pending dependency.
local function leaveParent(jobKey, hard, parentKey, baseKey)
  local deid
  if not parentKey then
    local f = rcall("HMGET", jobKey, "parentKey", "deid")
    parentKey, deid = f[1], f[2]
    if type(parentKey) ~= "string" or parentKey == "" or rcall("EXISTS", parentKey) == 0 then
      return false
    end
  end
  local depsKey = parentKey .. ":dependencies"
  if rcall("SREM", depsKey, jobKey) == 0 then
    return false
  end
  if rcall("SCARD", depsKey) == 0 then
    local parentId = keyId(parentKey)
    local parentP = keyPrefix(parentKey, parentId)
    if rcall("ZREM", parentP .. "waiting-children", parentId) == 1 then
      if hard and parentP == baseKey then
        leaveParent(parentKey, hard, nil, baseKey)
        delJobKeys(parentKey)
        if deid then
          rcall("DEL", parentP .. "de:" .. deid)
        end
      elseif hard then
        parentToWait(parentP, parentId, false)
      else
        parentToWait(parentP, parentId, true)
      end
    end
  end
  return true
end

-- Out of whichever state holds it; returns that state's name ("unknown" if none).
local function leaveState(P, id)
  for _, z in ipairs({"completed", "waiting-children", "delayed", "failed", "prioritized"}) do
    if rcall("ZREM", P .. z, id) == 1 then
      return z
    end
  end
  for _, l in ipairs({"wait", "paused", "active"}) do
    if rcall("LREM", P .. l, 1, id) == 1 then
      return l
    end
  end
  return "unknown"
end

-- Release the job's deduplication id if the job still owns it.
local function releaseDedup(P, id, deid)
  if deid then
    local deKey = P .. "de:" .. deid
    if rcall("GET", deKey) == id then
      rcall("DEL", deKey, P .. "dn:" .. deid)
    end
  end
end

-- Whether the job (or, with children, any pending descendant) holds a lock.
local function anyLocked(P, id, children)
  local jobKey = P .. id
  if rcall("EXISTS", jobKey .. ":lock") == 1 then
    return true
  end
  if children then
    for _, childKey in ipairs(rcall("SMEMBERS", jobKey .. ":dependencies")) do
      local cid = keyId(childKey)
      if anyLocked(keyPrefix(childKey, cid), cid, true) then
        return true
      end
    end
  end
  return false
end

local removeWithChildren

local function removeChildren(jobKey, opts)
  local lists = {}
  if not opts.ignoreProcessed then
    local processed = rcall("HKEYS", jobKey .. ":processed")
    local failed = rcall("HKEYS", jobKey .. ":failed")
    local unsuccessful = rcall("ZRANGE", jobKey .. ":unsuccessful", 0, -1)
    lists = {processed, failed, unsuccessful}
  end
  lists[#lists + 1] = rcall("SMEMBERS", jobKey .. ":dependencies")
  for _, list in ipairs(lists) do
    for _, childKey in ipairs(list) do
      local cid = keyId(childKey)
      removeWithChildren(keyPrefix(childKey, cid), cid, jobKey, opts)
    end
  end
end

-- Remove a job (from any state), its keys, its dependency in its parent and, with
-- opts.removeChildren, its children; a `removed` event in its queue when its hash existed.
removeWithChildren = function(P, id, parentKey, opts)
  local jobKey = P .. id
  if opts.ignoreLocked and anyLocked(P, id, false) then
    return
  end
  if opts.ignoreProcessed and rcall("ZSCORE", P .. "failed", id) then
    return
  end
  leaveParent(jobKey, false, parentKey, nil)
  if opts.removeChildren then
    removeChildren(jobKey, opts)
  end
  local prev = leaveState(P, id)
  releaseDedup(P, id, rcall("HGET", jobKey, "deid"))
  if delJobKeys(jobKey) > 0 then
    local q = readMeta({meta = P .. "meta"}, true)
    rcall("XADD", P .. "events", "MAXLEN", "~", q.evCap, "*", "event", "removed",
      "jobId", id, "prev", prev)
  end
end

-- Hard removal of listed ids of one queue (obliterate): no events, parents emptied of the
-- job are deleted along with it when they are in this queue.
local function removeHard(ids, P)
  for _, id in ipairs(ids) do
    local jobKey = P .. id
    leaveParent(jobKey, true, nil, P)
    releaseDedup(P, id, rcall("HGET", jobKey, "deid"))
    delJobKeys(jobKey)
  end
end
-- end helper
