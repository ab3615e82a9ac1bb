--[[
  waiting_children: move an active parent job to `waiting-children` while it still has
  pending children (the processor's `job.moveToWaitingChildren()`, which then throws
  WaitingChildrenError). A parent whose children are all done stays active. The
  `waiting-children` event is added uncapped, as BullMQ does.

  KEYS
    1 active            list
    2 waiting-children  zset (score = now)
    3 job               hash (P .. jobId)
    4 dependencies      set  (job key .. ":dependencies": full keys of pending children)
    5 unsuccessful      zset (job key .. ":unsuccessful": children that failed with fpof)
    6 stalled           set
    7 events            stream
    8 meta              hash (events cap)

  ARGV
    1 jobId
    2 token         lock token ("0" = no lock check)
    3 child key     full job key of the one child to wait for, or "" = any pending child
    4 now           ms

  Returns
    0  moved: lock released, out of `active`, into `waiting-children`, event
       `waiting-children jobId prev=active`
    1  nothing to wait for (the child, or every child, is done): nothing changed

  Error codes
    -1 job missing, -9 failed children, -2 lock missing, -6 lock held by another token,
    -3 not in active.
]]
--@include rcall, read_meta, emit, unlock

local jobKey, jobId, token, child = KEYS[3], ARGV[1], ARGV[2], ARGV[3]

if rcall("EXISTS", jobKey) == 0 then
  return -1
end
if rcall("ZCARD", KEYS[5]) > 0 then
  return -9
end
local pending
if child ~= "" then
  pending = rcall("SISMEMBER", KEYS[4], child) == 1
else
  pending = rcall("SCARD", KEYS[4]) > 0
end
if not pending then
  return 1
end

local code = leaveActive(jobKey, token, KEYS[6], KEYS[1], jobId)
if code < 0 then
  return code
end
local q = readMeta({ events = KEYS[7], meta = KEYS[8] }, false)
q.plainEvents = true
rcall("ZADD", KEYS[2], tonumber(ARGV[4]), jobId)
emit(q, "event", "waiting-children", "jobId", jobId, "prev", "active")
return 0
