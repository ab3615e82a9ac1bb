--[[
  remove: job.remove({ removeChildren }) / queue.remove(jobId, { removeChildren }): delete a job
  from whatever state holds it, with its keys, its deduplication id (if it still owns it) and
  its place in its parent (a parent left with nothing pending goes back to waiting, with a
  `waiting` event); with removeChildren, its children too (recursively). Event `removed`
  (prev = the state it left) for every job whose hash existed.

  KEYS
    1 repeat   zset (job schedulers)

  ARGV
    1 P                "<prefix>:<queue>:"
    2 jobId
    3 removeChildren   "1" | "0" | "unprocessed": job.removeUnprocessedChildren(), the job
                       stays and its pending children go (recursively), except those
                       locked (active) or failed, each with its own descendants by the
                       same rule

  Returns 1 removed, 0 not removed because the job (or, with removeChildren, a pending
  descendant) is locked (active). "unprocessed" always returns 1.

  Error codes
    -8 the job is the current iteration of a job scheduler (remove the scheduler instead).
]]
--@include rcall, remove_tree

local P, id = ARGV[1], ARGV[2]
local jobKey = P .. id
if ARGV[3] == "unprocessed" then
  removeChildren(jobKey, {removeChildren = true, ignoreProcessed = true, ignoreLocked = true})
  return 1
end
local rjk = rcall("HGET", jobKey, "rjk")
if rjk then
  local prevMillis = rcall("ZSCORE", KEYS[1], rjk)
  if prevMillis and id == "repeat:" .. rjk .. ":" .. prevMillis then
    return -8
  end
end
local children = ARGV[3] == "1"
if anyLocked(P, id, children) then
  return 0
end
removeWithChildren(P, id, nil, {removeChildren = children, ignoreProcessed = false, ignoreLocked = false})
return 1
