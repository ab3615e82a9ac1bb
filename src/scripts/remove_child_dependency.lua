--[[
  remove_child_dependency: job.removeChildDependency(): break the link between an unfinished
  child and its parent. A parent left with nothing pending goes back to waiting (`waiting`
  event).

  KEYS: none (the parent key is the child's `parentKey` field).

  ARGV
    1 P       "<prefix>:<queue>:"
    2 jobId   the child

  Returns 0 when the link was removed (the child's parentKey and parent fields are deleted), 1
  when the child was not a pending dependency of its parent.

  Error codes
    -1 the child does not exist, -5 it has no parent or its parent does not exist.
]]
--@include rcall, remove_tree

local jobKey = ARGV[1] .. ARGV[2]
if rcall("EXISTS", jobKey) == 0 then
  return -1
end
local parentKey = rcall("HGET", jobKey, "parentKey")
-- No parent is reported like a missing parent, as BullMQ does.
if not parentKey or parentKey == "" or rcall("EXISTS", parentKey) == 0 then
  return -5
end
if leaveParent(jobKey, false, parentKey, nil) then
  rcall("HDEL", jobKey, "parentKey", "parent")
  return 0
end
return 1
