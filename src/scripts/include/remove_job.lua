-- removeJob: deletes a non-active job and its keys, releasing its parent (drain, clean).
--@include rcall, read_meta, enqueue, wake
-- helper: removeJob
-- Deletes a job that is not active (drain, clean): its deduplication key if it still owns
-- it, its hash and per-job keys, and its place in its parent's dependencies. A parent that
-- thereby has nothing left to wait for leaves waiting-children: removed as well when it is
-- in this queue (the queue is being emptied), else put back to waiting (no event).
local function removeJob(P, id)
  local jobKey = P .. id
  local f = rcall("HMGET", jobKey, "parentKey", "parent", "deid")
  if f[3] then
    local deKey = P .. "de:" .. f[3]
    if rcall("GET", deKey) == id then
      rcall("DEL", deKey, P .. "dn:" .. f[3])
    end
  end
  rcall("DEL", jobKey, jobKey .. ":logs", jobKey .. ":dependencies", jobKey .. ":processed",
    jobKey .. ":failed", jobKey .. ":unsuccessful")
  local parentKey = f[1]
  if not parentKey or parentKey == "" or rcall("EXISTS", parentKey) == 0 then
    return
  end
  if rcall("SREM", parentKey .. ":dependencies", jobKey) == 0
      or rcall("SCARD", parentKey .. ":dependencies") > 0 then
    return
  end
  local parentP, parentId
  if f[2] then
    local ok, parent = pcall(cjson.decode, f[2])
    if ok and type(parent) == "table" and type(parent["queueKey"]) == "string" then
      parentP, parentId = parent["queueKey"] .. ":", tostring(parent["id"])
    end
  end
  if not parentP then
    parentP, parentId = string.match(parentKey, "^(.*:)([^:]+)$")
  end
  if not parentP or rcall("ZREM", parentP .. "waiting-children", parentId) == 0 then
    return
  end
  if parentP == P then
    removeJob(P, parentId)
  else
    local pq = readMeta({
      prefix = parentP, wait = parentP .. "wait", active = parentP .. "active",
      prioritized = parentP .. "prioritized", pausedList = parentP .. "paused",
      meta = parentP .. "meta", pc = parentP .. "pc", marker = parentP .. "marker"
    }, false)
    enqueue(pq, parentId, tonumber(rcall("HGET", parentKey, "priority")) or 0, "RPUSH")
    wake(pq)
  end
end
-- end helper
