--[[
  remove_orphans: one round of queue.removeOrphanedJobs(count, limit): SCAN `count` keys under
  the queue, take the job ids among them (a key `P<id>`, or a job sub-key `P<id>:<logs |
  dependencies | processed | failed | unsuccessful | lock>`; the queue's own keys and their
  sub-keys are skipped, as BullMQ does), and delete every such job that no state holds (not in
  any list, zset or set of the queue): its hash and sub-keys. The facade calls it until the
  cursor is back at 0 (or `limit` jobs are removed).

  KEYS: none (every key is built from P).

  ARGV
    1 P        "<prefix>:<queue>:"
    2 jobId    unused ("")
    3 cursor   SCAN cursor ("0" to start)
    4 count    SCAN COUNT

  Returns {next cursor, jobs removed}.

  Error codes: none.
]]
local rcall = redis.call
local P = ARGV[1]
local QUEUE_KEYS = {"active", "wait", "waiting-children", "paused", "id", "delayed", "prioritized",
  "stalled-check", "completed", "failed", "stalled", "repeat", "limiter", "meta", "events", "pc",
  "marker", "de"}
local JOB_SUBKEYS = {"logs", "dependencies", "processed", "failed", "unsuccessful", "lock"}
local known, sub = {}, {}
for _, s in ipairs(QUEUE_KEYS) do known[s] = true end
for _, s in ipairs(JOB_SUBKEYS) do sub[s] = true end

local scan = rcall("SCAN", ARGV[3], "MATCH", P .. "*", "COUNT", ARGV[4])
local candidates, seen = {}, {}
for _, key in ipairs(scan[2]) do
  local suffix = string.sub(key, #P + 1)
  if not known[suffix] then
    local colon = string.find(suffix, ":", 1, true)
    local id
    if colon then
      if not known[string.sub(suffix, 1, colon - 1)] and sub[string.sub(suffix, colon + 1)] then
        id = string.sub(suffix, 1, colon - 1)
      end
    else
      id = suffix
    end
    if id and not seen[id] then
      seen[id] = true
      candidates[#candidates + 1] = id
    end
  end
end

local removed = 0
if #candidates > 0 then
  local states = {}
  for _, s in ipairs(QUEUE_KEYS) do
    states[#states + 1] = {P .. s, rcall("TYPE", P .. s)["ok"]}
  end
  for _, id in ipairs(candidates) do
    local held = false
    for _, st in ipairs(states) do
      local key, kind = st[1], st[2]
      if (kind == "list" and rcall("LPOS", key, id))
          or (kind == "zset" and rcall("ZSCORE", key, id))
          or (kind == "set" and rcall("SISMEMBER", key, id) == 1) then
        held = true
        break
      end
    end
    if not held then
      local jobKey = P .. id
      local dead = {jobKey}
      for _, s in ipairs(JOB_SUBKEYS) do
        dead[#dead + 1] = jobKey .. ":" .. s
      end
      rcall("DEL", unpack(dead))
      removed = removed + 1
    end
  end
end
return {scan[1], removed}
